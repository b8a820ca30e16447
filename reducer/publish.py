"""Everything reducer writes to disk, and how it is published.

Readers never see a partial file: each file is written to a temporary name in its target
folder, flushed and fsynced, made readable by others (0644) and renamed over the target; the
folder is fsynced after. The manifest goes last and lists the files of its run with their
sha256: it is the consumer's "done" marker. A copy of every manifest stays in
`outputs/<job>/history/` so a bad night can be compared with a good one.
"""

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import re
import secrets
import signal
import threading
import time
from pathlib import Path

import numpy as np

from reducer.errors import OutputError, TrainingError

TEMP_MARK = ".tmp-"
TEMP_PID = re.compile(r"\.tmp-(\d+)-[0-9a-f]+")
HISTORY_KEEP = 100  # manifests kept per job


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def temp_path(target):
    """A hidden name beside `target`, keeping its suffix (Keras insists on `.keras`)."""
    target = Path(target)
    return target.with_name(f".{target.stem}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}{target.suffix}")


def _fsync_path(path, directory=False):
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _os_error(exc):
    """The OSError behind `exc`, if any: libraries (Keras, h5py) wrap a full disk in their own types."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno is not None:
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _output_error(target, exc):
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        reason += "; the previous version is untouched"
    return OutputError(f"cannot write {target}: {reason}")


def stage(target, write):
    """Call write(temp) for a temporary file beside `target`; return the synced temp path.

    A failure (a full disk, say) removes the temporary and raises OutputError naming the target;
    the target itself is never touched before `publish`.
    """
    temp = temp_path(target)
    try:
        write(temp)
        os.chmod(temp, 0o644)
        _fsync_path(temp)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        cause = _os_error(exc) if isinstance(exc, Exception) else None
        if cause is not None:
            raise _output_error(target, cause) from None
        raise
    return temp


@contextlib.contextmanager
def _signals_deferred():
    """Hold SIGTERM and Ctrl-C for the milliseconds the renames take, then deliver them.

    A run stopped half way through the renames would leave new files beside the old manifest.
    (Blocking the signals with a mask would not do: TensorFlow's threads would take them.)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = {number: signal.signal(number, lambda signum, frame: caught.append(signum))
                for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        for number in caught:
            signal.raise_signal(number)


def publish(staged):
    """Rename each (temp, target) pair into place, in order, then fsync their folders.

    Put the file that marks completion (the manifest) last. If a rename fails, the temporaries
    not yet renamed are removed and OutputError is raised.
    """
    folders = set()
    with _signals_deferred():
        for i, (temp, target) in enumerate(staged):
            try:
                os.replace(temp, target)
            except OSError as exc:
                discard(staged[i:])
                raise _output_error(target, exc) from None
            folders.add(Path(target).parent)
    for folder in folders:
        with contextlib.suppress(OSError):  # some file systems cannot fsync a folder
            _fsync_path(folder, directory=True)


def discard(staged):
    for temp, _ in staged:
        with contextlib.suppress(OSError):
            os.unlink(temp)


def _owner_alive(path):
    """True when the temporary's writer (the pid in its name) is another live process."""
    found = TEMP_PID.search(path.name)
    if not found or int(found[1]) == os.getpid():
        return False
    try:
        os.kill(int(found[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder):
    """Temporaries left in `folder` (and its history/) by a killed run; returns those removed.

    Call only while holding the run lock. A temporary whose writer is still alive is left
    alone: a run on another outputs folder may share the models folder.
    """
    folder = Path(folder)
    stale = []
    for place in (folder, folder / "history"):
        if place.is_dir():
            stale += [p for p in place.glob(f".*{TEMP_MARK}*") if p.is_file() and not _owner_alive(p)]
    for path in stale:
        with contextlib.suppress(OSError):
            path.unlink()
    return stale


def ensure_writable_folder(folder):
    """Create `folder` and prove a file can be written there, before any training starts."""
    folder = Path(folder)
    try:
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "exists and is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        probe = temp_path(folder / "write-check")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write to folder {folder}: {exc.strerror or exc}") from None


def check_folder(folder):
    """Prove `folder` can take files when it exists; when it does not, its parent was checked."""
    folder = Path(folder)
    if folder.exists() or folder.is_symlink():
        ensure_writable_folder(folder)


def write_embedding(path, chunks, encode, with_labels):
    """embedding.csv: id, label (when there is one), component_1..k; plain floats, '\\n' ends.

    chunks: (raw rows, ids, labels) pieces in order (a table's `chunks()`); encode(raw) gives
    their coordinates. Written a piece at a time, so a table on disk never has to fit in memory.
    """
    import pandas as pd

    with open(path, "w", encoding="utf-8", newline="") as handle:
        first = True
        for raw, ids, labels in chunks:
            coordinates = np.asarray(encode(raw))
            if not np.all(np.isfinite(coordinates)):
                raise TrainingError("training produced NaN or infinite coordinates; nothing published")
            columns = {"id": ids}
            if with_labels:
                columns["label"] = labels
            for k in range(coordinates.shape[1]):
                columns[f"component_{k + 1}"] = coordinates[:, k].astype(np.float64)
            # %.9g round-trips float32 exactly, so the CSV holds the encoder's numbers, not rounded ones.
            pd.DataFrame(columns).to_csv(handle, header=first, index=False, lineterminator="\n",
                                         float_format="%.9g")
            first = False


def write_json(path, value):
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        json.dump(value, handle, indent=2, sort_keys=False, default=str)
        handle.write("\n")


def save_keras(path, model):
    model.save(path)  # the temp name is new, so Keras never prompts about overwriting


def write_plot(path, title, coordinates, labels, subtitle=None):
    from reducer.plot import draw

    draw(path, title, coordinates, labels, subtitle)


def stage_manifest(job_folder, manifest, stamp):
    """Stage this run's manifest and its copy in history/: [(temp, target)], in publishing order.

    Both are staged before anything is published, so a disk that fills up here leaves the
    previous run's files as they were; the history copy is renamed after the manifest, so
    history/ only ever holds manifests that were published.
    """
    history = Path(job_folder) / "history"
    try:
        history.mkdir(exist_ok=True)
    except OSError as exc:
        raise _output_error(history, exc) from None
    staged = []
    try:
        for target in (Path(job_folder) / "manifest.json", history / f"{stamp}-manifest.json"):
            staged.append((stage(target, lambda temp: write_json(temp, manifest)), target))
    except BaseException:
        discard(staged)
        raise
    return staged


def prune_history(job_folder, keep=HISTORY_KEEP):
    """Remove the oldest manifests in history/ beyond `keep`."""
    kept = sorted((Path(job_folder) / "history").glob("*-manifest.json"))
    for old in kept[:-keep]:
        with contextlib.suppress(OSError):
            old.unlink()


def run_stamp():
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"


# ---------------------------------------------------------------- one job's files


@dataclasses.dataclass(frozen=True)
class Destination:
    """Where one job's files go."""

    outputs_root: Path
    models_root: Path

    def job_folder(self, name):
        return Path(self.outputs_root) / name

    def model_path(self, name):
        return Path(self.models_root) / f"{name}.keras"

    def model_info_path(self, name):
        return Path(self.models_root) / f"{name}.json"


@dataclasses.dataclass(frozen=True)
class Shown:
    """What the plot draws: the coordinates and labels of the plotted rows, and the columns."""

    coordinates: np.ndarray
    labels: object  # array or None
    features: tuple
    id_column: object
    label_column: object


def publish_job(job, destination, table, encode, shown, saved_encoder, manifest, seconds, started):
    """Stage every file of one job, then rename them into place, the manifest last.

    table: the job's table (its `chunks()` feed embedding.csv); encode(raw) -> coordinates.
    """
    folder = destination.job_folder(job.name)
    ensure_writable_folder(folder)
    ensure_writable_folder(destination.models_root)
    targets = {
        "model": destination.model_path(job.name),
        "model_info": destination.model_info_path(job.name),
        "embedding": folder / "embedding.csv",
        "plot": folder / "plot.png",
    }
    staged = []
    try:
        t = time.time()
        staged.append((stage(targets["model"], lambda p: save_keras(p, saved_encoder)), targets["model"]))
        model_info = {"job": job.name, "features": list(shown.features), "id_column": shown.id_column,
                      "label_column": shown.label_column, "latent": job.model.latent,
                      "reducer": manifest["versions"]["reducer"]}
        staged.append((stage(targets["model_info"], lambda p: write_json(p, model_info)), targets["model_info"]))
        staged.append((stage(targets["embedding"], lambda p: write_embedding(
            p, table.chunks(), encode, table.label_column is not None)), targets["embedding"]))
        seconds["save"] = time.time() - t
        t = time.time()
        staged.append((stage(targets["plot"], lambda p: write_plot(
            p, job.name, shown.coordinates, shown.labels, manifest.get("subtitle"))), targets["plot"]))
        seconds["plot"] = time.time() - t
        seconds["total"] = time.time() - started
        manifest["seconds"] = {k: round(v, 3) for k, v in seconds.items()}
        manifest["files"] = {name: {"path": str(target), "sha256": sha256_file(temp),
                                    "bytes": Path(temp).stat().st_size}
                             for name, (temp, target) in zip(targets, staged)}
        staged += stage_manifest(folder, manifest, run_stamp())
    except BaseException:
        discard(staged)
        raise
    publish(staged)  # the manifest comes after the files it lists: it marks the run complete
    prune_history(folder)
