"""Stopping on SIGTERM or Ctrl-C where it is safe to stop.

cli installs the handlers that stop a run (Terminated on SIGTERM, KeyboardInterrupt on Ctrl-C; a
worker process has its own): Python runs them in the main thread at whatever line it is on, so a
long read or a graph build stops at once. Within `held()` they only note the signal; it is handed
to the same handler at the next `check()`, or when the block ends:

- the publication switch (files.publish, publish.py): stopped between two renames, a run would
  leave two runs' files side by side. Nothing inside calls check().
- training (run/pipeline.py): the training loops call check() between two compiled calls, so the
  stop starts from a known line of reducer's own, with no TensorFlow call under way, instead of
  from inside TensorFlow's Python layer. A second signal of the same kind there is handed over at
  once (`second_at_once`): a stop that cannot wait for the next check (a compilation, a long first
  step) still gets through.

Signals cannot be masked instead: TensorFlow's threads would take them. Only the main thread can
set handlers; elsewhere `held()` and check() do nothing.
"""

import contextlib
import signal
import threading
from types import FrameType
from typing import Callable, Iterator, Optional, Union

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Terminated(BaseException):
    """Raised by cli's SIGTERM handler so that cleanup (temporaries, lock) runs as on Ctrl-C: at
    once, or, while a job trains or publishes, at the next safe point."""
Handler = Union[Callable[[int, Optional[FrameType]], object], int, signal.Handlers, None]


class _Hold:
    def __init__(self, second_at_once: bool) -> None:
        self.second_at_once = second_at_once
        self.caught: list[int] = []
        self.previous: dict[int, Handler] = {}

    def install(self) -> None:
        self.previous = {number: signal.signal(number, self.note) for number in SIGNALS}

    def restore(self) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)

    def note(self, signum: int, frame: Optional[FrameType]) -> None:
        urgent = self.second_at_once and signum in self.caught
        self.caught.append(signum)
        if urgent:
            self.deliver()

    def deliver(self) -> None:
        """Hand the noted signals to the handlers held back, in order; hold again afterwards
        unless one of them raised (then the handlers stay as they were before the hold)."""
        self.restore()
        caught, self.caught = self.caught, []
        for signum in caught:
            signal.raise_signal(signum)  # the handler runs (and raises) here
        self.install()


_holds: list[_Hold] = []  # the innermost last; main thread only


@contextlib.contextmanager
def held(second_at_once: bool = False) -> Iterator[None]:
    """SIGTERM and Ctrl-C noted, not acted on, until check() or the end of the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    hold = _Hold(second_at_once)
    hold.install()
    _holds.append(hold)
    try:
        yield
    finally:
        _holds.remove(hold)
        hold.restore()  # first: a signal from now on goes to the handler held back, none is lost
        caught, hold.caught = hold.caught, []
        for signum in caught:  # to the handler held back (which may be an outer hold's)
            signal.raise_signal(signum)


def check() -> None:
    """A safe point: a SIGTERM or Ctrl-C noted since the innermost `held()` began is handed to its
    handler now (which raises Terminated, KeyboardInterrupt, ...). Cheap: call it between two
    compiled training calls."""
    if _holds and _holds[-1].caught and threading.current_thread() is threading.main_thread():
        _holds[-1].deliver()
