"""Publishing one job's files: all of them switch together, or none do.

Each run writes its complete set into a fresh version folder, then switches one symlink with
an atomic rename (the design of Kubernetes' AtomicWriter), so a reader of `outputs/<job>/`
sees one run's files at every instant:

    outputs/<job>/..v-<UTC stamp>-<pid>-<hex>/   embedding.csv, plot.png, model.keras,
                                                 model.onnx, model.json, manifest.json (last)
    outputs/<job>/..data -> ..v-...              the published run; renaming it is the commit
    outputs/<job>/embedding.csv -> ..data/embedding.csv    (plot.png, manifest.json alike):
                                                 the paths readers have always used
    outputs/<job>/history/                       a copy of every published manifest, renamed
                                                 there right after the switch; until then
                                                 history's readers count the live version's
                                                 manifest (published.read_history), so the
                                                 record is part of the switch
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
from reducer.errors import HistoryRecordError, OutputError, PublishedRecordError
from reducer.published import FileEntry, Manifest, Status, StatusRecord, write_embedding
from reducer.files import ensure_writable_folder, managed_folder, sha256_file, write_json

if TYPE_CHECKING:
    from reducer.config import Job
    from reducer.tables.table import Table

log = logging.getLogger("reducer")

DATA_LINK = published.DATA_LINK  # the layout is published.py's: one definition
VERSION_NAME = published.VERSION_NAME
STAMP_NAME = re.compile(r"\d{8}T\d{6}Z-\d+")  # run_stamp(): a rejected candidate's folder
HISTORY_NAME = re.compile(r"\d{8}T\d{6}Z-\d+-(manifest|rejected-manifest|status)\.json")
READER_FILES = ("embedding.csv", "plot.png", "manifest.json", "map.html")  # linked in outputs/<job>/
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


def write_model(paths: dict, model: Any, check_rows: np.ndarray, info: dict, mode: int = files.PUBLIC) -> None:
    """The saved encoder's three files (MODEL_FILES' keys -> paths): .keras, the .onnx checked
    against it on `check_rows`, and the .json naming its columns (`info`); each written whole or
    not at all, with `mode`. A job's publication and reducer.Map.save both write them here."""
    files.write_synced(paths["model"], lambda p: save_keras(p, model), mode)
    files.write_synced(paths["model_onnx"], lambda p: save_onnx(p, model, check_rows, info), mode)
    files.write_synced(paths["model_info"], lambda p: write_json(p, info), mode)


def write_plot(path: Path, title: str, shown: Shown, rows: int, manifest: Manifest) -> None:
    """plot.png from values: the plotted rows, the table's size, the run's time and quality, and
    the stacked-rows warning of the manifest's `map` section (the one its `warnings` carry)."""
    from reducer.plot import draw
    from reducer.quality import stacking_headline

    draw(path, title, shown.coordinates, shown.labels, label_name=shown.label_column, rows=rows,
         run_at=manifest.started_at, quality=manifest.quality, warning=stacking_headline(manifest.extra.get("map")))


def _copy(source: Path | str) -> Callable[[Path | str], Any]:
    return lambda target: shutil.copyfile(source, target)


def _mode_of(path: Path) -> int:
    return os.stat(path).st_mode & 0o777


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


def own_folder(folder: Path) -> Path:
    """`folder` as a folder of reducer's own (managed_folder: never a link, never a file),
    created with its parents when absent, and proven writable."""
    files.managed_folder_exists(folder)
    ensure_writable_folder(folder)
    return folder


def check_job_folders(destination: Destination, name: str) -> None:
    """Before training: outputs/<job>/, its history/ and rejected/ and the models folder are
    each absent or a folder of reducer's own (no symbolic link, no file in their place) that
    can take files. OutputError naming the first that is not; nothing is touched."""
    folder = destination.job_folder(name)
    files.managed_folder_exists(destination.models_root)
    if files.managed_folder_exists(folder):
        ensure_writable_folder(folder)
        for sub in ("history", "rejected"):
            files.managed_folder_exists(folder / sub)
    for path in [*reader_paths(destination, name).values(), *(folder / n for n in READER_FILES), folder / DATA_LINK]:
        _check_replaceable(path)


def publish_job(job: Job, destination: Destination, table: Table, encode: Callable[[np.ndarray], np.ndarray],
                shown: Shown, saved_encoder: Any, manifest: Manifest, seconds: dict[str, float], started: float,
                decoder: Any = None, rejected: Optional[str] = None,
                kept: Optional[dict[str, np.ndarray]] = None, mode: int = files.PUBLIC,
                map_page: Optional[Callable[..., int]] = None) -> None:
    """Write one job's files into a new version folder, then switch them in all at once.

    table: the job's table (its `chunks()` feed embedding.csv); encode(raw) -> coordinates.
    decoder: kept in the version folder (not published) so a later run can warm-start from it.
    mode: of every file written (files.mode_for: 0600 for an input others cannot read).
    map_page: report.write_map_page, to put the interactive map.html in the version folder, so
    that it switches with the files it shows.
    rejected: the reason the quality gate refused this map: the folder is then kept in
    outputs/<job>/rejected/ for an operator to look at, its manifest in history/, and nothing
    readers see changes. Before the switch nothing a reader sees has changed; a failure
    removes the new folder.
    """
    folder = own_folder(destination.job_folder(job.name))
    own_folder(destination.models_root)
    readers = reader_paths(destination, job.name)
    for path in [*readers.values(), *(folder / name for name in READER_FILES), folder / DATA_LINK]:
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
        write_model(written, saved_encoder, first_rows, model_info, mode)
        files.write_synced(written["embedding"], lambda p: write_embedding(
            p, table.chunks(), encode, table.label_column is not None, kept), mode)
        seconds["save"] = time.time() - t
        t = time.time()
        files.write_synced(written["plot"], lambda p: write_plot(p, job.name, shown, table.rows, manifest), mode)
        seconds["plot"] = time.time() - t
        if decoder is not None:
            files.write_synced(version / "decoder.keras", lambda p: save_keras(p, decoder), mode)
        seconds["total"] = time.time() - started
        manifest.seconds = {k: round(v, 3) for k, v in seconds.items()}
        if manifest.run is not None:
            manifest.run.finished_at = utc_now()
        if rejected:
            manifest.rejected = rejected
        manifest.files = {name: FileEntry(path=str(readers[name]), sha256=sha256_file(path),
                                          bytes=path.stat().st_size) for name, path in written.items()}
        files.write_synced(version / "manifest.json", lambda p: published.write_record(p, manifest), mode)  # the commit
        if map_page is not None:  # its stamp is the manifest file's sha256
            map_page(version, manifest, sha256_file(version / "manifest.json"), name=job.name, mode=mode)
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
    mode = _mode_of(version / "manifest.json")  # the copies are no more readable than the version's files
    staged = []
    try:
        _step("version folder written")
        for key, file_name in MODEL_FILES.items():
            staged.append((files.stage(readers[key], _copy(version / file_name), mode), readers[key]))
        _step("models staged")
        history = managed_folder(folder / "history")
        history_copy = history / f"{stamp}-manifest.json"
        staged.append((files.stage(history_copy, _copy(version / "manifest.json"), mode), history_copy))
        _step("history staged")
    except BaseException:
        files.discard(staged)
        if not keep_on_failure:
            shutil.rmtree(version, ignore_errors=True)
        raise
    previous = published_version(folder)  # kept until the next switch: readers may be in it
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
    _remove_old_versions(folder, keep={version.name, previous.name if previous else version.name})
    _step("old versions removed")


def _keep_rejected(folder: Path, version: Path, stamp: str, keep: int = REJECTED_KEEP) -> None:
    """A rejected candidate: its folder to outputs/<job>/rejected/, its manifest to history/."""
    history = managed_folder(folder / "history")
    kept = managed_folder(folder / "rejected")
    files.publish([(files.stage(history / f"{stamp}-rejected-manifest.json", _copy(version / "manifest.json"),
                                _mode_of(version / "manifest.json")), history / f"{stamp}-rejected-manifest.json")])
    os.replace(version, kept / stamp)
    # Only folders this code put there (named by run_stamp, real folders): never anything else.
    ours = sorted(entry.name for entry in os.scandir(kept)
                  if STAMP_NAME.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False))
    for old in ours[:-keep]:
        if old != stamp:
            shutil.rmtree(kept / old, ignore_errors=True)


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def write_status(destination: Destination, name: str, record: StatusRecord, mode: int = files.PUBLIC) -> None:
    """outputs/<job>/status.json, atomically: how the last attempt ended (the one file a failed
    or rejected attempt changes). A copy goes to history/ for every attempt that published
    nothing, so `reducer history` can tell every night. When history/ cannot take it (a file in
    its place), status.json is written all the same, then HistoryRecordError says so."""
    folder = destination.job_folder(name)
    Path(destination.outputs_root).mkdir(parents=True, exist_ok=True)
    managed_folder(folder)
    target = folder / "status.json"
    staged = [(files.stage(target, lambda p: published.write_record(p, record), mode), target)]
    no_history: Optional[OutputError] = None
    if record.status in (Status.FAILED, Status.UNCHANGED):
        try:
            history = managed_folder(folder / "history")
        except OutputError as exc:  # a file in history/'s place, say: status.json still tells the attempt
            no_history = exc
        else:
            copy = history / f"{run_stamp()}-status.json"
            staged.append((files.stage(copy, lambda p: published.write_record(p, record), mode), copy))
    files.publish(staged)
    if no_history is not None:
        raise HistoryRecordError(f"status.json written, but not its history record: {no_history}")
    prune_history(folder)  # every night, whatever it did


def published_manifest(destination: Destination, name: str) -> tuple[Manifest | None, str | None]:
    """(the published manifest, its sha256), or (None, None) when nothing is published;
    PublishedRecordError when it cannot be read."""
    return published.read_manifest_and_digest(destination.job_folder(name) / published.MANIFEST)


def damaged_file(destination: Destination, name: str, manifest: Manifest) -> Optional[str]:
    """The first published file (in the version folder `..data` points to) whose sha256 is not the
    manifest's, as "embedding.csv (its sha256 is not the manifest's)", or None when every file the
    manifest lists is intact. Read before a job is called unchanged: one read of each file."""
    version = published_version(destination.job_folder(name))
    if version is None or not manifest.files:
        return "the published run's files (no version folder or no files listed)"
    places = {**MODEL_FILES, "embedding": "embedding.csv", "plot": "plot.png"}
    for key, entry in manifest.files.items():
        path = version / places.get(key, str(key))
        try:
            if not path.is_file() or path.is_symlink():
                return f"{path.name} (missing, or not a regular file)"
            if sha256_file(path) != entry.sha256:
                return f"{path.name} (its sha256 is not the manifest's)"
        except OSError as exc:
            return f"{path.name} ({exc.strerror or exc})"
    return None


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
        if not (folder / wanted).exists():  # a run published before map pages were (the report adds it)
            continue
        _check_replaceable(path)
        temp = files.temp_path(path)
        os.symlink(wanted, temp)
        os.replace(temp, path)
    files.fsync_folder(folder)


def _remove_old_versions(folder: Path, keep: set) -> list[str]:
    """Remove the version folders (real folders, never a link) not named in `keep`; returns the
    names removed."""
    removed = []
    for entry in os.scandir(folder):
        if VERSION_NAME.fullmatch(entry.name) and entry.name not in keep and entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.name)
    return removed


def _stamp_of(version_name: str) -> str:
    """The run stamp in a version folder's name (`..v-STAMP-HEX`), as its history copy is named."""
    return published.version_stamp(version_name)


def _superseded(folder: Path, current: str) -> Optional[str]:
    """The newest version folder published before `current` (its manifest has a history copy):
    kept for the readers still reading it, until the next switch."""
    history = folder / "history"
    published = sorted(entry.name for entry in os.scandir(folder)
                       if VERSION_NAME.fullmatch(entry.name) and entry.name != current
                       and entry.is_dir(follow_symlinks=False)
                       and os.path.lexists(history / f"{_stamp_of(entry.name)}-manifest.json"))
    return published[-1] if published else None


def prune_history(job_folder: Path | str, keep: int = HISTORY_KEEP) -> None:
    """Remove the oldest manifests and status records in history/ beyond `keep` each: only
    names reducer gives them, and never through a link (a linked history/ is left alone)."""
    try:
        history = Path(job_folder) / "history"
        if not files.managed_folder_exists(history):
            return
    except OutputError as exc:
        log.warning("history not pruned: %s", exc)
        return
    names = sorted((entry.name for entry in os.scandir(history)
                    if HISTORY_NAME.fullmatch(entry.name) and not entry.is_dir(follow_symlinks=False)),
                   key=published.history_order)
    for kind in (("-manifest.json",), ("-status.json",)):
        kept = [name for name in names if name.endswith(kind)]
        for old in kept[:-keep]:
            with contextlib.suppress(OSError):
                os.unlink(history / old)


def published_version(folder: Path | str) -> Optional[Path]:
    """The version folder `..data` points to, or None when nothing is published this way."""
    return published.live_version(folder)


# ---------------------------------------------------------------- after a crash


def recover(destination: Destination, name: str) -> list[str]:
    """Bring one job's published files back to one consistent run; returns what it mended, one
    line each. Call while holding the outputs folder's lock, before the job runs."""
    folder = destination.job_folder(name)
    if not files.managed_folder_exists(folder):
        return []
    mended = []
    version = published_version(folder)
    if version is None:
        if not (folder / "manifest.json").is_file() or (folder / "manifest.json").is_symlink():
            return []
        version = _adopt_plain_files(folder, destination, name)
        mended.append(f"moved {folder}'s published files into {version.name} (one switch for all)")
    _link_readers(folder)
    previous = _superseded(folder, version.name)
    removed = _remove_old_versions(folder, keep={version.name, previous or version.name})
    history = folder / "history"
    unpublished = [n for n in removed if not os.path.lexists(history / f"{_stamp_of(n)}-manifest.json")]
    if unpublished:
        mended.append(f"removed {len(unpublished)} unpublished version folder(s) of {name}")
    entries = _manifest_files(version / "manifest.json", folder)
    recorded = _record_in_history(folder, version)
    if recorded:
        mended.append(f"recorded the published run in {recorded}")
    readers = reader_paths(destination, name)  # this run's Models/, whatever the manifest's paths say
    for key, file_name in MODEL_FILES.items():
        entry, copy = entries.get(key), version / file_name
        if entry is None or not copy.is_file():
            continue
        target = readers[key]
        if target.is_file() and sha256_file(target) == entry.sha256:
            continue
        _check_replaceable(target)
        own_folder(target.parent)
        files.publish([(files.stage(target, _copy(copy), _mode_of(copy)), target)])
        mended.append(f"restored {target} to the published run's")
    return mended


def _record_in_history(folder: Path, version: Path) -> Optional[Path]:
    """The history copy of the published manifest, written when a kill came between the switch
    and the history rename (or never made); its path, or None when history already has it."""
    history = managed_folder(folder / "history")
    target = history / f"{_stamp_of(version.name)}-manifest.json"
    if os.path.lexists(target):
        return None
    record = published.read_json(version / published.MANIFEST)
    for entry in os.scandir(history):  # an adopted run's copy has its older stamp
        if HISTORY_NAME.fullmatch(entry.name) and entry.name.endswith("-manifest.json"):
            with contextlib.suppress(PublishedRecordError):
                if published.read_json(Path(entry.path)) == record:
                    return None
    files.publish([(files.stage(target, _copy(version / "manifest.json"), _mode_of(version / "manifest.json")),
                    target)])
    return target


def _manifest_files(path: Path, folder: Path) -> dict[str, FileEntry]:
    """The files the manifest at `path` lists; OutputError in one line when it cannot be read or
    lists none (a damaged or hand-edited file), naming the folder to move away."""
    try:
        manifest = published.read_manifest(path)
    except PublishedRecordError as exc:
        raise OutputError(path=path, reason=f"the published manifest cannot be read ({exc.key + ' ' if exc.key else ''}"
                                            f"{exc.reason}); move {folder} away to start afresh (it was left as it "
                                            f"is)") from None
    if manifest is None or not manifest.files:
        raise OutputError(path=path, reason=f"the published manifest cannot be read (no files listed); move {folder} "
                                            f"away to start afresh (it was left as it is)")
    return manifest.files


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
