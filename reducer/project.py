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

from reducer.config import project_root, read_job
from reducer.published import find_job_folder

PathLike = str | os.PathLike[str]


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


def job_folder(target: PathLike, outputs: PathLike | None = None, project: PathLike | None = None) -> tuple[str, Path]:
    """(the job's name, outputs/<job>/) for a job file or a job name; NotFoundError naming the
    absolute folder it looked in when the job has published nothing there; JobError when a job
    file cannot be read."""
    if is_job_file(target):
        name = read_job(target).name
        root = outputs_root(outputs, [target])
    else:
        name = os.fspath(target)
        root = outputs_root(outputs, (), project)
    return name, find_job_folder(root / name)
