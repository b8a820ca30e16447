"""Training progress: `epoch =  100 loss = 0.012345` lines for log files, plus a live line
redrawn in place when stderr is a terminal (never when it is a file, so logs stay clean)."""

import logging
import sys

log = logging.getLogger("reducer")


class Progress:
    def __init__(self, job_name, epochs, log_every, stream=None):
        self.job_name, self.epochs, self.log_every = job_name, epochs, log_every
        self.stream = stream or sys.stderr
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.logged = 0

    def __call__(self, losses):
        done = len(losses)
        due = [e for e in range(self.logged + 1, done + 1) if e % self.log_every == 0 or e == self.epochs]
        if due:
            self._clear()
        for epoch in due:
            log.info("[%s] epoch = %4d loss = %0.6f", self.job_name, epoch, losses[epoch - 1])
        self.logged = done
        if self.live and done < self.epochs:
            width = 30
            filled = int(width * done / self.epochs)
            self.stream.write(f"\r[{self.job_name}] [{'#' * filled}{'.' * (width - filled)}] "
                              f"epoch {done}/{self.epochs} loss {losses[-1]:.6f}")
            self.stream.flush()

    def _clear(self):
        if self.live:
            self.stream.write("\r\033[K")
            self.stream.flush()
