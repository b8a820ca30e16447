"""Datasets whose loader returns something other than one row per item in a DataFrame."""

import numpy as np
import pandas as pd

import reducer

ROWS = 40


def _frame():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(ROWS, 3)), columns=["a", "b", "c"])
    frame["kind"] = np.where(np.arange(ROWS) % 2, "odd", "even")
    return frame


def load_list(options):
    return _frame().to_numpy().tolist()


def load_transposed(options):
    return _frame().T  # columns are the 40 row numbers; there is no "kind" column any more


def load_short_label(options):
    frame = _frame().drop(columns="kind")
    frame["kind"] = pd.Series(["odd", "even"] * 15)  # 30 labels for 40 rows: pandas pads with NaN
    return frame


def load_duplicate_columns(options):
    frame = _frame()
    frame.columns = ["a", "b", "a", "kind"]
    return frame


def load_no_rows(options):
    return _frame().iloc[:0]


@reducer.hookimpl
def register_datasets(register):
    for name, load in [("hostile_list", load_list), ("hostile_transposed", load_transposed),
                       ("hostile_short_label", load_short_label),
                       ("hostile_duplicate_columns", load_duplicate_columns),
                       ("hostile_no_rows", load_no_rows)]:
        register(reducer.Dataset(name=name, description=f"load() misbehaves: {name}", load=load,
                                 label="kind"))
