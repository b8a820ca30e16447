"""The log: one format for a terminal and for a file under cron.

Every line about one job starts with `[job]`. Code that works for a job without being handed
its name (the table checks in tables/) asks `job_tag()`, which names the job that the caller's
`with job_context(name):` is running.
"""

import contextlib
import contextvars
import logging
import sys

log = logging.getLogger("reducer")
_job = contextvars.ContextVar("reducer_job", default=None)


@contextlib.contextmanager
def job_context(name):
    """Within it, `job_tag()` is '[name]'."""
    token = _job.set(name)
    try:
        yield
    finally:
        _job.reset(token)


def job_tag(fallback):
    """'[job]' inside job_context, else `fallback` (the file being read, say)."""
    name = _job.get()
    return f"[{name}]" if name else fallback


def setup_logging(quiet):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False
