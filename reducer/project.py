"""Where a run's files go, decided in one place for every command (`run`, `history`, `report`).

A project is the folder that holds `jobs/` (or, for a job file elsewhere, the job file's own
folder): its `outputs/` and `Models/` are where the jobs publish. The outputs folder is

    --outputs DIR                                  when given; else
    the project of the first job file given         (`run`, and `history`/`report` with job files); else
    --project DIR's outputs/                        else
    ./outputs

always as an absolute path, so every message names the folder it looked in whatever the
current directory (cron runs from `/`). Nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Optional

from reducer.config import file_stem_name, project_root, read_job, usable_name
from reducer.errors import JobError, NotFoundError
from reducer.published import find_job_folder

PathLike = str | os.PathLike[str]


class JobFolder(NamedTuple):
    """Where one job's outputs are: its name and outputs/<job>/; `unread`: why its job file could
    not be read, when the folder was found by the name a run records that file's failures under."""

    name: str
    folder: Path
    unread: Optional[JobError] = None


def is_job_file(target: PathLike) -> bool:
    """A job file (`jobs/iris.toml`, `/abs/iris.toml`), not a job name (`iris`): job names never
    hold a path separator, and a job file ends in `.toml` or names a path."""
    text = os.fspath(target)
    return text.endswith(".toml") or os.sep in text or (os.altsep is not None and os.altsep in text)


def outputs_root(outputs: PathLike | None = None, job_paths: Sequence[PathLike] = (),
                 project: PathLike | None = None) -> Path:
    """The outputs folder (see the module's docstring), absolute."""
    if outputs:
        return Path(outputs).absolute()
    if job_paths:
        return project_root(job_paths[0]) / "outputs"
    return (Path(project) if project else Path()).absolute() / "outputs"


def models_root(models: PathLike | None = None, job_paths: Sequence[PathLike] = (),
                project: PathLike | None = None) -> Path:
    """The Models folder: --models, else beside the outputs folder's project (as outputs_root)."""
    if models:
        return Path(models).absolute()
    if job_paths:
        return project_root(job_paths[0]) / "Models"
    return (Path(project) if project else Path()).absolute() / "Models"


def job_folder(target: PathLike, outputs: PathLike | None = None, project: PathLike | None = None) -> JobFolder:
    """The job's name and outputs/<job>/ for a job file or a job name; NotFoundError naming the
    absolute folder it looked in when the job has published nothing there. A job file that
    cannot be read: see unread_job_folder."""
    if not is_job_file(target):
        name = os.fspath(target)
        return JobFolder(name, find_job_folder(outputs_root(outputs, (), project) / name))
    root = outputs_root(outputs, [target])
    try:
        name = read_job(target).name
    except JobError as exc:
        return unread_job_folder(target, root, exc)
    return JobFolder(name, find_job_folder(root / name))


def unread_job_folder(target: PathLike, root: Path, problem: JobError) -> JobFolder:
    """A job file that cannot be read (invalid TOML, a wrong key, gone) goes by the name a run
    records its failures under (config.file_stem_name: the file's stem): that folder of `root`
    with `problem` beside it, so last night's failure can be looked up with the file that caused
    it. Without such a folder: `problem` itself (a bad job file), or for a file that does not
    exist NotFoundError (as `run` says of one), naming the folder looked in too."""
    name = file_stem_name(target)
    folder = root / name
    if usable_name(name) and folder.is_dir():
        return JobFolder(name, find_job_folder(folder), problem)
    if not Path(target).exists():
        raise NotFoundError(f"{problem.message}, and no job {name!r} in {root}")
    raise problem
