"""Datasets that break the contract in reducer/datasets/dataset.py, each in one way, beside one
that keeps it: registration reports each bad one with this file and skips it, the rest goes on."""

import numpy as np
import pandas as pd

import reducer

COLUMNS = ["a", "b", "c"]


def load_fine(options):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(40, 3)), columns=COLUMNS)
    frame["kind"] = np.where(np.arange(40) % 2, "odd", "even")
    return frame


@reducer.hookimpl
def register_datasets(register):
    common = dict(description="broken on purpose", load=load_fine, label="kind")
    register(reducer.Dataset(name="option_as_text", options={"rows": "int"}, **common))
    register(reducer.Dataset(name="option_as_generic", options={"tags": list[str]}, **common))
    register(reducer.Dataset(name="normalize_wrong_length", features=COLUMNS,
                             normalize=([0.0, 0.0], [1.0, 2.0]), **common))
    register(reducer.Dataset(name="normalize_lists_differ", features=COLUMNS,
                             normalize=([0.0, 0.0, 0.0], [1.0, 2.0]), **common))
    register(reducer.Dataset(name="normalize_without_features", normalize=([0.0] * 3, [1.0] * 3), **common))
    register(reducer.Dataset(name="normalize_zero_scale", normalize=(0.0, 0.0), **common))
    register(reducer.Dataset(name="normalize_unknown", normalize="log", **common))
    register(reducer.Dataset(name="load_not_callable", description="broken on purpose", load="load_fine"))
    register(reducer.Dataset(name="validate_not_callable", validate=True, **common))
    register(reducer.Dataset(name="fixed_per_feature", description="keeps the contract", load=load_fine,
                             label="kind", features=COLUMNS, normalize=([0.0] * 3, [2.0, 2.0, 2.0]),
                             options={"rows": (int, float)}))
