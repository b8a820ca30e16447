"""The cell checks every table goes through, whoever read it: a plugin's DataFrame or a block
of a CSV file (csv_reader.py). Each problem is a DataError whose fields name the column, the
row and, when the reader knows it, the line (its message is built from them); the caller fills
in the file (`within(path=...)`).

Where rows came from travels in ``frame.attrs``: ``lines`` (the file line of each row),
``first_line`` (the line of row 0 when every row is one line) and ``first_row`` (the number of
rows before this frame, for a block deep in a file).
"""

from typing import Any, Iterable, Optional, Sequence, Tuple

import numpy as np

from reducer.errors import EXCERPT, DataError, excerpt

FLOAT32_MAX = float(np.finfo(np.float32).max)
MISSING_WORDS = ("", "nan", "na", "n/a", "null", "none")


def position(frame: Any, row: int) -> Tuple[int, Optional[int]]:
    """(row, line) of the frame's `row`: rows count from 0, in the order they were read, as the
    default ids do (row 7 gets id 7); lines count from 1, as editors do, and are None when the
    reader did not say where rows came from."""
    attrs = frame.attrs
    lines, first_line = attrs.get("lines"), attrs.get("first_line")
    line = None
    if lines is not None and row < len(lines):
        line = int(lines[row])
    elif first_line is not None:
        line = row + first_line
    return attrs.get("first_row", 0) + row, line


def where(frame: Any, row: int) -> str:
    """'row 7 (line 9)' when the reader told us where rows came from, else 'row 7' (`position`)."""
    number, line = position(frame, row)
    return f"row {number}" + ("" if line is None else f" (line {line})")


def rows_text(frame: Any, rows: np.ndarray, limit: int = 3) -> str:
    shown = ", ".join(where(frame, int(r)) for r in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def names(columns: Iterable[Any], limit: int = 20) -> str:
    shown = [str(c) if len(str(c)) <= EXCERPT else excerpt(c) for c in columns]
    text = ", ".join(shown[:limit])
    return text + (f", ... ({len(shown)} columns in all)" if len(shown) > limit else "")


def find_column(columns: Iterable[Any], name: Optional[Any], role: str) -> Any:
    """The column called `name` (compared as text), or a DataError listing the columns."""
    if name is None:
        return None
    for column in columns:
        if str(column) == str(name):
            return column
    raise DataError(column=str(name), role=role, reason=f"not found; the columns are: {names(columns)}")


def has_number(values: Any) -> bool:
    """Whether a column holds any number at all: one that does not is text (a name, a category),
    skipped unless the job names it as a feature."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(values):
        return True
    return bool(pd.to_numeric(values.astype("string").str.strip(), errors="coerce").notna().any())


def numeric_column(frame: Any, column: Any) -> np.ndarray:
    """The column as float64, or a DataError naming the column, the row and the cell."""
    import pandas as pd

    values = frame[column]
    if values.dtype == bool or not (pd.api.types.is_numeric_dtype(values) or values.dtype == object
                                     or pd.api.types.is_string_dtype(values)):
        raise DataError(column=str(column), reason=f"is not numeric (type {values.dtype}); expected numbers")
    text = None
    if not pd.api.types.is_numeric_dtype(values):
        text = values.astype("string").str.strip()
        numbers = pd.to_numeric(text, errors="coerce")
        missing_word = text.isna() | text.str.lower().isin(MISSING_WORDS)
        bad = (numbers.isna() & ~missing_word).fillna(False).to_numpy(dtype=bool)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            number, line = position(frame, row)
            raise DataError(column=str(column), row=number, line=line,
                            reason=f"expected a number, got {excerpt(values.iloc[row])}")
        values = numbers
    values = values.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.flatnonzero(np.isnan(values))
    if missing.size:
        raise DataError(column=str(column), reason=f"has {missing.size} missing cell(s) (blank, NA or NaN) at "
                                                   f"{rows_text(frame, missing)}; expected a number in every row: "
                                                   f"fill or drop those rows first (reducer never fills them silently)")
    too_big = np.flatnonzero(~np.isfinite(values) | (np.abs(values) > FLOAT32_MAX))
    if too_big.size:
        row = int(too_big[0])
        written = text.iloc[row] if text is not None else values[row]
        number, line = position(frame, row)
        raise DataError(column=str(column), row=number, line=line,
                        reason=f"value {excerpt(written)} is infinite or beyond float32 (largest {FLOAT32_MAX:.4g}); "
                               f"expected a finite number")
    return values


def _blank(values: np.ndarray) -> np.ndarray:
    """The positions of the missing or blank (empty, spaces only) cells."""
    import pandas as pd

    return np.flatnonzero(pd.isna(values) | np.array([str(v).strip() == "" for v in values], dtype=bool))


def id_values(frame: Any, column: Any) -> np.ndarray:
    """The id column as an array (its own dtype), or a DataError naming the blank rows: a row
    without an id could not be found in embedding.csv nor matched night to night."""
    ids = frame[column].to_numpy()
    blank = _blank(ids)
    if blank.size:
        raise DataError(column=str(column), role="id", reason=f"is blank in {blank.size} row(s), at "
                                                             f"{rows_text(frame, blank)}; expected an id in every row")
    return ids


def label_values(frame: Any, column: Any) -> np.ndarray:
    """The label column as an array (its own dtype), or a DataError naming the blank rows."""
    labels = frame[column].to_numpy()
    blank = _blank(labels)
    if blank.size:
        # Blank from some row to the end of a whole table: a label list shorter than the rows.
        tail = "first_row" not in frame.attrs and blank[0] > 0 and blank.size == len(labels) - blank[0]
        hint = " (the label list is shorter than the rows?)" if tail else ""
        raise DataError(column=str(column), role="label", reason=f"is blank in {blank.size} row(s), at "
                                                                f"{rows_text(frame, blank)}{hint}; expected a label in "
                                                                f"every row")
    return labels


def value_labels(labels: Any, column: Optional[str], where: Any) -> None:
    """A DataError, starting with `where`, unless every label is a finite number: what a label
    declared `label_type = "value"` must be (its kNN regression score needs numbers)."""
    if labels is None or len(labels) == 0:
        return
    try:
        values = np.asarray(labels).astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
    except (TypeError, ValueError):
        bad = np.array([i for i, label in enumerate(labels) if not _is_number(label)], dtype=np.int64)
    if len(bad):
        raise DataError(path=str(where), key="dataset.label_type",
                        reason=f"= \"value\" needs a number in every row of label column {excerpt(column)}, got "
                               f"{excerpt(labels[bad[0]])}; set label_type = \"class\" for categories")


def _is_number(value: Any) -> bool:
    try:
        return bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False
