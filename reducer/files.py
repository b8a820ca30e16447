"""Writing one file so that no reader ever sees it half-written.

Each file is written to a temporary name in its target folder, flushed and fsynced, made
readable by others (0644) and renamed over the target; the folder is fsynced after. Temporary
names follow one exact pattern (`.NAME.tmp-PID-XXXXXXXX[.EXT]`), so the sweep after a killed
run removes what reducer wrote and nothing else. publish.py builds a job's all-or-nothing
publication on these.
"""

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ContextManager, Optional

from reducer import stopping
from reducer.errors import OutputError, WriteError

TEMP_MARK = ".tmp-"
# Exactly what temp_path() makes: a hidden name, the pid, 8 hex digits, the target's suffix.
TEMP_NAME = re.compile(r"\..+\.tmp-(\d+)-[0-9a-f]{8}(\.[A-Za-z0-9]+)?")
PAGE_LIMIT = 64 << 20  # what read_regular reads at most: a map page of 50,000 points is about 1.4 MB


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def temp_path(target: Path | str) -> Path:
    """A hidden name beside `target`, keeping its suffix (Keras insists on `.keras`)."""
    target = Path(target)
    stem, suffix = (target.name, "") if target.name.startswith(".") else (target.stem, target.suffix)
    return target.with_name(f".{stem}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def fsync_path(path: Path | str, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: Path | str) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot fsync a folder
        fsync_path(folder, directory=True)


def os_error(exc: BaseException) -> OSError | None:
    """The OSError behind `exc`, if any: libraries (Keras, h5py) wrap a full disk in their own types."""
    seen = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if isinstance(link, OSError) and link.errno is not None:
            return link
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return None


def output_error(target: Path | str, exc: OSError) -> WriteError:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        reason += "; the previous version is untouched"
    return WriteError(path=target, reason=reason)


PUBLIC, PRIVATE = 0o644, 0o600


def mode_for(input_path: Optional[str]) -> int:
    """The mode of the files reducer writes about an input: 0644, or 0600 when the input is not
    world-readable, so that nothing reducer writes (status and history records quoting a cell,
    embedding.csv's ids and labels) is more readable than the input it describes."""
    if not input_path:
        return PUBLIC
    try:
        return PUBLIC if os.stat(input_path).st_mode & stat.S_IROTH else PRIVATE
    except OSError:
        return PUBLIC  # nothing was read from it


def is_private(path: Path) -> bool:
    """Whether the file at `path` is one others may not read (written with PRIVATE)."""
    try:
        return not os.stat(path).st_mode & stat.S_IROTH
    except OSError:
        return False


def write_synced(path: Path | str, write: Callable[[Any], object], mode: int = PUBLIC) -> None:
    """Call write(path), then give the file `mode` (0644: readable by others) and fsync it. An
    OSError (a full disk) becomes OutputError naming `path`; the partial file is removed."""
    try:
        write(path)
        os.chmod(path, mode)
        fsync_path(path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(path)
        cause = os_error(exc) if isinstance(exc, Exception) else None
        if cause is not None:
            raise output_error(path, cause) from None
        raise


def stage(target: Path | str, write: Callable[[Any], object], mode: int = PUBLIC) -> Path:
    """Call write(temp) for a temporary file beside `target`; return the synced temp path.

    A failure (a full disk, say) removes the temporary and raises OutputError naming the target;
    the target itself is never touched before `rename_all`.
    """
    temp = temp_path(target)
    try:
        write_synced(temp, write, mode)
    except OutputError as exc:  # name the target, not its temporary
        raise (exc.replaced(path=target) if exc.path == temp else exc) from None
    return temp


def signals_deferred() -> ContextManager[None]:
    """Hold SIGTERM and Ctrl-C for the milliseconds a switch of published files takes, then
    deliver them: a run stopped half way through would leave two runs' files side by side
    (stopping.held; nothing inside stops early)."""
    return stopping.held()


def rename_all(staged: Sequence[tuple[Path, Path | str]]) -> None:
    """Rename each (temp, target) pair into place, in order, then fsync their folders. If a
    rename fails, the temporaries not yet renamed are removed and OutputError is raised."""
    folders = set()
    for i, (temp, target) in enumerate(staged):
        try:
            os.replace(temp, target)
        except OSError as exc:
            discard(staged[i:])
            raise output_error(target, exc) from None
        folders.add(Path(target).parent)
    for folder in folders:
        fsync_folder(folder)


def publish(staged: Sequence[tuple[Path, Path | str]]) -> None:
    """rename_all with SIGTERM and Ctrl-C held until the last rename is done."""
    with signals_deferred():
        rename_all(staged)


def discard(staged: Iterable[tuple[Path, Path | str]]) -> None:
    for temp, _ in staged:
        with contextlib.suppress(OSError):
            os.unlink(temp)


def _owner_alive(path: Path) -> bool:
    """True when the temporary's writer (the pid in its name) is another live process."""
    found = TEMP_NAME.fullmatch(path.name)
    if not found or int(found[1]) == os.getpid():
        return False
    try:
        os.kill(int(found[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: Path | str, linked_ok: bool = False) -> list[Path]:
    """Temporaries left in `folder` (and its history/ and baselines/<d>d/) by a killed run;
    returns those removed.
    `folder` may be a symbolic link only when `linked_ok` (the outputs folder the user named).

    Only names that temp_path() makes, never any other file. Call only while holding the run
    lock. A temporary whose writer is still alive is left alone: a run on another outputs
    folder may share the models folder.
    """
    folder = Path(folder)
    if folder.is_symlink() and not linked_ok:  # a linked job folder is left alone (and refused later)
        return []
    stale = []
    places = [folder, folder / "history"]
    kept = folder / "baselines"  # continuity.keep_for_later's copies of maps of other dimensions
    if kept.is_dir() and not kept.is_symlink():
        places += [Path(entry.path) for entry in os.scandir(kept) if entry.is_dir(follow_symlinks=False)]
    for place in places:
        if place.is_dir() and (place == folder or not place.is_symlink()):  # never through a linked history/
            stale += [p for p in place.iterdir() if TEMP_NAME.fullmatch(p.name) and not _owner_alive(p)
                      and (p.is_symlink() or p.is_file())]
    for path in stale:
        with contextlib.suppress(OSError):
            path.unlink()
    return stale


def ensure_writable_folder(folder: Path | str) -> None:
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


def write_json(path: Path | str, value: Any) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        json.dump(value, handle, indent=2, sort_keys=False, default=str)
        handle.write("\n")


# ---------------------------------------------------------------- never through a link


def kind_of(mode: int) -> str:
    """What a file is, in words, from its st_mode."""
    for test, words in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISREG, "a file"),
                        (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                        (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return words
    return "a special file"


def managed_folder_exists(folder: Path) -> bool:
    """Whether `folder`, a folder reducer writes and deletes in (outputs/<job>/, its history/ and
    rejected/, Models/), is there. Checked with lstat, so a symbolic link (to an archive
    elsewhere, say) or a file in its place is never written or deleted through: OutputError,
    and the thing is left as it is."""
    folder = Path(folder)
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        return False
    except OSError as exc:  # a file where a parent folder goes, say
        raise OutputError(f"cannot write to folder {folder}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise OutputError(f"{folder} is {kind_of(info.st_mode)} where reducer keeps a folder of its own; reducer "
                          f"never writes or deletes through it: move it away (it was left as it is)")
    return True


def managed_folder(folder: Path) -> Path:
    """`folder` (see managed_folder_exists), created when absent (its parent must exist)."""
    folder = Path(folder)
    if not managed_folder_exists(folder):
        try:
            os.mkdir(folder)
        except FileExistsError:  # made since: look again
            return managed_folder(folder)
        except OSError as exc:
            raise OutputError(f"cannot write to folder {folder}: {exc.strerror or exc}") from None
    return folder


class NotRegularFile(OSError):
    """A path reducer reads its own records from is not a regular file of a sensible size."""


def read_regular(path: Path, limit: int = PAGE_LIMIT) -> bytes:
    """The bytes of `path`, a regular file (a link to one is followed) of at most `limit` bytes.

    Opened with O_NONBLOCK and checked with fstat before any read, so a FIFO never hangs the
    caller and a device such as /dev/zero is never read: NotRegularFile (an OSError) instead."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(errno.EINVAL, f"is {kind_of(info.st_mode)}, not a regular file", str(path))
        if info.st_size > limit:
            raise NotRegularFile(errno.EFBIG, f"is {info.st_size} bytes, more than the {limit} expected",
                                 str(path))
        os.set_blocking(fd, True)
        chunks, left = [], limit + 1
        while left > 0:
            block = os.read(fd, min(left, 1 << 20))
            if not block:
                break
            chunks.append(block)
            left -= len(block)
        data = b"".join(chunks)
        if len(data) > limit:
            raise NotRegularFile(errno.EFBIG, f"holds more than the {limit} bytes expected", str(path))
        return data
    finally:
        os.close(fd)

