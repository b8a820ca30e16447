"""Every block a dataset's `read_blocks` yields, checked by reducer before it is used.

A plugin may yield raw numbers (lists of rows, integers, a float32 array): each block becomes a
float64 array of rows x features here, or a DataError of one line naming the job file (`job`),
the dataset and the block (`place`, rows counted from 0 as everywhere), and the column and row
where there is one: wrong width, cells that are not numbers, NaN or infinite cells, values
beyond float32, ids or labels missing or of another length than the rows. The layout the
reader announces (features, label and id column) is checked once, when it is entered.
"""

from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence, Tuple, Union

import numpy as np

from reducer.errors import DataError
from reducer.tables.checks import FLOAT32_MAX
from reducer.tables.table import Layout

Block = Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]


def _column(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, (int, np.integer)) and not isinstance(value, bool))


def layout_of(opened: Any, job: Union[str, Path], place: str) -> Layout:
    """The reader's features, label and id column, checked: a DataError at `job` (the job
    file) and `place` (the dataset)."""
    features: Any = getattr(opened, "features", None)
    if isinstance(features, (str, bytes)) or not hasattr(features, "__iter__"):
        raise DataError(job=job, place=place, reason=f"read_blocks' reader must have `features`, a list of "
                                                       f"column names; got {features!r}")
    features = tuple(features)
    if not features or not all(map(_column, features)):
        raise DataError(job=job, place=place, reason=f"read_blocks' reader must name at least one feature "
                                                       f"column, as text; got {list(features)!r}")
    names = [str(f) for f in features]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DataError(job=job, place=place,
                        reason=f"read_blocks' features name {', '.join(map(repr, twice))} more than once")
    label, id_column = getattr(opened, "label_column", None), getattr(opened, "id_column", None)
    for role, value in (("label_column", label), ("id_column", id_column)):
        if value is not None and not _column(value):
            raise DataError(job=job, place=place,
                            reason=f"read_blocks' reader {role} must be a column name or None, got {value!r}")
    return Layout(tuple(names), None if label is None else str(label), None if id_column is None else str(id_column))


def _rows_text(first: int, count: int) -> str:
    """The rows of a block, counted from 0 as every row number in messages and default ids."""
    return f"rows {first}-{first + count - 1}" if count > 1 else f"row {first}"


def _values(values: Any, layout: Layout, job: Union[str, Path], place: str) -> np.ndarray:
    try:
        given = values if isinstance(values, np.ndarray) else np.asarray(values)
        if given.dtype.kind in "cUSVMm":  # text, bytes, complex numbers, dates: not numbers
            raise TypeError(f"{given.dtype.name} values")
        array = np.asarray(given, dtype=np.float64)  # no copy when they are float64 already
    except (TypeError, ValueError) as exc:
        raise DataError(job=job, place=place, reason=f"values must be numbers ({exc})") from None
    return array


def _width(array: np.ndarray, layout: Layout, job: Union[str, Path], place: str) -> np.ndarray:
    width = len(layout.features)
    if array.ndim == 1 and width == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.shape[1] != width:
        shape = "x".join(map(str, array.shape)) or "a single value"
        got = f"{array.shape[1]} column(s)" if array.ndim == 2 else f"an array of shape {shape}"
        raise DataError(job=job, place=place, reason=f"{got}, expected {width} ({', '.join(layout.features)}); "
                                                       f"values must be rows x features")
    return array


def _cells(array: np.ndarray, layout: Layout, job: Union[str, Path], place: str, first: int) -> None:
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
        raise DataError(job=job, place=place, column=layout.features[column], row=first + row,
                        reason=f"{array[row, column]!r} is beyond float32's range")
    row, column = map(int, np.argwhere(bad)[0])
    value = array[row, column]
    kind = "NaN (missing)" if np.isnan(value) else "infinite"
    raise DataError(job=job, place=place, column=layout.features[column], row=first + row,
                    reason=f"{kind}, in {int(bad.sum())} cell(s) of the block; expected finite numbers")


def _per_row(values: Any, rows: int, role: str, column: Optional[str], job: Union[str, Path], place: str,
             first: int) -> Optional[np.ndarray]:
    if column is None:
        return None  # the layout has no such column: whatever came is not used
    if values is None:
        raise DataError(job=job, place=place, reason=f"no {role}s, expected one per row for {role} column {column!r}")
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise DataError(job=job, place=place,
                        reason=f"{role}s must be a list or array with one per row, got {type(values).__name__}")
    array = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    if array.ndim != 1 or len(array) != rows:
        count = len(array) if array.ndim == 1 else "a table of"
        raise DataError(job=job, place=place, reason=f"{count} {role}s for {rows} row(s); expected one {role} per row")
    import pandas as pd

    missing = np.flatnonzero(pd.isna(array) | np.array([isinstance(v, str) and not v.strip() for v in array],
                                                        dtype=bool))
    if len(missing):  # a blank id or label, as a CSV's or a DataFrame's is refused (checks.py)
        raise DataError(job=job, place=place, column=column, role=role, row=first + int(missing[0]),
                        reason=f"the {role} is missing or blank ({len(missing)} row(s) of the block)")
    return array


def checked(blocks: Iterable[Any], layout: Layout, job: Union[str, Path], place: str) -> Iterator[Block]:
    """`blocks` as checked (float64 values, ids, labels); every message names `job` (the job
    file), `place` (the dataset) and the block."""
    first = 0
    for number, block in enumerate(blocks, 1):
        if not isinstance(block, Sequence) or isinstance(block, (str, bytes)) or len(block) != 3:
            what = (f"a {type(block).__name__} of {len(block)}" if isinstance(block, Sequence)
                    else f"a {type(block).__name__}")
            raise DataError(job=job, place=place,
                            reason=f"block {number} is {what}; expected a tuple (values, ids, labels)")
        values, ids, labels = block
        here = f"{place}: block {number}"
        array = _values(values, layout, job, here)
        rows = len(array) if array.ndim else 0
        here = f"{place}: block {number} ({_rows_text(first, rows)})" if rows else here
        array = _width(array, layout, job, here)
        _cells(array, layout, job, here, first)
        ids = _per_row(ids, rows, "id", layout.id_column, job, here, first)
        labels = _per_row(labels, rows, "label", layout.label_column, job, here, first)
        first += rows
        if rows:
            yield array, ids, labels
