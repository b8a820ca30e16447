"""Plugin code that raises KeyboardInterrupt by itself (a script turned plugin), and a loader
that waits, so that a test can press Ctrl-C (send SIGINT) while plugin code runs."""

import time
from pathlib import Path

import reducer


def load_interrupts(options):
    raise KeyboardInterrupt("the plugin gave up")


def validate_interrupts(options):
    raise KeyboardInterrupt


def load_waits(options):
    Path(options["marker"]).write_text("loading\n")
    time.sleep(120)
    raise AssertionError("a Ctrl-C should have ended the run long ago")


@reducer.hookimpl
def register_datasets(register):
    register(reducer.Dataset(name="interrupts_in_load", description="load() raises KeyboardInterrupt",
                             load=load_interrupts))
    register(reducer.Dataset(name="interrupts_in_validate", description="validate() raises KeyboardInterrupt",
                             load=load_interrupts, validate=validate_interrupts))
    register(reducer.Dataset(name="waits_in_load", description="load() waits two minutes",
                             load=load_waits, options={"marker": str}))
