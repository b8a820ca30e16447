"""A dataset whose loader kills its own process, as the kernel's OOM killer or a segfault in
native code would: `reducer run --workers N` must fail that job alone and finish the others.
Never run it without --workers: it kills whatever process loads it."""

import os
import signal

import reducer


def load_and_die(options):
    os.kill(os.getpid(), signal.SIGKILL)


@reducer.hookimpl
def register_datasets(register):
    register(reducer.Dataset(name="parallel_sudden_death", description="kills the process that loads it",
                             load=load_and_die))
