"""Errors meant for users. The CLI prints them as one line (and maps each kind to an exit code
in one table); anything else is a bug.

Each carries its context as fields: `path`, `line`, `column`, `key` and `reason`; the message
is built from them as

    PATH[, line LINE][, column COLUMN]: [KEY ]REASON

so a caller that knows more (the file a table came from) adds it with `within(path=...)`
instead of editing the text. An error raised with only a message keeps it as its reason.
DataError adds `row`, `role` and `place`, for a table's cells (see its docstring).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

Column = Union[int, str]

EXCERPT = 40  # characters of an input's cell or column name a message may quote


def excerpt(value: object, limit: int = EXCERPT) -> str:
    """`value` quoted (repr) for a message, cut to its first `limit` characters: a message about
    a bad cell must not carry a whole line of the input (a password file's, say) into the log,
    status.json and the report."""
    text = str(value)
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


class ReducerError(Exception):
    """A user mistake or bad input: printed as one line, never with a traceback."""

    def __init__(self, message: Optional[str] = None, *, path: Union[str, Path, None] = None,
                 line: Optional[int] = None, column: Optional[Column] = None, key: Optional[str] = None,
                 reason: Optional[str] = None) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.key = key
        self.reason = reason if reason is not None else (message or "")
        super().__init__(self._compose())

    def _compose(self) -> str:
        where = "" if self.path is None else str(self.path)
        if self.line is not None:
            where += f", line {self.line}" if where else f"line {self.line}"
        if self.column is not None:
            column = self.column if isinstance(self.column, int) else repr(self.column)
            where += f", column {column}" if where else f"column {column}"
        what = f"{self.key} {self.reason}" if self.key else self.reason
        return f"{where}: {what}" if where else what

    @property
    def message(self) -> str:
        """The one line, as built when the error was made (a subclass may set more attributes after)."""
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[object, ...]:  # through worker processes with its fields
        return _rebuild, (type(self), dict(self.__dict__), self.args)

    def fields(self) -> dict[str, Any]:
        """path, line, column, key and reason: to raise the same error as another kind (`JobError(**exc.fields())`)."""
        return {"path": self.path, "line": self.line, "column": self.column, "key": self.key, "reason": self.reason}

    def within(self, **fields: object) -> ReducerError:
        """A copy of this error with the given fields filled in where it has none (the file a
        table came from, say), same type: `raise exc.within(path=origin) from None`."""
        return self._copy({name: value for name, value in fields.items() if getattr(self, name, None) is None})

    def replaced(self, **fields: object) -> ReducerError:
        """A copy of this error with the given fields set (the target a temporary stood for)."""
        return self._copy(fields)

    def _copy(self, fields: dict[str, object]) -> ReducerError:
        copy = type(self).__new__(type(self))
        copy.__dict__.update(self.__dict__)
        for name, value in fields.items():
            if name not in ("path", "line", "column", "key", "reason", *getattr(self, "EXTRA_FIELDS", ())):
                raise TypeError(f"ReducerError has no field {name!r}")
            setattr(copy, name, value)
        Exception.__init__(copy, copy._compose())
        return copy


def _rebuild(kind: type[ReducerError], fields: dict[str, object], args: tuple[object, ...]) -> ReducerError:
    error = kind.__new__(kind)
    error.__dict__.update(fields)
    Exception.__init__(error, *args)
    return error


class JobError(ReducerError):
    """A job file is malformed, names an unknown key, or has a value of the wrong type."""


class DataError(ReducerError):
    """The rows a dataset returned cannot be turned into a numeric table.

    Its `path` is the data file and its `column` a table column's name (not a position in a
    text). More fields say where: `row` (counted from 0, as default ids are; `line` is then the
    file line it was read from), `role` (the column's part: "label", "id", "feature"), `place`
    (what narrows the path where no line can: `dataset 'feed': block 2 (rows 100-199)`) and
    `job` (the job file that asked for the rows). The message:

        JOB: PATH: PLACE[, line LINE]: [ROLE ]column COLUMN, row ROW (line LINE): [KEY ]REASON   (a cell)
        JOB: PATH: PLACE[, line LINE]: [ROLE ]column COLUMN [KEY ]REASON                        (a column)

    each part present only when its field is set.
    """

    EXTRA_FIELDS = ("row", "role", "place", "job")  # within() and replaced() take them too

    def __init__(self, message: Optional[str] = None, *, path: Union[str, Path, None] = None,
                 line: Optional[int] = None, column: Optional[Column] = None, key: Optional[str] = None,
                 reason: Optional[str] = None, row: Optional[int] = None, role: Optional[str] = None,
                 place: Optional[str] = None, job: Union[str, Path, None] = None) -> None:
        self.row, self.role, self.place, self.job = row, role, place, job
        super().__init__(message, path=path, line=line, column=column, key=key, reason=reason)

    def _compose(self) -> str:
        where = ": ".join(str(part) for part in (self.job, self.path, self.place) if part is not None and part != "")
        if self.line is not None and self.row is None:
            where += f", line {self.line}" if where else f"line {self.line}"
        subject = ""
        if self.column is not None:
            subject = f"{self.role + ' ' if self.role else ''}column {excerpt(self.column)}"
        if self.row is not None:
            at = f"row {self.row}" + ("" if self.line is None else f" (line {self.line})")
            subject = f"{subject}, {at}" if subject else at
        what = f"{self.key} {self.reason}" if self.key else self.reason
        if subject:
            what = f"{subject}: {what}" if self.row is not None else f"{subject} {what}"
        return f"{where}: {what}" if where else what


class PluginError(ReducerError):
    """A plugin failed to import, register, or load its data."""


class TrainingError(ReducerError):
    """Training diverged (NaN or inf loss or coordinates)."""


class OutputError(ReducerError):
    """Outputs could not be written (unwritable folder, full disk)."""


class WriteError(OutputError):
    """One file could not be written: `cannot write PATH: REASON`."""

    def _compose(self) -> str:
        return f"cannot write {self.path}: {self.reason}"


class HistoryRecordError(OutputError):
    """An attempt's status.json was written but its history record could not be (a file where
    history/ goes, say): the attempt is still told, and this says what is missing."""


class LockedError(ReducerError):
    """Another `reducer run` holds the lock on the outputs folder."""


class SchedulerError(ReducerError):
    """`--scheduler` was given but Dask is missing or the scheduler does not answer."""


class NotFoundError(ReducerError):
    """What a command was asked about is not there (a job with no outputs folder): a usage error."""


class PublishedRecordError(ReducerError):
    """A published file (manifest, status, history record, embedding.csv) is malformed, wrongly
    typed, too large or not a regular file: that job is shown as unreadable, the others go on."""
