"""One `reducer run` at a time per outputs folder.

`fcntl.flock` on a file in the outputs folder: the kernel frees it when the holder dies, even
by SIGKILL, so there is never a stale lock to clean up by hand. The file's text (pid and start
time of the holder) is only for people reading the error.

A cron job may run as a user who can write much more than `outputs/`, so the lock file is
opened without following a symbolic link (O_NOFOLLOW) and without truncating it (no O_TRUNC),
and reducer writes into it only when it is a plain file with one name whose text is reducer's
own (or empty): anything else in its place is refused, and left as it is.
"""

import contextlib
import errno
import fcntl
import logging
import os
import re
import stat
from pathlib import Path
from typing import Iterator, Union

from reducer.errors import LockedError, OutputError
from reducer.log import utc_stamp

LOCK_NAME = ".reducer.lock"
LOCK_TEXT = re.compile(rb"\A(pid \d+ since [0-9: TZ-]+\n?)?\Z")  # a local time before the clock was UTC
log = logging.getLogger("reducer")


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError):
        return os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
    return "another process"


def _refuse(path: Path, what: str) -> OutputError:
    return OutputError(f"{path} {what}; reducer's lock file must be a plain file that reducer created: "
                       f"move it away and run again (it was left as it is)")


def _open_lock(path: Path) -> int:
    """A descriptor of the lock file, created if need be; never through a symbolic link."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # NONBLOCK: a FIFO must not hang us
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW's answer for a symbolic link
            raise _refuse(path, "is a symbolic link") from None
        raise OutputError(f"cannot open the lock file {path}: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(info.st_mode):
        problem = "is not a plain file (a FIFO, a device or a socket)"
    elif info.st_nlink != 1:
        problem = f"has {info.st_nlink} names (a hard link to another file?)"
    if problem:
        os.close(fd)
        raise _refuse(path, problem)
    return fd


@contextlib.contextmanager
def run_lock(outputs_folder: Union[str, Path], wait: bool = False) -> Iterator[Path]:
    """Hold the outputs folder's lock; LockedError at once if another run has it, unless `wait`.
    OutputError when the lock file cannot be opened, or is not a file reducer may write."""
    path = Path(outputs_folder) / LOCK_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot open the lock file {path}: {exc.strerror or exc}") from None
    fd = _open_lock(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if not wait:
                raise LockedError(f"another reducer run holds {path} ({holder}); nothing was done; "
                                  f"use --wait to wait for it") from None
            log.info("waiting for the lock on %s, held by %s", path, holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        # Under the lock, so no other run is writing it: only reducer's own text is replaced.
        with contextlib.suppress(OSError):
            text = os.pread(fd, 200, 0)
            if not LOCK_TEXT.match(text):
                raise _refuse(path, "holds text reducer did not write")
        # Best effort: a full disk must not stop a run that needs no new space to take the lock.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} since {utc_stamp()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock
