"""Calling a registered dataset's plugin code: `load`, `header`, `read_blocks`, `validate`.

Beside the registry that collected the datasets, and the one place that guards their calls:
a plugin's bug (any exception, SystemExit, a KeyboardInterrupt its own code raised) becomes a
PluginError that names the dataset, the plugin file and the line that raised, and fails that
job alone; reducer's own errors (DataError, JobError...) pass through with the dataset's name;
a real Ctrl-C still ends the run.
"""

import contextlib
import io
import logging
import re
import signal
import threading
import traceback
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Iterator, Mapping, Optional

from reducer.datasets.dataset import Dataset
from reducer.errors import PluginError, ReducerError

Source = Optional[str]  # where the dataset came from (its plugin file), when the registry knows it
log = logging.getLogger("reducer")


class _LogLines(io.TextIOBase):
    """A text stream whose every line becomes one log line, tagged with whose output it is."""

    def __init__(self, tag: str) -> None:
        self.tag, self.pending = tag, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self.pending + str(text)).split("\n")
        self.pending = lines.pop()
        for line in lines:
            log.info("%s printed: %s", self.tag, line.rstrip("\r"))
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.write("\n")


@contextlib.contextmanager
def plugin_output(tag: str) -> Iterator[None]:
    """Within it, what plugin code prints to standard output goes into the log, one line each,
    tagged (`dataset 'swiss' printed: ...`): reducer's standard output stays its own summary."""
    stream = _LogLines(tag)
    try:
        with contextlib.redirect_stdout(stream):
            yield
    finally:
        stream.flush()


def _tag(dataset: Dataset) -> str:
    return f"dataset {dataset.name!r}"


class Watch:
    ctrl_c = False  # whether SIGINT arrived while the watch was on


@contextlib.contextmanager
def sigint_watch() -> Iterator[Watch]:
    """Note whether SIGINT really arrives while plugin code runs, so that a KeyboardInterrupt the
    plugin raised itself (a script turned plugin) can fail its job alone, while a real Ctrl-C
    still ends the run. The handler in place keeps doing what it did (raising KeyboardInterrupt,
    or nothing in a worker process that ignores SIGINT). Python runs signal handlers in the main
    thread only: elsewhere no KeyboardInterrupt can come from a Ctrl-C, and nothing is installed."""
    watch = Watch()
    if threading.current_thread() is not threading.main_thread():
        yield watch
        return
    previous = signal.getsignal(signal.SIGINT)

    def arrived(signum: int, frame: Optional[FrameType]) -> None:
        watch.ctrl_c = True
        if callable(previous):
            previous(signum, frame)
        elif previous in (signal.SIG_DFL, None):  # the default: end the process, as it would have
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.raise_signal(signal.SIGINT)

    signal.signal(signal.SIGINT, arrived)
    try:
        yield watch
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)


# The private package drop-ins are imported under (registry.DROPIN_PACKAGE and its folders'
# packages): a plugin author never named it, so no message shows it.
PRIVATE_NAMES = re.compile(r"reducer\._dropins\.f_[0-9a-f]+\.")


def exception_text(exc: BaseException) -> str:
    """'Kind: message' on one line, without the private module names drop-ins are imported under."""
    return PRIVATE_NAMES.sub("", re.sub(r"\s*\n\s*", "; ", f"{type(exc).__name__}: {exc}".strip()))


def failure(dataset: Dataset, source: Source, doing: str, exc: BaseException) -> PluginError:
    """The one line for a plugin's bug: dataset, plugin file, what it failed to do, where, what."""
    text = exception_text(exc)
    if isinstance(exc, KeyboardInterrupt):
        kind = type(exc).__name__
        text = text.replace(kind, kind + " (raised by the plugin's code: no Ctrl-C came)", 1)
    return PluginError(f"dataset {dataset.name!r}{f' (plugin {source})' if source else ''} failed to "
                       f"{doing}{raised_at(exc, source)}: {text}")


def raised_at(exc: BaseException, source: Source) -> str:
    """' at line N of plugin.py' for the innermost frame in the plugin's file (or, for a folder
    plugin, in one of its files), when there is one."""
    inside = str(source).rstrip("/") + "/"
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if source and (f.filename == str(source) or f.filename.startswith(inside))]
    return f" at line {frames[-1].lineno} of {Path(frames[-1].filename).name}" if frames else ""


def load(dataset: Dataset, options: Mapping[str, Any], source: Source = None) -> Any:
    """What the dataset's load(options) returns (a DataFrame, unchecked here)."""
    return guarded(dataset, source, "load", lambda: dataset.load(dict(options)))


def guarded(dataset: Dataset, source: Source, what: str, call: Callable[[], Any]) -> Any:
    """`call()`, a plugin's code, with its prints tagged and its failures named: a ReducerError
    gains the dataset's name, a plugin's bug (or a stray KeyboardInterrupt that was no Ctrl-C)
    becomes one PluginError saying what it was doing, so the run goes on with the other jobs."""
    try:
        with sigint_watch() as watch, plugin_output(_tag(dataset)):
            return call()
    except ReducerError as exc:
        raise type(exc)(f"dataset {dataset.name!r}: {exc}") from None
    except KeyboardInterrupt as exc:
        if watch.ctrl_c:
            raise
        raise failure(dataset, source, what, exc) from exc
    except (Exception, SystemExit) as exc:  # a plugin's bug: name the plugin, keep the run going
        raise failure(dataset, source, what, exc) from exc


def header(dataset: Dataset, options: Mapping[str, Any], source: Source = None) -> Any:
    """What the dataset's header(options) returns: a DataFrame of its columns (rows not needed).
    A PluginError when there is no header or it returns something else; guarded as `load` is."""
    import pandas as pd

    read_header: Optional[Callable[[dict], Any]] = dataset.header
    if read_header is None:
        raise PluginError(f"dataset {dataset.name!r} offers no header")
    frame = guarded(dataset, source, "read its header", lambda: read_header(dict(options)))
    if not isinstance(frame, pd.DataFrame):
        raise PluginError(f"dataset {dataset.name!r}: header() must return a pandas DataFrame, "
                          f"got {type(frame).__name__}")
    return frame


def open_blocks(dataset: Dataset, options: Mapping[str, Any], chunk_rows: int, source: Source = None) -> Any:
    """The dataset's block reader (a context manager, not yet entered): call it inside `reading`."""
    read_blocks: Optional[Callable[[dict, int], Any]] = dataset.read_blocks
    if read_blocks is None:
        raise PluginError(f"dataset {dataset.name!r} offers no read_blocks")
    try:
        with plugin_output(_tag(dataset)):
            return read_blocks(dict(options), chunk_rows)
    except ReducerError:
        raise
    except (Exception, SystemExit) as exc:
        raise failure(dataset, source, "open its rows", exc) from exc


@contextlib.contextmanager
def reading(dataset: Dataset, source: Source = None) -> Iterator[None]:
    """Around reading a plugin's blocks: a KeyboardInterrupt with no Ctrl-C behind it came from
    the plugin's code (reducer's own readers raise none) and fails the job alone."""
    with sigint_watch() as watch, plugin_output(_tag(dataset)):
        try:
            yield
        except KeyboardInterrupt as exc:
            if watch.ctrl_c:
                raise
            raise failure(dataset, source, "read its rows", exc) from exc


def enter(dataset: Dataset, manager: Any, source: Source = None) -> Any:
    """The plugin's block reader, entered (what `with read_blocks(...) as blocks` gives); call it
    inside `reading`, and the manager's __exit__ when done."""
    try:
        with plugin_output(_tag(dataset)):
            return manager.__enter__()
    except ReducerError:
        raise
    except AttributeError as exc:
        if not hasattr(manager, "__enter__"):
            raise PluginError(f"dataset {dataset.name!r}{f' (plugin {source})' if source else ''}: read_blocks "
                              f"must return a context manager, got {type(manager).__name__}") from None
        raise failure(dataset, source, "open its rows", exc) from exc
    except (Exception, SystemExit) as exc:
        raise failure(dataset, source, "open its rows", exc) from exc


def blocks(dataset: Dataset, opened: Any, source: Source = None) -> Iterator[Any]:
    """The blocks of an entered reader, one at a time, as the plugin gives them: an exception
    from its code is a PluginError naming the dataset, its plugin and the line."""
    try:
        iterator = iter(opened)
    except (Exception, SystemExit) as exc:
        raise failure(dataset, source, "read its rows", exc) from exc
    while True:
        try:
            block = next(iterator)
        except StopIteration:
            return
        except ReducerError:
            raise
        except (Exception, SystemExit) as exc:
            raise failure(dataset, source, "read its rows", exc) from exc
        yield block
