"""Registers a dataset named like a built-in: reducer must report both sources."""

import reducer


@reducer.hookimpl
def register_datasets(register):
    register(reducer.Dataset(name="iris", description="an impostor", load=lambda options: None))
