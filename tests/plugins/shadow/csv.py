"""A drop-in named like the standard `csv` module: it must not shadow it."""

import reducer

SHADOW_MARK = True


@reducer.hookimpl
def register_datasets(register):
    import pandas as pd

    register(reducer.Dataset(name="shadow_csv", description="a plugin file named csv.py",
                             load=lambda options: pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [3.0, 1.0, 2.0]})))
