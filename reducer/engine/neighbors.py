"""The k-nearest-neighbour graph behind `objective = "neighbors"`: UMAP's fuzzy simplicial set.

`n_neighbors` counts the row itself, as umap-learn's does: each row is joined to its
n_neighbors - 1 nearest other rows (scikit-learn's exact search; pynndescent's approximate
one above PYNNDESCENT_ROWS rows when it is installed). An edge's weight is
exp(-(d - rho_i) / sigma_i), where rho_i is the distance to the nearest other row and sigma_i
is chosen so that the row's weights sum to log2(n_neighbors); the two directions are then
joined as a fuzzy union, w = a + b - a * b. That is umap-learn's fuzzy_simplicial_set (on
the digits with n_neighbors = 16: the same edges, weights within 2e-6; where exact duplicate
rows tie, the two may keep different tied neighbours). Only numpy, scipy and scikit-learn
here: no TensorFlow.
"""

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger("reducer")

PYNNDESCENT_ROWS = 100_000  # above this, pynndescent when installed: exact search grows as rows^2, while
# pynndescent costs about a minute of numba compilation in the first process that uses it
SIGMA_ITERATIONS = 64
SIGMA_TOLERANCE = 1e-5
MIN_SIGMA_SCALE = 1e-3  # as umap-learn: sigma never below 1e-3 x the mean neighbour distance


@dataclass(frozen=True)
class Graph:
    """A symmetric weighted graph, padded to fixed-width rows for the compiled training loop.

    neighbours[i, :degree[i]] are row i's neighbours, weights[i, :degree[i]] their weights;
    the rest of each row is padding (neighbour i itself, weight 0).
    """

    neighbours: np.ndarray  # int32, rows x max degree
    weights: np.ndarray  # float32, rows x max degree
    degree: np.ndarray  # int32, rows
    k: int  # other rows joined to each row: n_neighbors - 1
    method: str

    @property
    def edges(self):
        return int(self.degree.sum())

    def details(self):
        """For the manifest."""
        return {"method": self.method, "n_neighbors": self.k + 1, "edges": self.edges,
                "max_degree": int(self.degree.max())}


def nearest(x, k, seed=0):
    """(indices, distances) of each row's k nearest rows, itself excluded, nearest first."""
    rows = len(x)
    if rows > PYNNDESCENT_ROWS:
        try:
            import pynndescent
        except ImportError:
            log.info("%d rows: exact neighbour search; install pynndescent for a faster one", rows)
        else:
            index = pynndescent.NNDescent(x, n_neighbors=k + 1, random_state=seed, n_jobs=1)
            indices, distances = index.neighbor_graph
            return _drop_self(indices, distances, k), "pynndescent"
    from sklearn.neighbors import NearestNeighbors

    distances, indices = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    return _drop_self(indices, distances, k), "exact"


def _drop_self(indices, distances, k):
    """Remove each row from its own neighbour list (duplicates may push it off position 0)."""
    rows = len(indices)
    is_self = indices == np.arange(rows)[:, None]
    # Where a row is not in its list (k+1 duplicates), drop the farthest entry instead.
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True
    keep = ~is_self
    return (indices[keep].reshape(rows, k).astype(np.int64),
            distances[keep].reshape(rows, k).astype(np.float64))


def membership(distances, n_neighbors):
    """UMAP's per-row fuzzy memberships exp(-(d - rho) / sigma), summing to log2(n_neighbors)."""
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
    mean_distance = distances.mean()
    floor = MIN_SIGMA_SCALE * np.where(rho > 0, distances.mean(axis=1), mean_distance)
    sigma = np.maximum(sigma, floor)
    return np.exp(-shifted / sigma[:, None])


def fuzzy_graph(x, n_neighbors=15, seed=0):
    """The symmetric fuzzy kNN graph of the rows of `x` (normalised rows, float)."""
    import scipy.sparse

    rows = len(x)
    k = max(1, min(n_neighbors - 1, rows - 1))  # other rows per row
    (indices, distances), method = nearest(np.asarray(x, dtype=np.float32), k, seed)
    weights = membership(distances, k + 1)
    directed = scipy.sparse.csr_matrix((weights.ravel(), (np.repeat(np.arange(rows), k), indices.ravel())),
                                       shape=(rows, rows))
    transposed = directed.T.tocsr()
    union = (directed + transposed - directed.multiply(transposed)).tocsr()
    union.eliminate_zeros()
    union.sort_indices()
    degree = np.diff(union.indptr).astype(np.int32)
    width = max(1, int(degree.max()))
    neighbours = np.repeat(np.arange(rows, dtype=np.int32)[:, None], width, axis=1)
    padded = np.zeros((rows, width), dtype=np.float32)
    position = np.arange(union.nnz) - np.repeat(union.indptr[:-1], degree)
    row_of = np.repeat(np.arange(rows), degree)
    neighbours[row_of, position] = union.indices
    padded[row_of, position] = union.data
    return Graph(neighbours=neighbours, weights=padded, degree=degree, k=k, method=method)


def curve_parameters(min_dist, spread=1.0):
    """UMAP's (a, b): 1 / (1 + a d^2b) fitted to 1 below min_dist and exp(-(d - min_dist) / spread)
    beyond it, so min_dist sets how tightly neighbours may pack in the map."""
    from scipy.optimize import curve_fit

    d = np.linspace(0, spread * 3, 300)
    target = np.where(d < min_dist, 1.0, np.exp(-(d - min_dist) / spread))
    (a, b), _ = curve_fit(lambda d, a, b: 1.0 / (1.0 + a * d ** (2 * b)), d, target)
    return float(a), float(b)
