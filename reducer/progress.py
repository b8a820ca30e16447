"""Progress of long work, for cron logs and terminals alike.

- Training: `epoch =  100 loss = 0.012345` lines every `log_every` epochs, and a line every
  PERCENT of the work with its rate and the time left (`Progress`).
- Any other long stage (the neighbour graph): `Stage`, the same percent lines.
- A live line redrawn in place only when stderr is a terminal (never when it is a file or a
  pipe, so logs stay clean: no carriage returns there).
"""

import logging
import sys
import time
from typing import Callable, Optional, TextIO

log = logging.getLogger("reducer")
PERCENT = 5  # a progress line each time this much more of the work is done


def duration(seconds: float) -> str:
    """'42 s', '3 min 05 s', '1 h 02 min'."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Stage:
    """Logs `[job] <what> 35% (7,000 of 20,000 rows), 1,234 rows/s, about 9 s left` each time
    another PERCENT of `total` is done (and at 100%). Call it with the amount done so far."""

    def __init__(self, job_name: str, what: str, unit: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.job_name, self.what, self.unit, self.clock = job_name, what, unit, clock
        self.started = clock()
        self.reported = 0  # the last multiple of PERCENT logged

    def __call__(self, done: int, total: int) -> None:
        if total <= 0:
            return
        percent = min(100, int(100 * done / total))
        step = percent // PERCENT * PERCENT
        if step <= self.reported and percent < 100 or (percent == 100 and self.reported == 100):
            return
        self.reported = 100 if percent == 100 else step
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = done / elapsed
        left = (total - done) / rate if rate > 0 else 0.0
        log.info("[%s] %s %d%% (%s of %s %s), %s %s/s, %s", self.job_name, self.what, self.reported,
                 f"{done:,}", f"{total:,}", self.unit, f"{rate:,.0f}" if rate >= 10 else f"{rate:.2f}", self.unit,
                 "done in " + duration(elapsed) if done >= total else f"about {duration(left)} left")


class Progress:
    """Training progress: called with the per-epoch losses so far and, optionally, the steps
    done and in all (the neighbour loop reports between chunks of steps, not only epochs)."""

    def __init__(self, job_name: str, epochs: int, log_every: int, stream: Optional[TextIO] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.job_name, self.epochs, self.log_every = job_name, epochs, log_every
        self.stream = stream or sys.stderr
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.logged = 0
        self.stage = Stage(job_name, "training", "epochs", clock)

    def __call__(self, losses: list, done: Optional[int] = None, total: Optional[int] = None) -> None:
        count = len(losses)
        due = [e for e in range(self.logged + 1, count + 1) if e % self.log_every == 0 or e == self.epochs]
        self._clear()
        for epoch in due:
            log.info("[%s] epoch = %4d loss = %0.6f", self.job_name, epoch, losses[epoch - 1])
        self.logged = count
        if done is None or total is None:
            done, total = count, self.epochs
        else:
            self.stage.unit = "steps"
        self.stage(done, total)
        if self.live and done < total and losses:
            width = 30
            filled = int(width * done / total)
            self.stream.write(f"\r[{self.job_name}] [{'#' * filled}{'.' * (width - filled)}] "
                              f"epoch {count}/{self.epochs} loss {losses[-1]:.6f}")
            self.stream.flush()

    def _clear(self) -> None:
        if self.live:
            self.stream.write("\r\033[K")
            self.stream.flush()
