"""The log: one format for a terminal and for a file under cron.

Every line about one job starts with `[job]`. Code that works for a job without being handed
its name (the table checks in tables/) asks `job_tag()`, which names the job that the caller's
`with job_context(name):` is running; a line logged inside that context without a tag gets it
from the formatter.
"""

import contextlib
import contextvars
import logging
import sys
import time
from typing import Iterator, Optional

log = logging.getLogger("reducer")
_job: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("reducer_job", default=None)


TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # UTC, as the summary lines, status.json and the history say


class UtcFormatter(logging.Formatter):
    """`2026-11-01T02:00:12Z INFO message`: the time in UTC with its zone, whatever TZ says."""

    converter = time.gmtime  # type: ignore[assignment]  # typeshed wants the float argument gmtime takes too

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s", TIME_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        # A line logged inside job_context that does not name its job yet (a table's note, a
        # plugin's printed output) gets the job's tag here, so none is missed.
        name = _job.get()
        if name and not record.message.startswith("["):
            record.message = f"[{name}] {record.message}"
        return super().formatMessage(record)


def utc_stamp(moment: Optional[float] = None) -> str:
    """A time (now by default) as the log writes it."""
    return time.strftime(TIME_FORMAT, time.gmtime(moment))


@contextlib.contextmanager
def job_context(name: Optional[str]) -> Iterator[None]:
    """Within it, `job_tag()` is '[name]'."""
    token = _job.set(name)
    try:
        yield
    finally:
        _job.reset(token)


def job_tag(fallback: Optional[str]) -> Optional[str]:
    """'[job]' inside job_context, else `fallback` (the file being read, say)."""
    name = _job.get()
    return f"[{name}]" if name else fallback


def setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(UtcFormatter())
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False
