"""The plugin contract: the hooks a reducer plugin may implement.

A plugin is a module (a `.py` file in `plugins/`, a folder named with `--plugins` or
`REDUCER_PLUGINS`, or a module an installed package lists under the entry-point group
`reducer`) with functions marked `@reducer.hookimpl`. The datasets it registers are
`reducer.Dataset` values (see `reducer/dataset.py` for every field).

Example, runnable verbatim as `plugins/squares.py`::

    import pandas as pd
    import reducer

    def load_squares(options):
        n = int(options.get("rows", 50))
        return pd.DataFrame({"x": range(n), "x2": [i * i for i in range(n)]})

    @reducer.hookimpl
    def register_datasets(register):
        register(reducer.Dataset(name="squares", description="x and x squared",
                                 load=load_squares, options={"rows": int}))
"""

import pluggy

hookspec = pluggy.HookspecMarker("reducer")


@hookspec
def register_datasets(register):
    """Register datasets by calling ``register(reducer.Dataset(...))`` once per dataset.

    ``register`` is a callback owned by reducer: it records which plugin gave which dataset,
    so that two plugins using one name are reported with both sources. Return nothing.
    """
