"""A well-behaved drop-in plugin: the hookspecs.py example."""

import pandas as pd

import reducer


def load_squares(options):
    n = int(options.get("rows", 50))
    return pd.DataFrame({"x": range(n), "x2": [i * i for i in range(n)]})


@reducer.hookimpl
def register_datasets(register):
    register(reducer.Dataset(name="squares", description="x and x squared",
                             load=load_squares, options={"rows": int}))
