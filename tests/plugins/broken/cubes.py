"""A healthy plugin beside the broken one: its dataset must still be available."""

import pandas as pd

import reducer


@reducer.hookimpl
def register_datasets(register):
    register(reducer.Dataset(name="cubes", description="x and x cubed",
                             load=lambda options: pd.DataFrame({"x": range(9), "x3": [i ** 3 for i in range(9)]})))
