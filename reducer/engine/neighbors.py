"""The k-nearest-neighbour graph behind `objective = "neighbors"`: UMAP's fuzzy simplicial set.

`n_neighbors` counts the row itself, as umap-learn's does: each row is joined to its
n_neighbors - 1 nearest other rows. Up to APPROXIMATE_ROWS rows that is an exact search (numpy,
brute force); above, faiss's HNSW index (approximate: recall@10 about 0.92 on the 100,000 x 50 table of
benchmarks/README.md, "Neighbours for big tables"), over the rows turned onto their axes of
non-zero variance (distances unchanged) and held as float16, built block by block in a fixed
order and seeded with the job's seed, so the same rows and seed give the same graph on any
number of threads (faiss >= 1.15 links each batch of rows in a fixed order); every row is then
searched for from its own node of the index's bottom level, and the distances to the neighbours
it finds computed again from the float32 rows. An edge's weight is exp(-(d - rho_i) / sigma_i),
where rho_i is the distance to the nearest other row and sigma_i is chosen so that the row's
weights sum to log2(n_neighbors); the two directions are then joined as a fuzzy union,
w = a + b - a * b. That is umap-learn's fuzzy_simplicial_set (on the digits with n_neighbors =
16: the same edges, weights within 2e-6; where exact duplicate rows tie, the two may keep
different tied neighbours).

The graph is held as CSR (row pointers, neighbours, weights): its memory grows with its edges,
whatever the widest row's degree (a hub of the symmetrised graph can have thousands). Rows
come from a `RowSource`: an array in memory, or blocks read from the float32 cache, so the
approximate index is built and queried without the whole table in memory beside it.
Only numpy and faiss here: no TensorFlow, no scikit-learn.
"""

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional, Protocol

import numpy as np

from reducer.engine.sizing import APPROXIMATE_ROWS, EXACT_WORKING_BYTES, HNSW_LINKS, HNSW_M, VALUE_LANES

# OpenMP threads (faiss's) that wait for work sleep instead of spinning: the index is built in
# a few hundred parallel batches, and on a busy machine a thread spinning at each batch's end for
# one that lost its core doubled the build's CPU time for no gain in wall time
# (benchmarks/README.md). Read once, when OpenMP starts: before faiss's import, which comes later.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if TYPE_CHECKING:
    from reducer.tables.table import Table

log = logging.getLogger("reducer")

# APPROXIMATE_ROWS: above this many rows, approximate search (faiss HNSW; engine/sizing.py keeps
# the numbers the memory estimate needs). HNSW_M / HNSW_LINKS: links per row on the index's upper
# levels / bottom level. Measured on the 100,000 x 50 table (benchmarks/README.md, "Neighbours for
# big tables"): 16 / 64 links, 28 candidates while inserting and 20 while searching from each row's
# own node found 0.92 of the 9 nearest rows for a sixth of the exact search's CPU time (32 and 16,
# before the index held float16: the same recall for a sixth more CPU time).
EF_CONSTRUCTION = 28  # candidates while inserting
EF_SEARCH = 20  # candidates while querying from the row's own node (at least the k + 1 asked for)
ORDER_PIVOTS = 256  # rows near the same one of these many drawn rows are stored together in the index
NULL_VARIANCE = 1e-9  # an axis of the rows with less variance than this share of the largest's has none
BLOCK_ROWS = 10_000  # rows added or queried at a time (a progress line between blocks; fixed: faiss
# inserts each block's rows by level, so the blocks are part of what makes the graph repeatable)
EXTRA_CANDIDATES = 2  # the exact search's float32 candidates per neighbour kept (see _exact)
CURVE_ITERATIONS = 100  # curve_parameters' Levenberg-Marquardt steps at most ...
CURVE_TOLERANCE = 1e-10  # ... until a step moves a and b by less than this (relative)
SIGMA_ITERATIONS = 64
SIGMA_TOLERANCE = 1e-5
MIN_SIGMA_SCALE = 1e-3  # as umap-learn: sigma never below 1e-3 x the mean neighbour distance
Progress = Callable[[int, int], None]  # (done, total) rows, or None


class RowSource(Protocol):
    """Normalised float32 rows by block: what the graph is built from."""

    @property
    def rows(self) -> int: ...
    @property
    def columns(self) -> int: ...

    def block(self, start: int, count: int) -> np.ndarray: ...


@dataclass(frozen=True)
class ArrayRows:
    """A RowSource over an array in memory."""

    x: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.x)

    @property
    def columns(self) -> int:
        return int(self.x.shape[1])

    def block(self, start: int, count: int) -> np.ndarray:
        return np.ascontiguousarray(self.x[start:start + count], dtype=np.float32)


def as_source(x: "np.ndarray | RowSource") -> RowSource:
    if isinstance(x, np.ndarray) or not hasattr(x, "block"):
        return ArrayRows(np.asarray(x))
    return x


@dataclass(frozen=True)
class Graph:
    """A symmetric weighted graph in CSR form: row i's neighbours are
    indices[indptr[i]:indptr[i + 1]], sorted, with their weights alongside."""

    indptr: np.ndarray  # int64, rows + 1
    indices: np.ndarray  # int32, edges
    weights: np.ndarray  # float32, edges
    k: int  # other rows joined to each row: n_neighbors - 1
    method: str  # "exact" or "approximate (faiss HNSW)"

    @property
    def rows(self) -> int:
        return len(self.indptr) - 1

    @property
    def edges(self) -> int:
        return int(self.indptr[-1])

    @property
    def degree(self) -> np.ndarray:
        return np.diff(self.indptr)

    @property
    def nbytes(self) -> int:
        return int(self.indptr.nbytes + self.indices.nbytes + self.weights.nbytes)

    def row_weights(self) -> np.ndarray:
        """Each row's total edge weight (float64)."""
        rows = np.repeat(np.arange(self.rows), self.degree)
        return np.bincount(rows, weights=self.weights, minlength=self.rows)

    def neighbours_of(self, row: int) -> tuple:
        """(neighbours, weights) of one row."""
        start, end = self.indptr[row], self.indptr[row + 1]
        return self.indices[start:end], self.weights[start:end]

    def details(self) -> dict:
        """For the manifest."""
        degree = self.degree
        return {"method": self.method, "n_neighbors": self.k + 1, "edges": self.edges,
                "max_degree": int(degree.max()) if len(degree) else 0, "bytes": self.nbytes}


def search_method(rows: int, approximate_rows: int = APPROXIMATE_ROWS) -> str:
    """"exact" or "approximate": what `nearest` does for a table of `rows` rows."""
    return "approximate" if rows > approximate_rows else "exact"


def nearest(x: "np.ndarray | RowSource", k: int, seed: int = 0, approximate_rows: int = APPROXIMATE_ROWS,
            progress: Optional[Progress] = None) -> tuple:
    """(indices int32, distances float32, method): each row's k nearest other rows, nearest first."""
    source = as_source(x)
    if search_method(source.rows, approximate_rows) == "approximate":
        indices, distances = _hnsw(source, k, seed, progress)
        return indices, distances, "approximate (faiss HNSW)"
    indices, distances = _exact(source.block(0, source.rows), k)
    if progress:
        progress(source.rows, source.rows)
    return indices, distances, "exact"


def _exact(rows: np.ndarray, k: int) -> tuple:
    """Each row's k nearest other rows by brute force in numpy, nearest first, ties by row
    number: candidates from float32 squared distances less |x|^2, |y|^2 - 2 x.y (a block of rows at
    a time within EXACT_WORKING_BYTES: the distances and their argpartition's indices), EXTRA_
    CANDIDATES x (k + 1) of them per row, then their distances again in float64, directly, and
    the nearest k + 1 of those kept (float32's rounding can reorder only near-ties). numpy alone:
    scikit-learn's import (about half a second, on the critical path of every small job) is left
    to the quality metrics, which run beside training."""
    x = np.ascontiguousarray(rows, dtype=np.float32)
    count = len(x)
    wanted = min(k + 1, count)
    candidates = min(EXTRA_CANDIDATES * wanted, count)
    norms = np.einsum("ij,ij->i", x, x)
    twice = (-2.0 * x).T
    block = max(1, EXACT_WORKING_BYTES // (12 * max(count, 1)))  # float32 distances, int64 indices
    indices = np.empty((count, wanted), dtype=np.int64)
    distances = np.empty((count, wanted), dtype=np.float64)
    for start in range(0, count, block):
        d2 = x[start:start + block] @ twice  # |y|^2 - 2 x.y: ranks the rows y as |x - y|^2 does
        d2 += norms[None, :]
        found = np.argpartition(d2, candidates - 1, axis=1)[:, :candidates] if candidates < count else \
            np.broadcast_to(np.arange(count), d2.shape).copy()
        del d2
        here = x[start:start + block].astype(np.float64)
        exact = np.sqrt(np.sum((here[:, None, :] - x[found].astype(np.float64)) ** 2, axis=2))
        order = np.lexsort((found, exact), axis=1)[:, :wanted]  # by distance, then row number
        indices[start:start + len(found)] = np.take_along_axis(found, order, axis=1)
        distances[start:start + len(found)] = np.take_along_axis(exact, order, axis=1)
    return _drop_self(indices, distances, k)


def principal_axes(source: RowSource) -> Optional[np.ndarray]:
    """The rows' axes of non-zero variance (columns x axes, float32, orthonormal), or None when
    every axis has some. Rows turned onto them keep their distances (what they leave out is the
    same for every row: a column that is a sum of others, a constant one), and the index computes
    each distance over fewer values: make_classification's 10 redundant columns of 50 are such."""
    columns = source.columns
    moments = np.zeros((columns, columns))
    sums = np.zeros(columns)
    for start in range(0, source.rows, BLOCK_ROWS):
        block = source.block(start, BLOCK_ROWS).astype(np.float64)
        moments += block.T @ block
        sums += block.sum(axis=0)
    mean = sums / source.rows
    variances, axes = np.linalg.eigh(moments / source.rows - np.outer(mean, mean))
    keep = variances > NULL_VARIANCE * max(float(variances.max()), 0.0)
    if keep.all() or not keep.any():
        return None
    return np.ascontiguousarray(axes[:, keep], dtype=np.float32)


def near_rows_together(x: np.ndarray, seed: int) -> np.ndarray:
    """A row order that puts near rows near in memory: rows grouped by their nearest of
    ORDER_PIVOTS rows drawn with the seed (ties: the lower pivot), the table's order kept within a
    group. The index's distances fetch rows from all over the table; in this order a row's
    neighbours are mostly in the cache already (on the 100,000 x 50 table about a tenth of the
    graph's CPU time)."""
    rows = len(x)
    pivots = x[np.sort(np.random.default_rng(seed).choice(rows, size=min(ORDER_PIVOTS, rows), replace=False))]
    norms = np.einsum("ij,ij->i", pivots, pivots)
    group = np.empty(rows, dtype=np.int64)
    for start in range(0, rows, BLOCK_ROWS):
        group[start:start + BLOCK_ROWS] = np.argmin(norms[None, :] - 2 * (x[start:start + BLOCK_ROWS] @ pivots.T),
                                                    axis=1)
    return np.argsort(group, kind="stable")


def _hnsw(source: RowSource, k: int, seed: int, progress: Optional[Progress]) -> tuple:
    """faiss's HNSW index over the rows (turned onto their axes of non-zero variance, near rows
    together, stored as float16), added one block at a time; then each row searched for from its
    own node of the index's bottom level, and its neighbours' distances computed again from the
    float32 rows."""
    import faiss

    rows = source.rows
    x = indexed_rows(source)
    order = near_rows_together(x, seed)  # the index's node i is row order[i]
    # float16 values: half the memory the distances read (the search is memory-bound), about a
    # tenth less CPU time for the same recall; the float32 rows give the distances kept.
    index = faiss.IndexHNSWSQ(x.shape[1], faiss.ScalarQuantizer.QT_fp16, HNSW_M)  # type: ignore[arg-type]  # an int in the stubs
    index.hnsw.set_nb_neighbors(0, HNSW_LINKS)  # type: ignore[attr-defined]  # not in faiss's stubs
    index.hnsw.efConstruction = EF_CONSTRUCTION
    index.hnsw.rng = faiss.RandomGenerator(int(seed) & 0x7FFFFFFF)  # type: ignore[attr-defined]  # levels: the seed's
    # faiss >= 1.15 links each block's rows in batches in a fixed order whatever the threads (the
    # same graph on one thread or sixteen), so the build uses them all, as the queries do.
    for start in range(0, rows, BLOCK_ROWS):
        index.add(x[order[start:start + BLOCK_ROWS]])
        if progress:
            progress(min(start + BLOCK_ROWS, rows), 2 * rows)
    # Every row is in the index: its search starts at its own node on the bottom level (its
    # links are already near it), not from the top.
    index.hnsw.efSearch = max(EF_SEARCH, k + 1)
    indices = np.empty((rows, k), dtype=np.int32)
    distances = np.empty((rows, k), dtype=np.float32)
    for start in range(0, rows, BLOCK_ROWS):
        count = min(BLOCK_ROWS, rows - start)
        block = np.ascontiguousarray(x[order[start:start + count]])
        own = np.arange(start, start + count, dtype=np.int32)  # each row's entry: its own node ...
        at_zero = np.zeros(count, dtype=np.float32)  # ... at distance 0 (held: swig_ptr keeps no reference)
        found_d2 = np.empty((count, k + 1), dtype=np.float32)
        found = np.empty((count, k + 1), dtype=np.int64)
        index.search_level_0(count, faiss.swig_ptr(block), k + 1, faiss.swig_ptr(own),  # type: ignore[attr-defined]
                             faiss.swig_ptr(at_zero), faiss.swig_ptr(found_d2), faiss.swig_ptr(found))
        block_indices, _ = _drop_self(found, found_d2, k, first=start)
        neighbours = order[block_indices]
        indices[order[start:start + count]], distances[order[start:start + count]] = _nearest_first(
            neighbours, np.sqrt(np.sum((x[neighbours] - block[:, None, :]) ** 2, axis=2, dtype=np.float32)))
        if progress:
            progress(rows + start + count, 2 * rows)
    return indices, distances


def indexed_rows(source: RowSource) -> np.ndarray:
    """The rows as the index holds them (float32, in memory): turned onto their axes of non-zero
    variance, then zeros added to a multiple of VALUE_LANES values (distances unchanged): faiss's
    float16 distances run in SIMD lanes of 8, a width outside them runs one value at a time (10x
    slower on 100 columns)."""
    axes = principal_axes(source)
    width = source.columns if axes is None else axes.shape[1]
    x = np.zeros((source.rows, -(-width // VALUE_LANES) * VALUE_LANES), dtype=np.float32)
    for start in range(0, source.rows, BLOCK_ROWS):
        block = source.block(start, BLOCK_ROWS)
        x[start:start + len(block), :width] = block if axes is None else block @ axes
    return x


def _nearest_first(indices: np.ndarray, distances: np.ndarray) -> tuple:
    """Each row's neighbours sorted by distance, ties by row number."""
    order = np.lexsort((indices, distances), axis=1)
    return np.take_along_axis(indices, order, axis=1), np.take_along_axis(distances, order, axis=1)


def _drop_self(indices: np.ndarray, distances: np.ndarray, k: int, first: int = 0) -> tuple:
    """Remove each row (numbered from `first`) from its own list of k + 1 (duplicates may push it
    off position 0; where it is missing, the farthest entry goes instead). An approximate search
    may also leave holes (-1) where it found fewer rows: they take the row's farthest neighbour."""
    rows = len(indices)
    is_self = indices == (first + np.arange(rows))[:, None]
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True
    keep = ~is_self
    indices = indices[keep].reshape(rows, k)
    distances = distances[keep].reshape(rows, k)
    holes = indices < 0
    if holes.any():  # fill from the row's last real neighbour (each row has at least one)
        last = np.maximum(0, (~holes).sum(axis=1) - 1)
        indices = np.where(holes, indices[np.arange(rows), last][:, None], indices)
        distances = np.where(holes, distances[np.arange(rows), last][:, None], distances)
    return indices.astype(np.int32), distances.astype(np.float32)


def membership(distances: np.ndarray, n_neighbors: int, mean_distance: Optional[float] = None) -> np.ndarray:
    """UMAP's per-row fuzzy memberships exp(-(d - rho) / sigma), summing to log2(n_neighbors).
    mean_distance: the mean over the whole table, when `distances` is one block of it."""
    distances = np.asarray(distances, dtype=np.float64)
    rho = np.where(distances > 0, distances, np.inf).min(axis=1)
    rho = np.where(np.isfinite(rho), rho, 0.0)
    shifted = np.maximum(distances - rho[:, None], 0.0)
    target = np.log2(n_neighbors)
    low = np.zeros(len(distances))
    high = np.full(len(distances), np.inf)
    sigma = np.ones(len(distances))
    for _ in range(SIGMA_ITERATIONS):  # bisection for every row at once
        total = np.exp(-shifted / sigma[:, None]).sum(axis=1)
        if np.all(np.abs(total - target) < SIGMA_TOLERANCE):
            break
        too_big = total > target
        high = np.where(too_big, sigma, high)
        low = np.where(too_big, low, sigma)
        sigma = np.where(np.isfinite(high), (low + high) / 2, sigma * 2)
    if mean_distance is None:
        mean_distance = float(distances.mean())
    floor = MIN_SIGMA_SCALE * np.where(rho > 0, distances.mean(axis=1), mean_distance)
    sigma = np.maximum(sigma, floor)
    return np.exp(-shifted / sigma[:, None])


def fuzzy_union(indices: np.ndarray, weights: np.ndarray) -> tuple:
    """CSR (indptr, indices, weights) of the fuzzy union of the directed edges row -> indices[row]
    (rows x k, with their weights): w = a + b - a * b for a pair joined both ways, the one weight
    otherwise. SciPy's compiled sparse sum and product: no sort of all the edges."""
    from scipy import sparse

    rows, k = indices.shape
    directed = sparse.csr_matrix((np.asarray(weights, dtype=np.float32).ravel(), indices.ravel(),
                                  np.arange(0, rows * k + 1, k, dtype=np.int64)), shape=(rows, rows))
    reverse = directed.T.tocsr()
    union = (directed + reverse - directed.multiply(reverse)).tocsr()
    del directed, reverse
    union.eliminate_zeros()
    union.sort_indices()
    return (union.indptr.astype(np.int64, copy=False), union.indices.astype(np.int32, copy=False),
            union.data.astype(np.float32, copy=False))


def fuzzy_graph(x: "np.ndarray | RowSource", n_neighbors: int = 15, seed: int = 0,
                approximate_rows: int = APPROXIMATE_ROWS, progress: Optional[Progress] = None) -> Graph:
    """The symmetric fuzzy kNN graph of the normalised rows of `x` (an array or a RowSource).
    progress(done, total): called as the search goes (approximate search: between blocks)."""
    source = as_source(x)
    k = max(1, min(n_neighbors - 1, source.rows - 1))  # other rows per row
    return knn_graph(*nearest(source, k, seed, approximate_rows, progress))


def knn_graph(indices: np.ndarray, distances: np.ndarray, method: str) -> Graph:
    """The symmetric fuzzy graph of each row's k nearest other rows (rows x k, nearest first)."""
    rows, k = indices.shape
    mean_distance = float(distances.mean(dtype=np.float64))
    weights = np.empty(distances.shape, dtype=np.float32)

    def weigh(start: int) -> None:  # float64 scratch for one block at a time
        weights[start:start + BLOCK_ROWS] = membership(distances[start:start + BLOCK_ROWS], k + 1, mean_distance)

    starts = range(0, rows, BLOCK_ROWS)
    # numpy's arithmetic lets go of the GIL: the blocks on every core, the same numbers
    with ThreadPoolExecutor(max(1, min(len(starts), os.cpu_count() or 1))) as pool:
        list(pool.map(weigh, starts))
    indptr, neighbours, union = fuzzy_union(indices, weights)
    return Graph(indptr=indptr, indices=neighbours, weights=union, k=k, method=method)


def curve_parameters(min_dist: float, spread: float = 1.0) -> tuple:
    """UMAP's (a, b): 1 / (1 + a d^2b) fitted to 1 below min_dist and exp(-(d - min_dist) / spread)
    beyond it, so min_dist sets how tightly neighbours may pack in the map. Least squares on 300
    points of [0, 3 spread] from (1, 1), as umap-learn's scipy curve_fit, by Levenberg-Marquardt
    steps in numpy (scipy.optimize's import cost a small job a third of a second): the same
    (a, b) within 5e-6 relative for min_dist 0.001-0.99."""
    d = np.linspace(0, spread * 3, 300)
    target = np.where(d < min_dist, 1.0, np.exp(-(d - min_dist) / spread))
    log_d = np.log(np.where(d > 0, d, 1.0))  # d^2b's derivative in b is 2 log(d) d^2b (0 at d = 0)

    def fit(params: np.ndarray) -> tuple:
        u = params[0] * d ** (2 * params[1])
        error = 1.0 / (1.0 + u) - target
        return error, u, float(error @ error)

    params, damping = np.array([1.0, 1.0]), 1e-3
    error, u, cost = fit(params)
    for _ in range(CURVE_ITERATIONS):
        slope = -u / (1.0 + u) ** 2  # of the curve in log u
        jacobian = np.stack([slope / params[0], 2 * slope * log_d], axis=1)
        normal = jacobian.T @ jacobian
        step = np.linalg.solve(normal + damping * np.diag(np.diag(normal)), -(jacobian.T @ error))
        tried = fit(params + step)
        if tried[2] < cost:
            params, (error, u, cost), damping = params + step, tried, damping / 10
            if np.max(np.abs(step) / np.abs(params)) < CURVE_TOLERANCE:
                break
        else:
            damping *= 10
    return float(params[0]), float(params[1])


@dataclass(frozen=True)
class TableRows:
    """A RowSource over a job's table (tables.table.Table), in memory or in the float32 cache:
    its normalised rows read a block at a time, never all at once."""

    table: "Table"

    @property
    def rows(self) -> int:
        return int(self.table.rows)

    @property
    def columns(self) -> int:
        return len(self.table.features)

    def block(self, start: int, count: int) -> np.ndarray:
        return np.ascontiguousarray(self.table.normalised(self.table.raw(start, count)), dtype=np.float32)
