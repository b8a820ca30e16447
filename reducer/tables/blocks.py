"""Every block a dataset's `read_blocks` yields, checked by reducer before it is used.

A plugin may yield raw numbers (lists of rows, integers, a float32 array): each block becomes a
float64 array of rows x features here, or a DataError of one line naming the job file, the
dataset, the block and the row: wrong width, cells that are not numbers, NaN or infinite cells,
values beyond float32, ids or labels missing or of another length than the rows. The layout the
reader announces (features, label and id column) is checked once, when it is entered.
"""

from typing import Any, Iterable, Iterator, Optional, Sequence, Tuple

import numpy as np

from reducer.errors import DataError
from reducer.tables.checks import FLOAT32_MAX
from reducer.tables.table import Layout

Block = Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]


def _column(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, (int, np.integer)) and not isinstance(value, bool))


def layout_of(opened: Any, where: str) -> Layout:
    """The reader's features, label and id column, checked: a DataError starting with `where`."""
    features: Any = getattr(opened, "features", None)
    if isinstance(features, (str, bytes)) or not hasattr(features, "__iter__"):
        raise DataError(f"{where}: read_blocks' reader must have `features`, a list of column names; "
                        f"got {features!r}")
    features = tuple(features)
    if not features or not all(map(_column, features)):
        raise DataError(f"{where}: read_blocks' reader must name at least one feature column, as text; "
                        f"got {list(features)!r}")
    names = [str(f) for f in features]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DataError(f"{where}: read_blocks' features name {', '.join(map(repr, twice))} more than once")
    label, id_column = getattr(opened, "label_column", None), getattr(opened, "id_column", None)
    for role, value in (("label_column", label), ("id_column", id_column)):
        if value is not None and not _column(value):
            raise DataError(f"{where}: read_blocks' reader {role} must be a column name or None, got {value!r}")
    return Layout(tuple(names), None if label is None else str(label), None if id_column is None else str(id_column))


def _rows_text(first: int, count: int) -> str:
    return f"rows {first + 1}-{first + count}" if count > 1 else f"row {first + 1}"


def _values(values: Any, layout: Layout, where: str) -> np.ndarray:
    try:
        given = values if isinstance(values, np.ndarray) else np.asarray(values)
        if given.dtype.kind in "cUSVMm":  # text, bytes, complex numbers, dates: not numbers
            raise TypeError(f"{given.dtype.name} values")
        array = np.asarray(given, dtype=np.float64)  # no copy when they are float64 already
    except (TypeError, ValueError) as exc:
        raise DataError(f"{where}: values must be numbers ({exc})") from None
    return array


def _width(array: np.ndarray, layout: Layout, where: str) -> np.ndarray:
    width = len(layout.features)
    if array.ndim == 1 and width == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.shape[1] != width:
        shape = "x".join(map(str, array.shape)) or "a single value"
        got = f"{array.shape[1]} column(s)" if array.ndim == 2 else f"an array of shape {shape}"
        raise DataError(f"{where}: {got}, expected {width} ({', '.join(layout.features)}); "
                        f"values must be rows x features")
    return array


def _cells(array: np.ndarray, layout: Layout, where: str, first: int) -> None:
    if not array.size:
        return
    low, high = float(array.min()), float(array.max())  # NaN and infinities reach these: one quick pass
    if -FLOAT32_MAX <= low and high <= FLOAT32_MAX:
        return
    bad = ~np.isfinite(array)
    if not bad.any():
        big = np.abs(array) > FLOAT32_MAX
        if not big.any():
            return
        row, column = map(int, np.argwhere(big)[0])
        raise DataError(f"{where}, row {first + row + 1} (row {row + 1} of the block), column "
                        f"{layout.features[column]!r}: {array[row, column]!r} is beyond float32's range")
    row, column = map(int, np.argwhere(bad)[0])
    value = array[row, column]
    kind = "NaN (missing)" if np.isnan(value) else "infinite"
    raise DataError(f"{where}, row {first + row + 1} (row {row + 1} of the block), column "
                    f"{layout.features[column]!r}: {kind}, in {int(bad.sum())} cell(s) of the block; "
                    f"expected finite numbers")


def _per_row(values: Any, rows: int, role: str, column: Optional[str], where: str) -> Optional[np.ndarray]:
    if column is None:
        return None  # the layout has no such column: whatever came is not used
    if values is None:
        raise DataError(f"{where}: no {role}s, expected one per row for {role} column {column!r}")
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise DataError(f"{where}: {role}s must be a list or array with one per row, got {type(values).__name__}")
    array = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    if array.ndim != 1 or len(array) != rows:
        count = len(array) if array.ndim == 1 else "a table of"
        raise DataError(f"{where}: {count} {role}s for {rows} row(s); expected one {role} per row")
    import pandas as pd

    missing = np.flatnonzero(pd.isna(array))
    if len(missing):
        raise DataError(f"{where}, row {int(missing[0]) + 1} of the block: the {role} is missing "
                        f"({len(missing)} row(s) of the block)")
    return array


def checked(blocks: Iterable[Any], layout: Layout, where: str) -> Iterator[Block]:
    """`blocks` as checked (float64 values, ids, labels); `where` starts every message (the job
    file and the dataset)."""
    first = 0
    for number, block in enumerate(blocks, 1):
        if not isinstance(block, Sequence) or isinstance(block, (str, bytes)) or len(block) != 3:
            what = (f"a {type(block).__name__} of {len(block)}" if isinstance(block, Sequence)
                    else f"a {type(block).__name__}")
            raise DataError(f"{where}: block {number} is {what}; expected a tuple (values, ids, labels)")
        values, ids, labels = block
        here = f"{where}: block {number}"
        array = _values(values, layout, here)
        rows = len(array) if array.ndim else 0
        here = f"{where}: block {number} ({_rows_text(first, rows)})" if rows else here
        array = _width(array, layout, here)
        _cells(array, layout, here, first)
        ids = _per_row(ids, rows, "id", layout.id_column, here)
        labels = _per_row(labels, rows, "label", layout.label_column, here)
        first += rows
        if rows:
            yield array, ids, labels
