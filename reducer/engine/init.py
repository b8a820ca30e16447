"""A starting layout for the neighbour objective (issue 23).

UMAP starts its points from a spectral layout of the kNN graph; reducer's encoder starts from
random weights, so its first steps spend themselves untangling a random map, and groups that
end up on the wrong side of each other stay there. Here the encoder is first trained for a few
cheap steps to regress the graph's spectral layout (the two smallest non-trivial eigenvectors of
its normalised Laplacian, as scikit-learn's `spectral_embedding` finds them), scaled to a root mean square
radius of START_RADIUS, half the neighbour loss's MAP_RADIUS; then the neighbour objective
trains from there as before.

Wide tables also build their kNN graph on their top principal components (`graph_rows`).

Bounded so that it never costs much: only tables of at most SPECTRAL_ROWS rows (the eigenvectors
of a larger graph cost seconds to minutes), and the regression sees at most PRETRAIN_ROWS rows,
PRETRAIN_STEPS full-batch Adam steps in one graph call (not XLA: its compilation cost more than
the steps), while the training loop's XLA compilation runs beside it on another thread
(`start`'s `beside`). A graph in pieces (well-separated groups) gets each piece's own layout,
placed apart (`spectral_layout`): the whole graph's eigenvectors would put each piece on one
point, and an encoder trained to that stacks whole groups (issue 23's small tables). Measured
(benchmarks/README.md, "A spectral start"): on the 572 x 8 table of nine classes
trustworthiness@5 / kNN accuracy 0.976 / 0.753 (seeds 1-2, mean) against 0.958 / 0.701 from
random weights (UMAP 0.963 / 0.796).
"""

import threading
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from reducer.engine.tf_setup import keras, tf

SPECTRAL_ROWS = 20_000  # larger tables start from random weights (issue 22's tables are left as they were)
PRETRAIN_ROWS = 1024  # the regression's rows: a fixed-seed sample of at most this many (digits, at
# load 11: 2.6 s for 1,024 rows, 7-8 s for all 1,797; 0.18 of the layout's variance of 25 left on all rows)
PRETRAIN_STEPS = 300
PRETRAIN_RATE = 0.01
START_RADIUS = 5.0  # the layout's root mean square distance from the origin (MAP_RADIUS is 10)
# Wide tables (more than WIDE_COLUMNS columns, at most SPECTRAL_ROWS rows) build their kNN graph
# on their top GRAPH_COMPONENTS principal components: in hundreds of columns of which most are
# noise, the nearest rows are mostly the noise's (the 189 x 500 table of benchmarks/quality.py,
# 460 columns of noise: 10-NN accuracy 0.48 in all 500 columns, 0.61 on 20 components, 0.54 on
# 50), and the map follows its graph (trustworthiness@5 / kNN accuracy, seeds 1-2: 0.712 / 0.569
# on 20 components, 0.581 / 0.286 on 50, 0.601 / 0.230 on all 500; UMAP 0.70 / 0.38).
WIDE_COLUMNS = 100
GRAPH_COMPONENTS = 20
# A graph in pieces: each piece's layout spans PIECE_SHARE x the distance to the nearest other
# piece (root mean square radius); pieces of at most PIECE_ROWS rows are laid out by projection.
PIECE_SHARE = 0.25
PIECE_ROWS = 10
FAR_PIECES = 3.0  # centres further than this x the median nearest distance are brought in (bring_in_far_pieces)
SHIFT_INVERT_ROWS = 2000  # larger graphs' eigenvectors by LOBPCG (spectral_embedding)


def graph_rows(x: np.ndarray) -> Optional[np.ndarray]:
    """The rows the kNN graph of a wide table is built on: `x` projected on its top
    GRAPH_COMPONENTS principal components (float32); None for a table this rule leaves alone."""
    rows, columns = x.shape
    if columns <= WIDE_COLUMNS or rows > SPECTRAL_ROWS or rows <= GRAPH_COMPONENTS:
        return None
    centred = np.asarray(x, dtype=np.float64) - x.mean(axis=0, dtype=np.float64)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    return (centred @ axes[:GRAPH_COMPONENTS].T).astype(np.float32)


def spectral_layout(graph: Any, dims: int, seed: int, x: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
    """rows x dims: the spectral layout of the graph, centred and scaled to a root mean square
    radius of START_RADIUS; None when the graph is too small to have one, or is in pieces and
    `x` (the rows the graph joins) is not given.

    A graph in pieces (groups with no edge between them) gets UMAP's layout of pieces: each
    piece's own spectral layout (a piece of at most PIECE_ROWS rows: its rows' projection on the
    table's top principal axes), scaled to a root mean square radius of PIECE_SHARE x the
    distance to the nearest other piece, around its centre, the centres placed by their own
    principal components. The eigenvectors of the whole graph would put each piece on one point,
    and an encoder trained to that stacks whole groups (issue 23's small tables)."""
    import scipy.sparse
    from scipy.sparse.csgraph import connected_components

    rows = graph.rows
    if rows <= dims + 1:
        return None
    adjacency = scipy.sparse.csr_matrix((graph.weights.astype(np.float64), graph.indices, graph.indptr),
                                        shape=(rows, rows))
    pieces, piece_of = connected_components(adjacency, directed=False)
    if pieces == 1:
        layout = spectral_embedding(adjacency, dims, seed)
    elif x is None:
        return None
    else:
        layout = _layout_of_pieces(adjacency, np.asarray(x, dtype=np.float64), piece_of, pieces, dims, seed)
    layout = layout - layout.mean(axis=0)
    radius = float(np.sqrt(np.mean(np.sum(layout ** 2, axis=1))))
    if not np.isfinite(radius) or radius <= 0:
        return None
    return (layout * (START_RADIUS / radius)).astype(np.float32)


def spectral_embedding(adjacency: Any, dims: int, seed: int) -> np.ndarray:
    """rows x dims: the eigenvectors of the connected graph's normalised Laplacian with the
    smallest non-trivial eigenvalues, each divided by the square root of its row's degree, signs
    fixed by their largest entry: scikit-learn's `spectral_embedding(adjacency, n_components=dims,
    random_state=seed, drop_first=True)` with SciPy alone, whose import a small job need not wait
    for (scikit-learn's cost it half a second before training could start; the quality metrics
    import it beside training). Up to SHIFT_INVERT_ROWS rows ARPACK in shift-invert mode from the
    same start vector (scikit-learn's default solver), above them LOBPCG from the same start as
    scikit-learn's `eigen_solver="lobpcg"`: shift-invert factorises the Laplacian, and on some
    graphs of 10,000 rows the factors filled 62 million entries (a minute of CPU and gigabytes,
    in a C call no signal interrupts; 20,000 rows ran past 30 minutes), where LOBPCG took 0.1 s."""
    from scipy.sparse.csgraph import laplacian

    rows = adjacency.shape[0]
    wanted = dims + 1  # the first, constant one is dropped
    normalised, degree_root = laplacian(adjacency, normed=True, return_diag=True)
    normalised = normalised.tocoo()
    normalised.data[normalised.row == normalised.col] = 1.0
    if rows <= SHIFT_INVERT_ROWS:
        from scipy.sparse.linalg import eigsh

        start = np.random.RandomState(seed).uniform(-1, 1, rows)
        _, vectors = eigsh(normalised.tocsr(), k=wanted, sigma=-1e-5, which="LM", tol=0, v0=start)
    else:
        import warnings

        from scipy.sparse.linalg import lobpcg

        guess = np.random.RandomState(seed).standard_normal(size=(rows, wanted))
        guess[:, 0] = degree_root
        with warnings.catch_warnings():  # short of its tolerance it still gives a usable start
            warnings.simplefilter("ignore")
            _, vectors = lobpcg(normalised.tocsr(), guess, M=None, tol=1e-5, largest=False, maxiter=2000)
    embedding = vectors.T[:wanted] / degree_root
    largest = np.argmax(np.abs(embedding), axis=1)
    embedding *= np.sign(embedding[np.arange(wanted), largest])[:, None]
    return embedding[1:wanted].T


def _principal_axes(x: np.ndarray, dims: int) -> np.ndarray:
    """dims x columns: the top principal axes of the rows `x`, zero rows where it has fewer."""
    centred = x - x.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    found = axes[:dims]
    return np.vstack([found, np.zeros((dims - len(found), x.shape[1]))]) if len(found) < dims else found


def bring_in_far_pieces(placed: np.ndarray) -> np.ndarray:
    """The pieces' centres with the far ones brought in: a centre more than FAR_PIECES x the
    pieces' median nearest distance from their median centre keeps its direction, its
    distance beyond that grown by its logarithm only. Without it twenty rows 1,000 away beside
    300 in three groups made the layout so wide that the near groups' pieces started as dots
    (0.1-0.8% of its extent; 1.0-5.9% with it), and the map of 2,000 such rows kept them so."""
    if len(placed) < 3:
        return placed
    apart = np.sqrt(np.sum((placed[:, None, :] - placed[None, :, :]) ** 2, axis=2))
    np.fill_diagonal(apart, np.inf)
    unit = float(np.median(apart.min(axis=1)))
    if not np.isfinite(unit) or unit <= 0:
        return placed
    middle = np.median(placed, axis=0)
    offset = placed - middle
    distance = np.sqrt(np.sum(offset ** 2, axis=1))
    bound = FAR_PIECES * unit
    far = distance > bound
    if not far.any():
        return placed
    scale = np.ones_like(distance)
    scale[far] = bound * (1.0 + np.log(distance[far] / bound)) / distance[far]
    return middle + offset * scale[:, None]


def _layout_of_pieces(adjacency: Any, x: np.ndarray, piece_of: np.ndarray, pieces: int, dims: int,
                      seed: int) -> np.ndarray:
    """spectral_layout's layout of a graph in pieces (before its final scaling)."""
    centres = np.stack([x[piece_of == k].mean(axis=0) for k in range(pieces)])
    placed = (centres - centres.mean(axis=0)) @ _principal_axes(centres, dims).T
    placed = bring_in_far_pieces(placed)
    apart = np.sqrt(np.sum((placed[:, None, :] - placed[None, :, :]) ** 2, axis=2))
    np.fill_diagonal(apart, np.inf)
    nearest = apart.min(axis=1)
    finite = nearest[np.isfinite(nearest) & (nearest > 0)]
    nearest = np.where(np.isfinite(nearest) & (nearest > 0), nearest, finite.min() if len(finite) else 1.0)
    axes = _principal_axes(x, dims)
    layout = np.zeros((len(x), dims))
    for k in range(pieces):
        members = np.flatnonzero(piece_of == k)
        if len(members) > PIECE_ROWS:
            piece = spectral_embedding(adjacency[members][:, members], dims, seed)
        else:
            piece = x[members] @ axes.T
        piece = piece - piece.mean(axis=0)
        radius = float(np.sqrt(np.mean(np.sum(piece ** 2, axis=1))))
        layout[members] = placed[k] + (piece * (PIECE_SHARE * nearest[k] / radius) if radius > 0 else 0.0)
    return layout


def pretrain(encoder: Any, x: np.ndarray, layout: np.ndarray, seed: int) -> float:
    """Train `encoder` in place to map rows of `x` to `layout` (mean squared error, full-batch
    Adam on a fixed-seed sample of at most PRETRAIN_ROWS rows); returns the final error."""
    rows = len(x)
    chosen = np.sort(np.random.default_rng(seed).choice(rows, PRETRAIN_ROWS, replace=False)) \
        if rows > PRETRAIN_ROWS else np.arange(rows)
    inputs = tf.constant(np.asarray(x[chosen], dtype=np.float32))
    targets = tf.constant(layout[chosen])
    optimizer = keras.optimizers.Adam(learning_rate=PRETRAIN_RATE)
    variables = list(encoder.trainable_variables)
    optimizer.build(variables)

    # A plain graph, not XLA: compiling this loop with XLA cost 2-2.5 s of a digits run, the whole
    # loop run op by op costs about 0.5 s of tracing and 1-3 ms a step (benchmarks/README.md).
    @tf.function(autograph=False)
    def run() -> Any:
        def body(s: Any, loss: Any) -> Any:
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(encoder(inputs, training=True) - targets))
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return s + 1, loss

        return tf.while_loop(lambda s, loss: s < PRETRAIN_STEPS, body, (tf.constant(0), tf.constant(0.0)))[1]

    return float(run().numpy())


def start(encoder: Any, x: np.ndarray, graph: Any, seed: int,
          beside: Optional[Callable[[], None]] = None) -> Dict[str, Any]:
    """Start `encoder` from the graph's spectral layout where this module's bounds allow; the
    manifest's note of what happened: {"layout": "spectral", "rows", "steps", "mse"} or
    {"layout": "random weights", "reason": ...}.

    beside(): work that does not touch the encoder's weights, run on another thread during the
    spectral layout and the regression (the training loop's XLA compilation: TensorFlow leaves
    Python's lock while it compiles or runs a graph, so on two cores the two take the time of
    the longer). Its exception is raised here once the regression is done, as if the caller had
    run it itself (a cached program TensorFlow cannot use must reach runner.py's handler,
    xla_cache.py); it runs even where no layout follows."""
    if graph.rows > SPECTRAL_ROWS:
        return {"layout": "random weights", "reason": f"more than {SPECTRAL_ROWS:,} rows"}
    dims = int(encoder.output_shape[-1])
    # beside() starts first: the layout (SciPy's import and eigsh, 0.1-0.2 s on digits) runs
    # beside the compilation too, rather than before it on a core of two with the other idle.
    worker: Optional[threading.Thread] = None
    failed: List[Exception] = []
    if beside is not None:
        def keeping_its_failure() -> None:
            try:
                beside()
            except Exception as exc:  # raised on this thread below
                failed.append(exc)

        worker = threading.Thread(target=keeping_its_failure, name="reducer-beside-start")
        worker.start()
    try:
        layout = spectral_layout(graph, dims, seed, x)
        mse = None if layout is None else pretrain(encoder, x, layout, seed)
    finally:
        if worker is not None:
            worker.join()
    if failed:
        raise failed[0]
    if layout is None or mse is None:
        return {"layout": "random weights", "reason": "the neighbour graph is too small for a spectral layout"}
    return {"layout": "spectral", "rows": int(min(len(x), PRETRAIN_ROWS)), "steps": PRETRAIN_STEPS,
            "radius": START_RADIUS, "mse": mse}
