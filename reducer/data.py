"""Turn what a plugin returns into a checked numeric table with its normalisation."""

import hashlib
import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .dataset import NORMALIZE_METHODS
from .errors import DataError, PluginError

log = logging.getLogger(__name__)
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Table:
    raw: np.ndarray  # float32, rows x features, as loaded
    x: np.ndarray  # float32, normalised: (raw - offset) / scale
    offset: np.ndarray  # float32, one per feature
    scale: np.ndarray  # float32, one per feature, never 0
    features: tuple
    ids: np.ndarray
    labels: Optional[np.ndarray]
    id_column: Optional[str]
    label_column: Optional[str]
    normalize: str  # "minmax", "zscore", "none" or "fixed"
    sha256: str  # of the feature values, labels and ids

    @property
    def in_unit_range(self):
        """True when every normalised value lies in [0, 1]: a sigmoid output can reproduce it."""
        slack = 1e-6  # float32 rounding of (x - min) / (max - min) can land a hair outside [0, 1]
        return bool(self.x.size) and float(self.x.min()) >= -slack and float(self.x.max()) <= 1.0 + slack


def _where(frame, row):
    """'row 7 (line 8 of data.csv)' when the loader told us where rows came from."""
    text = f"row {row + 1}"
    source, first_line = frame.attrs.get("source"), frame.attrs.get("first_line")
    if source and first_line is not None:
        text += f" (line {row + first_line} of {source})"
    return text


def _find_column(frame, name, role):
    if name is None:
        return None
    for column in frame.columns:
        if str(column) == str(name):
            return column
    existing = ", ".join(str(c) for c in frame.columns)
    raise DataError(f"{role} column {name!r} not found; the columns are: {existing}")


def _is_text(values):
    """A column with no number in it at all: a name or category, not a feature with a bad cell."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(values):
        return False
    return not pd.to_numeric(values.astype("string").str.strip(), errors="coerce").notna().any()


def numeric_column(frame, column):
    import pandas as pd

    values = frame[column]
    if values.dtype == bool or not (pd.api.types.is_numeric_dtype(values) or values.dtype == object
                                     or pd.api.types.is_string_dtype(values)):
        raise DataError(f"column {column!r} is not numeric (type {values.dtype})")
    if not pd.api.types.is_numeric_dtype(values):
        stripped = values.astype("string").str.strip()
        numbers = pd.to_numeric(stripped, errors="coerce")
        bad = numbers.isna() & stripped.notna() & (stripped != "") & ~stripped.str.lower().isin(
            ["nan", "na", "n/a", "null", "none"])
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"column {column!r}, {_where(frame, row)}: expected a number, "
                            f"got {values.iloc[row]!r}")
        values = numbers
    values = values.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(values)
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise DataError(f"column {column!r} has {int(missing.sum())} blank or NaN cell(s), first at "
                        f"{_where(frame, first)}; fill or drop them before reducing")
    too_big = ~np.isfinite(values) | (np.abs(values) > FLOAT32_MAX)
    if too_big.any():
        first = int(np.flatnonzero(too_big)[0])
        raise DataError(f"column {column!r}, {_where(frame, first)}: value {values[first]!r} is "
                        f"infinite or too large for float32 (max {FLOAT32_MAX:.3g})")
    return values


def _affine(method, values, fixed):
    """(offset, scale) per column, float64; constant columns get scale 1."""
    if method == "fixed":
        offset, scale = (np.broadcast_to(np.asarray(v, dtype=np.float64), values.shape[1:]).copy()
                         for v in fixed)
        if np.any(scale == 0) or not np.all(np.isfinite(scale)):
            raise PluginError("normalize=(offset, scale): scale must be finite and non-zero")
        return offset, scale
    if method == "minmax":
        offset, scale = values.min(axis=0), values.max(axis=0) - values.min(axis=0)
    elif method == "zscore":
        offset, scale = values.mean(axis=0), values.std(axis=0)
    else:
        offset, scale = np.zeros(values.shape[1]), np.ones(values.shape[1])
    scale = np.where(scale > 0, scale, 1.0)
    return offset, scale


def make_table(frame, dataset, options):
    """Check the rows a dataset loaded and normalise them.

    options: the job's [dataset] table; `label`, `id`, `features`, `normalize` there override
    the dataset's own choices.
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise PluginError(f"dataset {dataset.name!r}: load() must return a pandas DataFrame, "
                          f"got {type(frame).__name__}")
    if len(frame) < 2:
        raise DataError(f"{len(frame)} data row(s); at least 2 rows are needed to reduce")
    label_column = _find_column(frame, options.get("label", dataset.label), "label")
    id_column = _find_column(frame, options.get("id", dataset.id), "id")
    if "features" in options or dataset.features is not None:
        wanted = options.get("features", dataset.features)
        features = [_find_column(frame, name, "feature") for name in wanted]
    else:
        features = [c for c in frame.columns if c not in (label_column, id_column)]
        text = [c for c in features if _is_text(frame[c])]
        if text:
            log.info("skipping text column(s) %s; name them in features to be told why",
                     ", ".join(map(str, text)))
            features = [c for c in features if c not in text]
    if not features:
        raise DataError("no feature columns left after removing the label and id columns")
    raw = np.column_stack([numeric_column(frame, column) for column in features])

    normalize = options.get("normalize", dataset.normalize)
    fixed = None
    if isinstance(normalize, (tuple, list)) and len(normalize) == 2:
        normalize, fixed = "fixed", normalize
    elif normalize not in NORMALIZE_METHODS:
        raise PluginError(f"dataset {dataset.name!r}: normalize must be one of "
                          f"{', '.join(NORMALIZE_METHODS)} or (offset, scale), got {normalize!r}")
    constant = [str(c) for c, spread in zip(features, np.ptp(raw, axis=0)) if spread == 0]
    if len(constant) == len(features):
        raise DataError("every feature column is constant; there is nothing to reduce")
    if constant:
        log.warning("constant column(s) carry no information: %s", ", ".join(constant))
    offset, scale = _affine(normalize, raw, fixed)
    raw32 = raw.astype(np.float32)
    offset32, scale32 = offset.astype(np.float32), scale.astype(np.float32)
    x = ((raw32 - offset32) / scale32).astype(np.float32)

    labels = frame[label_column].to_numpy() if label_column is not None else None
    if labels is not None and pd.isna(labels).any():
        row = int(np.flatnonzero(pd.isna(labels))[0])
        raise DataError(f"label column {label_column!r} is blank at {_where(frame, row)}")
    ids = frame[id_column].to_numpy() if id_column is not None else np.arange(len(frame))
    digest = hashlib.sha256(np.ascontiguousarray(raw32).tobytes())
    for extra in (labels, ids):
        if extra is not None:
            digest.update("\x1f".join(map(str, extra)).encode())
    return Table(raw=raw32, x=x, offset=offset32, scale=scale32, features=tuple(str(f) for f in features),
                 ids=ids, labels=labels, id_column=None if id_column is None else str(id_column),
                 label_column=None if label_column is None else str(label_column),
                 normalize=normalize, sha256=digest.hexdigest())
