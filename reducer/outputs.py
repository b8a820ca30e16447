"""Everything reducer writes to disk, and how it is published.

Readers never see a partial file: each file is written to a temporary name in its target
folder, flushed and fsynced, made readable by others (0644) and renamed over the target; the
folder is fsynced after. The manifest goes last and lists the files of its run with their
sha256: it is the consumer's "done" marker. A copy of every manifest stays in
`outputs/<job>/history/` so a bad night can be compared with a good one.
"""

import contextlib
import hashlib
import json
import os
import secrets
import time
from pathlib import Path

import numpy as np

from .errors import OutputError

TEMP_MARK = ".tmp-"
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


def stage(target, write):
    """Call write(temp) for a temporary file beside `target`; return the synced temp path.

    A failure (a full disk, say) removes the temporary and raises OutputError naming the target.
    """
    temp = temp_path(target)
    try:
        write(temp)
        os.chmod(temp, 0o644)
        _fsync_path(temp)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
        raise
    return temp


def publish(staged):
    """Rename each (temp, target) pair into place, in order, then fsync their folders."""
    folders = set()
    for temp, target in staged:
        os.replace(temp, target)
        folders.add(Path(target).parent)
    for folder in folders:
        _fsync_path(folder, directory=True)


def discard(staged):
    for temp, _ in staged:
        with contextlib.suppress(OSError):
            os.unlink(temp)


def remove_stale_temporaries(folder):
    """Temporaries left by a killed run; call only while holding the run lock."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.glob(f".*{TEMP_MARK}*") if p.is_file()]
    for path in stale:
        with contextlib.suppress(OSError):
            path.unlink()
    return stale


def ensure_writable_folder(folder):
    """Create `folder` and prove a file can be written there, before any training starts."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = temp_path(folder / "write-check")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write to folder {folder}: {exc.strerror or exc}") from None


def write_embedding(path, ids, labels, coordinates):
    """embedding.csv: id, label (when there is one), component_1..k; plain floats, '\\n' ends."""
    import pandas as pd

    columns = {"id": ids}
    if labels is not None:
        columns["label"] = labels
    for k in range(coordinates.shape[1]):
        columns[f"component_{k + 1}"] = coordinates[:, k].astype(np.float64)
    # %.9g round-trips float32 exactly, so the CSV holds the encoder's numbers, not rounded ones.
    pd.DataFrame(columns).to_csv(path, index=False, lineterminator="\n", float_format="%.9g")


def write_json(path, value):
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        json.dump(value, handle, indent=2, sort_keys=False, default=str)
        handle.write("\n")


def save_keras(path, model):
    model.save(path)  # the temp name is new, so Keras never prompts about overwriting


def write_plot(path, title, coordinates, labels, subtitle=None):
    from .plot import draw

    draw(path, title, coordinates, labels, subtitle)


def archive_manifest(job_folder, manifest_path, stamp):
    """Keep a copy of this run's manifest in history/, pruning the oldest beyond HISTORY_KEEP."""
    history = Path(job_folder) / "history"
    history.mkdir(exist_ok=True)
    target = history / f"{stamp}-manifest.json"
    publish([(stage(target, lambda temp: temp.write_bytes(Path(manifest_path).read_bytes())), target)])
    kept = sorted(history.glob("*-manifest.json"))
    for old in kept[:-HISTORY_KEEP]:
        with contextlib.suppress(OSError):
            old.unlink()


def run_stamp():
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
