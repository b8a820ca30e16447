"""engine/neighbors.py's approximate search (issue 22's graph stage): rows turned onto their axes
of non-zero variance keep their distances, the graph is the same whatever faiss's threads, each
row is searched for from its own node and finds its nearest rows, the fuzzy union's weights, the
weights the same whichever thread weighs a block."""

import numpy as np
import pytest

from reducer.engine import neighbors
from reducer.engine.neighbors import ArrayRows, fuzzy_graph, fuzzy_union, nearest, principal_axes


def redundant_table(rows=3000, seed=0):
    """12 clustered columns, then 4 sums of two of them and a constant column: 17 columns whose
    rows span 12 axes (as make_classification's redundant columns do)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(6, 12))
    base = centres[rng.integers(0, 6, rows)] + rng.normal(size=(rows, 12))
    sums = base[:, :4] + base[:, 4:8]
    return np.hstack([base, sums, np.full((rows, 1), 3.0)]).astype(np.float32)


def exact_lists(x, k):
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    return np.argsort(d2, axis=1, kind="stable")[:, :k]


def test_rows_turned_onto_their_axes_of_variance_keep_their_distances():
    x = redundant_table(rows=500)
    axes = principal_axes(ArrayRows(x))
    assert axes.shape == (17, 12) and axes.dtype == np.float32
    np.testing.assert_allclose(axes.T @ axes, np.eye(12), atol=1e-5)
    turned = x @ axes
    pairs = np.random.default_rng(1).integers(0, len(x), size=(200, 2))
    before = np.linalg.norm(x[pairs[:, 0]] - x[pairs[:, 1]], axis=1)
    after = np.linalg.norm(turned[pairs[:, 0]] - turned[pairs[:, 1]], axis=1)
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4)
    full_rank = np.random.default_rng(2).normal(size=(500, 17)).astype(np.float32)
    assert principal_axes(ArrayRows(full_rank)) is None  # nothing to leave out: rows searched as they are


def test_the_approximate_search_finds_nine_in_ten_of_the_nearest_rows():
    x = redundant_table()
    indices, distances, method = nearest(x, 9, seed=1, approximate_rows=1000)
    assert method.startswith("approximate") and indices.shape == (len(x), 9)
    assert not (indices == np.arange(len(x))[:, None]).any()  # never the row itself
    assert (np.diff(distances, axis=1) >= 0).all()  # nearest first
    truth = exact_lists(x, 9)
    recall = np.mean([len(np.intersect1d(a, b)) / 9 for a, b in zip(indices, truth)])
    assert recall >= 0.9, recall
    # The distances are the rows' own (not the turned rows' up to rounding alone).
    own = np.linalg.norm(x[np.arange(len(x))[:, None]] - x[indices], axis=2)
    np.testing.assert_allclose(distances, own, rtol=1e-3, atol=1e-3)


def test_rows_of_any_width_are_indexed_in_whole_lanes_and_keep_their_distances():
    """A full-rank table of 13 columns is indexed 16 values wide (zeros added: faiss's float16
    distances run 8 values at a time); the neighbours' distances are the float32 rows' own, exact
    to float32 rounding, though the index holds float16."""
    rng = np.random.default_rng(4)
    x = (rng.normal(scale=3.0, size=(8, 13))[rng.integers(0, 8, 2500)] + rng.normal(size=(2500, 13))).astype(np.float32)
    held = neighbors.indexed_rows(ArrayRows(x))
    assert held.shape == (2500, 16) and not held[:, 13:].any()
    np.testing.assert_array_equal(held[:, :13], x)  # full rank: searched as they are
    indices, distances, _ = nearest(x, 9, seed=2, approximate_rows=1000)
    own = np.linalg.norm(x[:, None, :] - x[indices], axis=2)
    np.testing.assert_allclose(distances, own, rtol=1e-5, atol=1e-5)
    recall = np.mean([len(np.intersect1d(a, b)) / 9 for a, b in zip(indices, exact_lists(x, 9))])
    assert recall >= 0.9, recall


def test_the_same_graph_whatever_faiss_threads_are_set_to():
    """faiss >= 1.15 links a batch of more than 100 rows on all its threads, in a fixed order: the
    same graph on one thread or three, and again (12,000 rows make batches of up to 240)."""
    import faiss

    x = redundant_table(rows=12_000, seed=4)
    threads = faiss.omp_get_max_threads()
    graphs = []
    try:
        for count in (1, 3, 3):
            faiss.omp_set_num_threads(count)
            graphs.append(fuzzy_graph(x, n_neighbors=10, seed=7, approximate_rows=1000))
            assert faiss.omp_get_max_threads() == count  # left as it was
    finally:
        faiss.omp_set_num_threads(threads)
    for graph in graphs[1:]:
        for name in ("indptr", "indices", "weights"):
            assert getattr(graph, name).tobytes() == getattr(graphs[0], name).tobytes()


def test_the_fuzzy_union_joins_both_directions():
    # 0 -> 1 (0.5) and 1 -> 0 (0.4): joined both ways; 0 -> 2 (0.25) and 2 -> 1 (1.0) one way only.
    indices = np.array([[1, 2], [0, 0], [1, 1]], dtype=np.int32)
    weights = np.array([[0.5, 0.25], [0.4, 0.0], [1.0, 0.0]], dtype=np.float32)
    indptr, neighbours, union = fuzzy_union(indices, weights)
    dense = np.zeros((3, 3), dtype=np.float32)
    for row in range(3):
        dense[row, neighbours[indptr[row]:indptr[row + 1]]] = union[indptr[row]:indptr[row + 1]]
    expected = np.array([[0, 0.5 + 0.4 - 0.5 * 0.4, 0.25], [0.7, 0, 1.0], [0.25, 1.0, 0]], dtype=np.float32)
    np.testing.assert_allclose(dense, expected, rtol=1e-6)
    assert indptr.dtype == np.int64 and neighbours.dtype == np.int32 and union.dtype == np.float32
    assert (union > 0).all()  # zero weights are no edges
    for row in range(3):
        assert list(neighbours[indptr[row]:indptr[row + 1]]) == sorted(neighbours[indptr[row]:indptr[row + 1]])


def test_blocks_weighed_on_a_pool_of_threads_give_the_weights_of_one_thread():
    # knn_graph weighs blocks of BLOCK_ROWS rows on a pool of threads: the same numbers as weighing
    # them one after another (a block's bisection runs until its last row has converged, so the
    # blocks are fixed; which thread takes one changes nothing).
    rng = np.random.default_rng(3)
    rows, k = 2 * neighbors.BLOCK_ROWS + 123, 5
    distances = np.sort(rng.gamma(4.0, 1.0, size=(rows, k)), axis=1).astype(np.float32)
    distances[7] = 0.0  # a row of duplicates: its sigma floor comes from the table's mean distance
    indices = np.stack([(np.arange(rows) + j + 1) % rows for j in range(k)], axis=1).astype(np.int32)
    graph = neighbors.knn_graph(indices, distances, "exact")
    mean_distance = float(distances.mean(dtype=np.float64))
    weights = np.concatenate([neighbors.membership(distances[start:start + neighbors.BLOCK_ROWS], k + 1,
                                                   mean_distance)
                              for start in range(0, rows, neighbors.BLOCK_ROWS)]).astype(np.float32)
    indptr, neighbours, union = fuzzy_union(indices, weights)
    assert (graph.indptr == indptr).all() and (graph.indices == neighbours).all()
    assert (graph.weights == union).all()


@pytest.mark.parametrize("rows", [5, 40])
def test_a_tiny_table_searched_approximately_still_has_k_neighbours_per_row(rows):
    x = redundant_table(rows=rows, seed=rows)
    graph = fuzzy_graph(x, n_neighbors=4, seed=0, approximate_rows=2)
    assert graph.rows == rows and (graph.degree >= 3).all()
