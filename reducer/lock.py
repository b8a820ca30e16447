"""One `reducer run` at a time per outputs folder.

`fcntl.flock` on a file in the outputs folder: the kernel frees it when the holder dies, even
by SIGKILL, so there is never a stale lock to clean up by hand.
"""

import contextlib
import fcntl
import os
import time
from pathlib import Path

from .errors import LockedError

LOCK_NAME = ".reducer.lock"


@contextlib.contextmanager
def run_lock(outputs_folder, wait=False):
    path = Path(outputs_folder) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise LockedError(f"another reducer run holds {path} ({holder}); "
                              f"use --wait to wait for it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock
