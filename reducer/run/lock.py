"""One `reducer run` at a time per outputs folder.

`fcntl.flock` on a file in the outputs folder: the kernel frees it when the holder dies, even
by SIGKILL, so there is never a stale lock to clean up by hand. The file's text (pid and start
time of the holder) is only for people reading the error.
"""

import contextlib
import fcntl
import logging
import os
import time
from pathlib import Path

from reducer.errors import LockedError, OutputError

LOCK_NAME = ".reducer.lock"
log = logging.getLogger("reducer")


def _holder(fd):
    with contextlib.suppress(OSError):
        return os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
    return "another process"


@contextlib.contextmanager
def run_lock(outputs_folder, wait=False):
    """Hold the outputs folder's lock; LockedError at once if another run has it, unless `wait`."""
    path = Path(outputs_folder) / LOCK_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise OutputError(f"cannot open the lock file {path}: {exc.strerror or exc}") from None
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
        # Best effort: a full disk must not stop a run that needs no new space to take the lock.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock
