"""Normalisation statistics, gathered block by block, and the checks on each column's spread.

One mechanism for every table: a table held in memory feeds its rows through `ColumnStats`
exactly as the float32 cache does, block by block, so both get the same offsets and scales.
"""

import logging
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from reducer.datasets.dataset import NORMALIZE_METHODS
from reducer.errors import DataError, PluginError, excerpt
from reducer.log import job_tag
from reducer.tables.checks import names

log = logging.getLogger("reducer")
MAX_SCALE = 1e19  # sqrt(float32 max) is 1.8e19: see check_spread
MIN_SCALE = 1e-7  # Keras's epsilon: see check_spread


def method_of(normalize: Any, dataset_name: str) -> Tuple[str, Optional[Tuple[Any, Any]]]:
    """("minmax" | "zscore" | "none" | "fixed", the fixed (offset, scale) or None)."""
    if isinstance(normalize, (tuple, list)) and len(normalize) == 2:
        return "fixed", tuple(normalize)
    if normalize not in NORMALIZE_METHODS:
        raise PluginError(f"dataset {dataset_name!r}: normalize must be one of "
                          f"{', '.join(NORMALIZE_METHODS)} or (offset, scale), got {normalize!r}")
    return normalize, None


class ColumnStats:
    """Count, min, max, mean and sum of squared deviations per column, merged block by block
    (Chan et al.), so the mean and spread need one pass and no more memory than a block."""

    def __init__(self, columns: int) -> None:
        self.n = 0
        self.min = np.full(columns, np.inf)
        self.max = np.full(columns, -np.inf)
        self.mean = np.zeros(columns)
        self.m2 = np.zeros(columns)

    def add(self, x: np.ndarray) -> None:
        n = len(x)
        if not n:
            return
        mean = x.mean(axis=0)
        m2 = ((x - mean) ** 2).sum(axis=0)
        if self.n == 0:  # exactly numpy's mean and std for a table that is one block
            self.mean, self.m2 = mean, m2
        else:
            delta = mean - self.mean
            total = self.n + n
            self.m2 = self.m2 + m2 + delta ** 2 * self.n * n / total
            self.mean = self.mean + delta * n / total
        self.n += n
        self.min = np.minimum(self.min, x.min(axis=0))
        self.max = np.maximum(self.max, x.max(axis=0))

    def affine(self, method: str, fixed: Optional[Tuple[Any, Any]] = None) -> Tuple[np.ndarray, np.ndarray]:
        """(offset, scale) per column, float64; constant columns get scale 1."""
        if method == "fixed" and fixed is not None:  # method_of gives the map with "fixed"
            offset, scale = (np.broadcast_to(np.asarray(v, dtype=np.float64), self.mean.shape).copy()
                             for v in fixed)
            if np.any(scale == 0) or not np.all(np.isfinite(scale)):
                raise PluginError("normalize=(offset, scale): scale must be finite and non-zero")
            return offset, scale
        if method == "minmax":
            offset, scale = self.min, self.max - self.min
        elif method == "zscore":
            offset, scale = self.mean, np.sqrt(self.m2 / self.n)
        else:
            offset, scale = np.zeros_like(self.mean), np.ones_like(self.mean)
        return offset, np.where(scale > 0, scale, 1.0)


def check_spread(features: Sequence[str], low32: np.ndarray, high32: np.ndarray, offset: np.ndarray,
                 scale: np.ndarray, normalize: str, origin: str) -> Tuple[np.ndarray, np.ndarray]:
    """Constant columns: a warning, or an error when every column is. Scales the saved encoder
    cannot hold, and values that overflow float32 once normalised: errors. Returns the float32
    (offset, scale)."""
    # Judged in float32, the precision the model sees: 1e20 and 1e20 + 1 are one value there.
    constant = [str(c) for c, lo, hi in zip(features, low32, high32) if lo == hi]
    if len(constant) == len(features):
        raise DataError(f"every feature column is constant ({names(constant)}); expected at least one "
                        f"column whose values vary")
    if constant:  # tagged with the job when the caller says which (log.job_context), else with the file
        tag, columns = job_tag(None), ", ".join(map(excerpt, constant))
        if tag:
            log.warning("%s constant column(s) %s of %s carry no information; kept, but they do not shape the map",
                        tag, columns, origin)
        else:
            log.warning("%s: constant column(s) %s carry no information; kept, but they do not shape the map",
                        origin, columns)
    # Constant in float32 yet not in float64 (5 + 1e-12 noise): constant, as the warning says,
    # so scale 1 like any constant column, not a scale under MIN_SCALE that fails the job.
    scale = np.where(low32 == high32, 1.0, scale)
    # The saved encoder normalises with a Keras Normalization layer (engine/model.raw_row_encoder),
    # which stores scale**2 in float32 and divides by max(scale, 1e-7): a scale beyond ~1.8e19
    # maps every row to 0, one below 1e-7 is silently clamped. Either would publish a collapsed
    # map from a model that trained well, so refuse with the fix instead.
    for bad, limit, verb in ((scale > MAX_SCALE, f"at most {MAX_SCALE:.0e}", "divide"),
                             (scale < MIN_SCALE, f"at least {MIN_SCALE:.0e}", "multiply")):
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise DataError(column=str(features[k]),
                            reason=f"spans {low32[k]:.4g} to {high32[k]:.4g}, a scale of {scale[k]:.3g} under "
                                   f"normalize = {normalize!r}; the saved encoder needs one {limit}: {verb} the "
                                   f"column by a power of ten first")
    offset32, scale32 = offset.astype(np.float32), scale.astype(np.float32)
    with np.errstate(over="ignore"):
        ends = np.stack([(low32 - offset32) / scale32, (high32 - offset32) / scale32]).astype(np.float32)
    if not np.isfinite(ends).all():
        column = features[int(np.flatnonzero(~np.isfinite(ends).all(axis=0))[0])]
        raise DataError(column=str(column), reason=f"overflows float32 once normalised ({normalize}); "
                                                   f"rescale it or choose another normalize")
    return offset32, scale32


def normalised(raw32: np.ndarray, offset32: np.ndarray, scale32: np.ndarray) -> np.ndarray:
    """(raw - offset) / scale in float32: the one formula, as the saved encoder's layer applies it."""
    return ((raw32 - offset32) / scale32).astype(np.float32)
