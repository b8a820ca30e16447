"""Publishing one job's files: all of them switch together, or none do.

Each run writes its complete set into a fresh version folder, then switches one symlink with
an atomic rename (the design of Kubernetes' AtomicWriter), so a reader of `outputs/<job>/`
sees one run's files at every instant:

    outputs/<job>/..v-<UTC stamp>-<pid>-<hex>/   embedding.csv, plot.png, model.keras,
                                                 model.onnx, model.json, manifest.json (last)
    outputs/<job>/..data -> ..v-...              the published run; renaming it is the commit
    outputs/<job>/embedding.csv -> ..data/embedding.csv    (plot.png, manifest.json alike):
                                                 the paths readers have always used
    outputs/<job>/history/                       a copy of every published manifest
    Models/<job>.keras, .onnx, .json             copies of the published model, renamed into
                                                 place right after the switch (the .json last)

The manifest is the commit record: it lists every file with its sha256. A run killed after the
switch but before the Models renames leaves Models one run behind; every run therefore starts
with `recover`, which puts the published run's model back into Models/ when it does not match
the manifest, links the reader paths, removes version folders no switch points to, and turns
a job folder published by an older reducer (plain files) into this layout without a moment
where its files disagree. Nothing outside the new version folder is touched before the switch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import os
import re
import shutil
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

from reducer import files, published
from reducer.errors import OutputError, PublishedRecordError
from reducer.published import FileEntry, Manifest, Status, StatusRecord, write_embedding
from reducer.files import ensure_writable_folder, sha256_file, write_json

if TYPE_CHECKING:
    from reducer.config import Job
    from reducer.tables.table import Table

log = logging.getLogger("reducer")

DATA_LINK = "..data"
VERSION_NAME = re.compile(r"\.\.v-\d{8}T\d{6}Z-\d+-[0-9a-f]{8}")
STAMP_NAME = re.compile(r"\d{8}T\d{6}Z-\d+")  # run_stamp(): a rejected candidate's folder
READER_FILES = ("embedding.csv", "plot.png", "manifest.json")  # linked in outputs/<job>/
# Copied to Models/<job>.*, renamed in this order: the .json that names the columns comes last.
MODEL_FILES = {"model": "model.keras", "model_onnx": "model.onnx", "model_info": "model.json"}
ONNX_CHECK_ROWS = 1000  # the table's first rows, on which the ONNX file must agree with Keras
HISTORY_KEEP = 100  # manifests (and status records) kept per job
REJECTED_KEEP = 3  # rejected candidates kept per job, for an operator to look at
# Tests kill the process at a numbered step of publication (REDUCER_TEST_KILL_AT_STEP=N) to
# prove that a crash anywhere leaves a consistent set; these are the steps, in order.
STEPS = ("version folder written", "models staged", "history staged", "switched", "readers linked",
         "models renamed", "history renamed", "old versions removed")
KILL_AT_STEP = "REDUCER_TEST_KILL_AT_STEP"


def _step(name: str) -> None:
    if os.environ.get(KILL_AT_STEP) == str(STEPS.index(name) + 1):
        os.kill(os.getpid(), signal.SIGKILL)


def run_stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"


@dataclasses.dataclass(frozen=True)
class Destination:
    """Where one job's files go."""

    outputs_root: Path
    models_root: Path

    def job_folder(self, name: str) -> Path:
        return Path(self.outputs_root) / name

    def model_path(self, name: str) -> Path:
        return Path(self.models_root) / f"{name}.keras"

    def model_info_path(self, name: str) -> Path:
        return Path(self.models_root) / f"{name}.json"

    def model_onnx_path(self, name: str) -> Path:
        return Path(self.models_root) / f"{name}.onnx"


@dataclasses.dataclass(frozen=True)
class Shown:
    """What the plot draws: the coordinates and labels of the plotted rows, and the columns."""

    coordinates: np.ndarray
    labels: Optional[np.ndarray]
    features: tuple[str, ...]
    id_column: Optional[str]
    label_column: Optional[str]


# ---------------------------------------------------------------- writing the files


def save_keras(path: Path | str, model: Any) -> None:
    model.save(path)  # the name is new, so Keras never prompts about overwriting


def save_onnx(path: Path | str, model: Any, check_rows: np.ndarray, metadata: Optional[dict]) -> None:
    """The encoder as ONNX, checked against `model` on `check_rows`; an ExportError (a model the
    exporter cannot write, or a file that disagrees with Keras) is a bug, and fails the job."""
    from reducer.engine import onnx_export

    onnx_export.write(path, model, check_rows, metadata)


def write_model(paths: dict, model: Any, check_rows: np.ndarray, info: dict) -> None:
    """The saved encoder's three files (MODEL_FILES' keys -> paths): .keras, the .onnx checked
    against it on `check_rows`, and the .json naming its columns (`info`); each written whole or
    not at all. A job's publication and reducer.Map.save both write them here."""
    files.write_synced(paths["model"], lambda p: save_keras(p, model))
    files.write_synced(paths["model_onnx"], lambda p: save_onnx(p, model, check_rows, info))
    files.write_synced(paths["model_info"], lambda p: write_json(p, info))


def write_plot(path: Path, title: str, shown: Shown, rows: int, manifest: Manifest) -> None:
    """plot.png from values: the plotted rows, the table's size, the run's time and quality."""
    from reducer.plot import draw

    draw(path, title, shown.coordinates, shown.labels, label_name=shown.label_column, rows=rows,
         run_at=manifest.started_at, quality=manifest.quality)


def _copy(source: Path | str) -> Callable[[Path | str], Any]:
    return lambda target: shutil.copyfile(source, target)


# ---------------------------------------------------------------- one job's publication


def reader_paths(destination: Destination, name: str) -> dict[str, Path]:
    """Where readers find each file: name in the manifest -> path."""
    folder = destination.job_folder(name)
    return {"model": destination.model_path(name), "model_onnx": destination.model_onnx_path(name),
            "model_info": destination.model_info_path(name),
            "embedding": folder / "embedding.csv", "plot": folder / "plot.png"}


def _check_replaceable(path: Path) -> None:
    """OutputError unless `path` is absent, a symlink or a regular file: publishing must not
    fail half way because a folder (or a device) sits where a file goes."""
    if path.is_symlink() or not path.exists() or path.is_file():
        return
    kind = "a folder" if path.is_dir() else "not a regular file"
    raise OutputError(f"cannot publish {path}: it is {kind}; move it away (nothing was published, "
                      f"previous outputs kept)")


def publish_job(job: Job, destination: Destination, table: Table, encode: Callable[[np.ndarray], np.ndarray],
                shown: Shown, saved_encoder: Any, manifest: Manifest, seconds: dict[str, float], started: float,
                decoder: Any = None, rejected: Optional[str] = None,
                kept: Optional[dict[str, np.ndarray]] = None) -> None:
    """Write one job's files into a new version folder, then switch them in all at once.

    table: the job's table (its `chunks()` feed embedding.csv); encode(raw) -> coordinates.
    decoder: kept in the version folder (not published) so a later run can warm-start from it.
    rejected: the reason the quality gate refused this map: the folder is then kept in
    outputs/<job>/rejected/ for an operator to look at, its manifest in history/, and nothing
    readers see changes. Before the switch nothing a reader sees has changed; a failure
    removes the new folder.
    """
    folder = destination.job_folder(job.name)
    ensure_writable_folder(folder)
    ensure_writable_folder(destination.models_root)
    readers = reader_paths(destination, job.name)
    for path in [*readers.values(), folder / "manifest.json", folder / DATA_LINK]:
        _check_replaceable(path)
    stamp = run_stamp()
    version = folder / f"..v-{stamp}-{os.urandom(4).hex()}"
    version.mkdir()
    try:
        t = time.time()
        written = {key: version / file_name for key, file_name in MODEL_FILES.items()}
        written.update(embedding=version / "embedding.csv", plot=version / "plot.png")
        model_info = {"job": job.name, "features": list(shown.features), "id_column": shown.id_column,
                      "label_column": shown.label_column, "latent": job.model.latent,
                      "reducer": manifest.versions.get("reducer")}
        first_rows = next(iter(table.chunks(ONNX_CHECK_ROWS)))[0]
        write_model(written, saved_encoder, first_rows, model_info)
        files.write_synced(written["embedding"], lambda p: write_embedding(
            p, table.chunks(), encode, table.label_column is not None, kept))
        seconds["save"] = time.time() - t
        t = time.time()
        files.write_synced(written["plot"], lambda p: write_plot(p, job.name, shown, table.rows, manifest))
        seconds["plot"] = time.time() - t
        if decoder is not None:
            files.write_synced(version / "decoder.keras", lambda p: save_keras(p, decoder))
        seconds["total"] = time.time() - started
        manifest.seconds = {k: round(v, 3) for k, v in seconds.items()}
        if manifest.run is not None:
            manifest.run.finished_at = utc_now()
        if rejected:
            manifest.rejected = rejected
        manifest.files = {name: FileEntry(path=str(readers[name]), sha256=sha256_file(path),
                                          bytes=path.stat().st_size) for name, path in written.items()}
        files.write_synced(version / "manifest.json", lambda p: published.write_record(p, manifest))  # the commit
        files.fsync_folder(version)
        if rejected:
            _keep_rejected(folder, version, stamp)
            return
    except BaseException:
        shutil.rmtree(version, ignore_errors=True)
        raise
    switch_in(destination, job.name, version, stamp)


def switch_in(destination: Destination, name: str, version: Path, stamp: str, keep_on_failure: bool = False) -> None:
    """Publish the complete version folder `version` (every file, manifest.json last, written):
    stage the Models/ copies and the history copy, switch `..data` to it with one rename, link
    the reader paths, rename the staged copies into place, remove the older versions. Before
    the switch nothing a reader sees has changed; a failure then removes the version folder
    (unless `keep_on_failure`: the caller puts it back where it came from)."""
    folder = destination.job_folder(name)
    readers = reader_paths(destination, name)
    staged = []
    try:
        _step("version folder written")
        for key, file_name in MODEL_FILES.items():
            staged.append((files.stage(readers[key], _copy(version / file_name)), readers[key]))
        _step("models staged")
        history = folder / "history"
        history.mkdir(exist_ok=True)
        history_copy = history / f"{stamp}-manifest.json"
        staged.append((files.stage(history_copy, _copy(version / "manifest.json")), history_copy))
        _step("history staged")
    except BaseException:
        files.discard(staged)
        if not keep_on_failure:
            shutil.rmtree(version, ignore_errors=True)
        raise
    with files.signals_deferred():
        _switch(folder, version.name)
        _step("switched")
        _link_readers(folder)
        _step("readers linked")
        try:
            files.rename_all(staged[:len(MODEL_FILES)])
        except OutputError as exc:  # published; the next run's recover() mends Models/
            files.discard(staged)
            raise exc.replaced(reason=f"{exc.reason}; the outputs were published, and the next run puts the "
                                      f"model back in place") from None
        _step("models renamed")
        files.rename_all(staged[len(MODEL_FILES):])
        _step("history renamed")
    _remove_old_versions(folder, keep=version.name)
    _step("old versions removed")
    prune_history(folder)


def _keep_rejected(folder: Path, version: Path, stamp: str, keep: int = REJECTED_KEEP) -> None:
    """A rejected candidate: its folder to outputs/<job>/rejected/, its manifest to history/."""
    history = folder / "history"
    history.mkdir(exist_ok=True)
    files.publish([(files.stage(history / f"{stamp}-rejected-manifest.json", _copy(version / "manifest.json")),
                    history / f"{stamp}-rejected-manifest.json")])
    kept = folder / "rejected"
    kept.mkdir(exist_ok=True)
    os.replace(version, kept / stamp)
    for old in sorted(p for p in kept.iterdir() if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def write_status(destination: Destination, name: str, record: StatusRecord) -> None:
    """outputs/<job>/status.json, atomically: how the last attempt ended (the one file a failed
    or rejected attempt changes). A copy goes to history/ for every attempt that published
    nothing, so `reducer history` can tell every night."""
    folder = destination.job_folder(name)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "status.json"
    staged = [(files.stage(target, lambda p: published.write_record(p, record)), target)]
    if record.status in (Status.FAILED, Status.UNCHANGED):
        history = folder / "history"
        history.mkdir(exist_ok=True)
        copy = history / f"{run_stamp()}-status.json"
        staged.append((files.stage(copy, lambda p: published.write_record(p, record)), copy))
    files.publish(staged)


def published_manifest(destination: Destination, name: str) -> tuple[Manifest | None, str | None]:
    """(the published manifest, its sha256), or (None, None) when nothing is published;
    PublishedRecordError when it cannot be read."""
    return published.read_manifest_and_digest(destination.job_folder(name) / published.MANIFEST)


def _switch(folder: Path, version_name: str) -> None:
    """Point `..data` at `version_name` with one atomic rename: the moment of publication."""
    link = folder / DATA_LINK
    temp = files.temp_path(link)
    os.symlink(version_name, temp)
    try:
        os.replace(temp, link)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise files.output_error(link, exc) from None
    files.fsync_folder(folder)


def _link_readers(folder: Path) -> None:
    """Make each reader path a symlink into ..data (once per job folder; a plain file from an
    older reducer is replaced by a link to the same bytes)."""
    for name in READER_FILES:
        path = folder / name
        wanted = f"{DATA_LINK}/{name}"
        if path.is_symlink() and os.readlink(path) == wanted:
            continue
        _check_replaceable(path)
        temp = files.temp_path(path)
        os.symlink(wanted, temp)
        os.replace(temp, path)
    files.fsync_folder(folder)


def _remove_old_versions(folder: Path, keep: str) -> None:
    for entry in folder.iterdir():
        if VERSION_NAME.fullmatch(entry.name) and entry.name != keep and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)


def prune_history(job_folder: Path | str, keep: int = HISTORY_KEEP) -> None:
    """Remove the oldest manifests and status records in history/ beyond `keep` each."""
    for pattern in ("*-manifest.json", "*-status.json"):
        kept = sorted((Path(job_folder) / "history").glob(pattern))
        for old in kept[:-keep]:
            with contextlib.suppress(OSError):
                old.unlink()


def published_version(folder: Path | str) -> Optional[Path]:
    """The version folder `..data` points to, or None when nothing is published this way."""
    link = Path(folder) / DATA_LINK
    if not link.is_symlink():
        return None
    target = os.readlink(link)
    return Path(folder) / target if VERSION_NAME.fullmatch(target) and (Path(folder) / target).is_dir() else None


# ---------------------------------------------------------------- after a crash


def recover(destination: Destination, name: str) -> list[str]:
    """Bring one job's published files back to one consistent run; returns what it mended, one
    line each. Call while holding the outputs folder's lock, before the job runs."""
    folder = destination.job_folder(name)
    if not folder.is_dir():
        return []
    mended = []
    version = published_version(folder)
    if version is None:
        if not (folder / "manifest.json").is_file() or (folder / "manifest.json").is_symlink():
            return []
        version = _adopt_plain_files(folder, destination, name)
        mended.append(f"moved {folder}'s published files into {version.name} (one switch for all)")
    _link_readers(folder)
    stale = [e for e in folder.iterdir() if VERSION_NAME.fullmatch(e.name) and e != version]
    _remove_old_versions(folder, keep=version.name)
    if stale:
        mended.append(f"removed {len(stale)} unpublished version folder(s) of {name}")
    try:
        manifest = published.read_manifest(version / published.MANIFEST)
    except PublishedRecordError as exc:
        raise OutputError(path=version / published.MANIFEST,
                          reason=f"the published manifest cannot be read ({exc.key + ' ' if exc.key else ''}"
                                 f"{exc.reason}); move {folder} away to start afresh") from None
    if manifest is None or not manifest.files:
        raise OutputError(path=version / published.MANIFEST,
                          reason=f"the published manifest cannot be read (no files listed); move {folder} "
                                 f"away to start afresh")
    entries = manifest.files
    readers = reader_paths(destination, name)  # this run's Models/, whatever the manifest's paths say
    for key, file_name in MODEL_FILES.items():
        entry, copy = entries.get(key), version / file_name
        if entry is None or not copy.is_file():
            continue
        target = readers[key]
        if target.is_file() and sha256_file(target) == entry.sha256:
            continue
        _check_replaceable(target)
        ensure_writable_folder(target.parent)
        files.publish([(files.stage(target, _copy(copy)), target)])
        mended.append(f"restored {target} to the published run's")
    return mended


def _adopt_plain_files(folder: Path, destination: Destination, name: str) -> Path:
    """A job folder written by an older reducer (plain files): copy its set into a version
    folder, switch to it, then swap each plain file for a link to the same bytes."""
    manifest = published.read_manifest(folder / published.MANIFEST) or Manifest()
    _check_replaceable(folder / DATA_LINK)
    sources = {name_: folder / name_ for name_ in READER_FILES}
    readers = reader_paths(destination, name)
    for key, file_name in MODEL_FILES.items():  # only a model that is the manifest's
        entry, path = manifest.files.get(key), readers[key]
        if entry and path.is_file() and sha256_file(path) == entry.sha256:
            sources[file_name] = path
    version = folder / f"..v-{run_stamp()}-{os.urandom(4).hex()}"
    version.mkdir()
    try:
        for file_name, source in sources.items():
            if source.is_file():
                files.write_synced(version / file_name, _copy(source))
        files.fsync_folder(version)
        _switch(folder, version.name)
    except BaseException:
        shutil.rmtree(version, ignore_errors=True)
        raise
    return version
