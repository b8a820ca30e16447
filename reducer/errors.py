"""Errors meant for users. The CLI prints them as one line; anything else is a bug."""


class ReducerError(Exception):
    """A user mistake or bad input: printed as one line, never with a traceback."""


class JobError(ReducerError):
    """A job file is malformed, names an unknown key, or has a value of the wrong type."""


class DataError(ReducerError):
    """The rows a dataset returned cannot be turned into a numeric table."""


class PluginError(ReducerError):
    """A plugin failed to import, register, or load its data."""


class TrainingError(ReducerError):
    """Training diverged (NaN or inf loss or coordinates)."""


class OutputError(ReducerError):
    """Outputs could not be written (unwritable folder, full disk)."""


class LockedError(ReducerError):
    """Another `reducer run` holds the lock on the outputs folder."""
