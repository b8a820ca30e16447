"""Datasets whose loader fails the way real plugin code does: an exception, or sys.exit()."""

import sys

import reducer


def load_offline(options):
    raise ConnectionError("sensor feed offline")  # the test looks for this line's number


def load_exits(options):
    sys.exit("giving up")  # a script turned plugin: must fail this job only, not the run


@reducer.hookimpl
def register_datasets(register):
    register(reducer.Dataset(name="hostile_raises", description="load() raises", load=load_offline))
    register(reducer.Dataset(name="hostile_exits", description="load() calls sys.exit", load=load_exits))
