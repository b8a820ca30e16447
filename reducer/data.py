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
MAX_SCALE = 1e19  # sqrt(FLOAT32_MAX) is 1.8e19: see check_spread
MIN_SCALE = 1e-7  # Keras's epsilon: see check_spread


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


def where(frame, row):
    """'row 7 (line 8)' when the loader told us where rows came from, else 'row 7'.

    Loaders may set ``frame.attrs["lines"]`` (the file line of each row) or
    ``frame.attrs["first_line"]`` (the line of row 0, when every row is one line).
    """
    text = f"row {row + 1}"
    lines, first_line = frame.attrs.get("lines"), frame.attrs.get("first_line")
    if lines is not None and row < len(lines):
        text += f" (line {int(lines[row])})"
    elif first_line is not None:
        text += f" (line {row + first_line})"
    return text


def _rows_text(frame, rows, limit=3):
    shown = ", ".join(where(frame, int(r)) for r in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def _origin(frame, dataset):
    """What a message about these rows should start with: the data file, else the dataset."""
    source = frame.attrs.get("source") if hasattr(frame, "attrs") else None
    return str(source) if source else f"dataset {dataset.name!r}"


def _names(columns, limit=20):
    names = [str(c) for c in columns]
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} columns in all)" if len(names) > limit else "")


def _find_column(frame, name, role):
    if name is None:
        return None
    for column in frame.columns:
        if str(column) == str(name):
            return column
    raise DataError(f"{role} column {name!r} not found; the columns are: {_names(frame.columns)}")


def _is_text(values):
    """A column with no number in it at all: a name or category, not a feature with a bad cell."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(values):
        return False
    return not pd.to_numeric(values.astype("string").str.strip(), errors="coerce").notna().any()


MISSING_WORDS = ("", "nan", "na", "n/a", "null", "none")


def numeric_column(frame, column):
    """The column as float64, or a DataError naming the column, the row and the cell."""
    import pandas as pd

    values = frame[column]
    if values.dtype == bool or not (pd.api.types.is_numeric_dtype(values) or values.dtype == object
                                     or pd.api.types.is_string_dtype(values)):
        raise DataError(f"column {column!r} is not numeric (type {values.dtype}); expected numbers")
    text = None
    if not pd.api.types.is_numeric_dtype(values):
        text = values.astype("string").str.strip()
        numbers = pd.to_numeric(text, errors="coerce")
        missing_word = text.isna() | text.str.lower().isin(MISSING_WORDS)
        bad = (numbers.isna() & ~missing_word).fillna(False).to_numpy(dtype=bool)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"column {column!r}, {where(frame, row)}: expected a number, "
                            f"got {values.iloc[row]!r}")
        values = numbers
    values = values.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.flatnonzero(np.isnan(values))
    if missing.size:
        raise DataError(f"column {column!r} has {missing.size} missing cell(s) (blank, NA or NaN) at "
                        f"{_rows_text(frame, missing)}; expected a number in every row: fill or drop "
                        f"those rows first (reducer never fills them silently)")
    too_big = np.flatnonzero(~np.isfinite(values) | (np.abs(values) > FLOAT32_MAX))
    if too_big.size:
        row = int(too_big[0])
        written = text.iloc[row] if text is not None else values[row]
        raise DataError(f"column {column!r}, {where(frame, row)}: value {written!r} is infinite or "
                        f"beyond float32 (largest {FLOAT32_MAX:.4g}); expected a finite number")
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


def check_spread(features, low32, high32, offset, scale, normalize, origin):
    """Checks shared by the in-memory and the streamed table, from each column's float32 range.

    Constant columns: a warning, or an error when every column is. Scales the saved encoder
    cannot hold, and values that overflow float32 once normalised: errors. Returns the float32
    (offset, scale).
    """
    # Judged in float32, the precision the model sees: 1e20 and 1e20 + 1 are one value there.
    constant = [str(c) for c, lo, hi in zip(features, low32, high32) if lo == hi]
    if len(constant) == len(features):
        raise DataError(f"every feature column is constant ({_names(constant)}); expected at least one "
                        f"column whose values vary")
    if constant:
        log.warning("%s: constant column(s) %s carry no information; kept, but they do not shape the map",
                    origin, ", ".join(map(repr, constant)))
    # The saved encoder normalises with a Keras Normalization layer (model.raw_row_encoder),
    # which stores scale**2 in float32 and divides by max(scale, 1e-7): a scale beyond ~1.8e19
    # maps every row to 0, one below 1e-7 is silently clamped. Either would publish a collapsed
    # map from a model that trained well, so refuse with the fix instead.
    for bad, limit, verb in ((scale > MAX_SCALE, f"at most {MAX_SCALE:.0e}", "divide"),
                             (scale < MIN_SCALE, f"at least {MIN_SCALE:.0e}", "multiply")):
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise DataError(f"column {str(features[k])!r} spans {low32[k]:.4g} to {high32[k]:.4g}, "
                            f"a scale of {scale[k]:.3g} under normalize = {normalize!r}; the saved encoder "
                            f"needs one {limit}: {verb} the column by a power of ten first")
    offset32, scale32 = offset.astype(np.float32), scale.astype(np.float32)
    with np.errstate(over="ignore"):
        ends = np.stack([(low32 - offset32) / scale32, (high32 - offset32) / scale32]).astype(np.float32)
    if not np.isfinite(ends).all():
        column = features[int(np.flatnonzero(~np.isfinite(ends).all(axis=0))[0])]
        raise DataError(f"column {str(column)!r} overflows float32 once normalised ({normalize}); "
                        f"rescale it or choose another normalize")
    return offset32, scale32


def make_table(frame, dataset, options):
    """Check the rows a dataset loaded and normalise them.

    options: the job's [dataset] table; `label`, `id`, `features`, `normalize` there override
    the dataset's own choices. Problems with the rows raise DataError starting with the data
    file (or the dataset's name when the plugin did not say which file).
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise PluginError(f"dataset {dataset.name!r}: load() must return a pandas DataFrame, "
                          f"got {type(frame).__name__}")
    origin = _origin(frame, dataset)
    try:
        return _make_table(frame, dataset, options, origin)
    except DataError as exc:
        raise DataError(f"{origin}: {exc}") from None


def _make_table(frame, dataset, options, origin):
    import pandas as pd

    if frame.columns.nlevels != 1:
        raise PluginError(f"dataset {dataset.name!r}: load() returned {frame.columns.nlevels} levels of "
                          f"column names; expected one name per column")
    names = [str(c) for c in frame.columns]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DataError(f"column name(s) {', '.join(map(repr, twice))} appear more than once; "
                        f"expected unique column names")
    if len(frame) < 2:
        raise DataError(f"{len(frame)} data row{'' if len(frame) == 1 else 's'}; expected at least 2 rows")
    label_column = _find_column(frame, options.get("label", dataset.label), "label")
    id_column = _find_column(frame, options.get("id", dataset.id), "id")
    if "features" in options or dataset.features is not None:
        wanted = options.get("features", dataset.features)
        features = [_find_column(frame, name, "feature") for name in wanted]
    else:
        features = [c for c in frame.columns if c not in (label_column, id_column)]
        text = [c for c in features if _is_text(frame[c])]
        if text:
            log.info("%s: skipping text column(s) %s; name them in features to be told why",
                     origin, ", ".join(map(str, text)))
            features = [c for c in features if c not in text]
    if not features:
        raise DataError(f"no numeric feature columns besides the label and id; the columns are: "
                        f"{_names(frame.columns)}")
    raw = np.column_stack([numeric_column(frame, column) for column in features])

    normalize = options.get("normalize", dataset.normalize)
    fixed = None
    if isinstance(normalize, (tuple, list)) and len(normalize) == 2:
        normalize, fixed = "fixed", normalize
    elif normalize not in NORMALIZE_METHODS:
        raise PluginError(f"dataset {dataset.name!r}: normalize must be one of "
                          f"{', '.join(NORMALIZE_METHODS)} or (offset, scale), got {normalize!r}")
    raw32 = raw.astype(np.float32)
    offset, scale = _affine(normalize, raw, fixed)
    offset32, scale32 = check_spread(features, raw32.min(axis=0), raw32.max(axis=0), offset, scale,
                                     normalize, origin)
    x = ((raw32 - offset32) / scale32).astype(np.float32)

    labels = frame[label_column].to_numpy() if label_column is not None else None
    if labels is not None:
        blank = np.flatnonzero(pd.isna(labels) | np.array([str(v).strip() == "" for v in labels]))
        if blank.size:
            tail = blank[0] > 0 and blank.size == len(labels) - blank[0]
            hint = " (the label list is shorter than the rows?)" if tail else ""
            raise DataError(f"label column {str(label_column)!r} is blank in {blank.size} of {len(labels)} "
                            f"rows, at {_rows_text(frame, blank)}{hint}; expected a label in every row")
    ids = frame[id_column].to_numpy() if id_column is not None else np.arange(len(frame))
    digest = hashlib.sha256(np.ascontiguousarray(raw32).tobytes())
    for extra in (labels, ids):
        if extra is not None:
            digest.update("\x1f".join(map(str, extra)).encode())
    return Table(raw=raw32, x=x, offset=offset32, scale=scale32, features=tuple(str(f) for f in features),
                 ids=ids, labels=labels, id_column=None if id_column is None else str(id_column),
                 label_column=None if label_column is None else str(label_column),
                 normalize=normalize, sha256=digest.hexdigest())
