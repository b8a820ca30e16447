"""The plugin contract: the hooks a reducer plugin may implement.

A plugin is a module with functions marked `@reducer.hookimpl`: a `.py` file in a plugin folder
(the project's `plugins/`, a folder named with `--plugins` or in `REDUCER_PLUGINS`), a folder
with an `__init__.py` there (a package: its relative imports work, `from . import helpers`), or
a module an installed package lists under the entry-point group `reducer`. Files and folders
whose names start with `_` are helpers, never loaded as plugins: a drop-in file imports one
beside it with `from . import _helpers`. The datasets it registers are `reducer.Dataset`
values, and their options `reducer.Option` values (see `reducer/datasets/dataset.py` for every
field).

Example, runnable verbatim as `plugins/squares.py`::

    import pandas as pd
    import reducer

    def load_squares(options):
        n = options["rows"]
        return pd.DataFrame({"x": range(n), "x2": [i * i for i in range(n)]})

    @reducer.hookimpl
    def register_datasets(register):
        register(reducer.Dataset(
            name="squares", description="x and x squared", load=load_squares,
            options={"rows": reducer.Option(int, default=50, min=2, description="how many rows")}))
"""

from typing import Callable

import pluggy

from reducer.datasets.dataset import Dataset

hookspec = pluggy.HookspecMarker("reducer")


@hookspec
def register_datasets(register: Callable[[Dataset], None]) -> None:
    """Register datasets by calling ``register(reducer.Dataset(...))`` once per dataset.

    ``register`` is a callback owned by reducer: it records which plugin gave which dataset,
    so that two plugins using one name are reported with both sources. It never raises: a
    value that is not a Dataset, or a Dataset that breaks the contract, is reported with the
    plugin and skipped, and the plugin's other datasets still count. Return nothing.
    """
