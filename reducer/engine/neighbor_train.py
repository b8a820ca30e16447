"""The training engine for `objective = "neighbors"`: a UMAP-style loss on the encoder's codes,
compiled with XLA so that a whole chunk of steps is one call.

Each step takes `batch_size` rows, each row chosen in proportion to its total edge weight W
(as often as UMAP's edge sampling moves it), and, for each, `k` of its graph edges
(n_neighbors - 1) drawn in proportion to their weights, as UMAP samples its edges (an edge of
weight w is drawn w / W times as often as a row's edges of total weight W, by systematic
sampling along the row's cumulative weights, so an edge is drawn about k w / W times per
choice of its row, never padded to the widest row):
- attraction: -log q_ij along each drawn edge, weighted W_mean / k (W_mean: the mean of the
  rows' W), so that the step's expected pull is sum_ij w_ij (-log q_ij) / rows; q = 1 / (1 +
  a d^2b) (UMAP's curve; a and b come from `min_dist`);
- repulsion: -log(1 - q) from `negative_samples` random rows per row, weighted so that each
  row feels REPULSION_PER_WEIGHT x its total edge weight of repulsion, UMAP's balance. In a
  table with rows equal in every column (copy_numbers: to a millionth of the column's spread),
  a negative equal to the row pushes nothing: the encoder cannot draw copies apart, and in a
  table half of one row's copies their pushes on each other made the loss 58 where it is 3.5
  and trustworthiness 0.74 where it is 0.84 (issue 23, twelfth session; UMAP skips a negative
  at distance 0 likewise).
  Choosing rows by weight rather than weighting uniformly chosen rows gives the same expected
  loss with every row's term on one scale: a hub row of the symmetrised graph (W in the
  hundreds on 100-column tables, where a few rows are everyone's neighbour) no longer swings
  a whole step's gradient when it is chosen;
- plus `reconstruction_weight` x the decoder's mean squared error on the step's rows, a column
  whose spread a few far values set (model.far_valued_columns) rebuilt as the robust input
  squashes it: rebuilt as it is, 20 rows at +1,000 beside 2,000 in three groups made the error
  the far rows' alone (10 standard deviations out, the near rows within 0.2), and its swings
  threw the loss up 3-12x within an epoch, never to come back, on 4 of 6 seeds (a near group
  drawn as a dot on 3; issue 23, eleventh session);
- plus a penalty that keeps the codes' root mean square distance from the origin within
  MAP_RADIUS, so the map's scale stays bounded (issue 23);
- on a warm night, plus an `Anchor`: strength x each shared row's squared distance from where
  the published map had it, relative to that map's spread (issue 21), so the map can train on
  tonight's rows without leaving last night's places.
A step's cost is batch x (k + negative_samples) pairs whatever the degrees: a hub with
thousands of edges costs its k draws, and the graph's memory is its edges (CSR).

Only the chosen rows move: their neighbours' and negatives' positions are read from a buffer
of every row's code, computed at the start of each compiled call (every `STEPS_PER_CALL`
steps) and kept fresh by writing each step's new codes of the chosen rows into it. That keeps
a step to one small forward and backward pass. Random rows come from an integer hash of
(seed, step, slot), which is cheap inside XLA and makes a run bit-for-bit repeatable with its
seed. Adam (beta_1 = BETA_1, `FlatAdam`: Keras's arithmetic over all variables at once), its
learning rate falling linearly from `learning_rate` to 0.
"""

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from reducer import stopping
from reducer.config import ModelConfig, TrainingConfig
from reducer.defaults import BIG_ROWS
from reducer.errors import TrainingError
from reducer.engine.tf_setup import keras, tf
from reducer.engine import model as model_lib
from reducer.engine.train import History

if TYPE_CHECKING:
    from reducer.engine.neighbors import Graph, RowSource

STEPS_PER_CALL = 1000  # the host reports progress between calls
# Tables normalised this way train a standardised encoder (train's `standardise`): z-scored ones
# are already, and a dataset's fixed scale (the digits' pixels / 16) is measured as it is.
UNCENTRED = ("minmax", "none")
# Repulsion per unit of a row's edge weight. UMAP draws 5 negatives per sampled edge for the
# edge's head, but each sampled edge pulls both of its ends, so a row feels 2 units of pull per
# 5 of push; here a row is pulled once per unit of weight when it is chosen: 5 / 2 = 2.5.
REPULSION_PER_WEIGHT = 2.5
# Adam's first-moment decay, below Keras's 0.9: the targets (the code buffer) move every step,
# and less momentum overshoots them less (digits, 5 seeds: trustworthiness 0.9862 vs 0.9845).
BETA_1 = 0.7
REPULSION_FLOOR = 1e-3  # keeps -log(1 - q) finite when a negative lands on the row itself
DISTANCE_FLOOR = 1e-6  # keeps the gradient of d^2b finite at d = 0
# The step's codes are kept within a root mean square distance of MAP_RADIUS from the origin by
# a penalty, RADIUS_WEIGHT x max(0, mean |z|^2 - MAP_RADIUS^2) (issue 23). Without it, groups with
# no edges between them were pushed apart for as long as training lasted (Adam takes full-size
# steps along a faint but steady gradient): a 60-row table of three groups ended at coordinates
# in the thousands, each group looking like one point. Its gradient pulls every code towards the
# origin in proportion to its distance, so the whole map shrinks alike (a bound on each code's
# own distance squeezed the groups pressed against it). UMAP's maps of such tables span +-15-20.
MAP_RADIUS = 10.0
RADIUS_WEIGHT = 1.0
# Tables of more than defaults.BIG_ROWS rows (issue 22): each compiled call fills the code buffer
# ENCODE_ROWS rows at a time (None: all at once, every row's hidden activations alive together:
# 1 GB for 1,000,000 rows through layers of 128). The same codes either way.
ENCODE_ROWS: Optional[int] = 16_384


@dataclass(frozen=True)
class Anchor:
    """Where a warm start's rows were on the published map, in the encoder's own frame (the
    published encoder's codes, before its alignment), and how much each is held there: a row
    present last night weighs 1, a new row 0 (it goes where tonight's training puts it). The
    term is strength x weight x |z - code|^2 / spread^2, spread being the published codes' RMS
    distance from their centre, so its pull does not depend on the map's scale."""

    codes: np.ndarray  # rows x latent, float32
    weights: np.ndarray  # rows, float32
    strength: float

    def spread2(self) -> float:
        held = self.weights > 0
        if not held.any():
            return 1.0
        codes = self.codes[held].astype(np.float64)
        value = float(((codes - codes.mean(axis=0)) ** 2).sum(axis=1).mean())
        return value if value > 0 else 1.0


class FlatAdam:
    """Keras's Adam (the same arithmetic, element by element: the same weights to the bit) over
    every trained variable at once: the gradients joined into one vector, one moment vector
    each, one update split back onto the variables. The compiled step then has a few kernels for
    the moments and the update instead of three per variable (twelve with the decoder), and XLA
    compiles it faster (digits: 1.5-1.6 CPU s against 1.7-1.8; the steps take as long)."""

    def __init__(self, variables: List[Any], learning_rate: Any, beta_1: float, beta_2: float = 0.999,
                 epsilon: float = 1e-7) -> None:
        self.variables = list(variables)
        self.sizes = [int(np.prod(v.shape)) for v in self.variables]
        self.learning_rate, self.beta_1, self.beta_2, self.epsilon = learning_rate, beta_1, beta_2, epsilon
        total = sum(self.sizes)
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
        self.momentum = tf.Variable(tf.zeros((total,)), trainable=False, name="momentum")
        self.velocity = tf.Variable(tf.zeros((total,)), trainable=False, name="velocity")

    def apply(self, gradients: List[Any]) -> None:
        gradient = tf.concat([tf.reshape(g, (-1,)) for g in gradients], axis=0)
        rate = tf.cast(self.learning_rate(self.iterations), tf.float32)
        step = tf.cast(self.iterations + 1, tf.float32)
        alpha = rate * tf.sqrt(1 - tf.pow(tf.constant(self.beta_2, tf.float32), step)) / (
            1 - tf.pow(tf.constant(self.beta_1, tf.float32), step))
        self.momentum.assign_add((gradient - self.momentum) * (1 - self.beta_1))
        self.velocity.assign_add((tf.square(gradient) - self.velocity) * (1 - self.beta_2))
        update = (self.momentum * alpha) / (tf.sqrt(self.velocity) + self.epsilon)
        for variable, part in zip(self.variables, tf.split(update, self.sizes)):
            variable.assign_sub(tf.reshape(part, variable.shape))
        self.iterations.assign_add(1)


def _hash(values: Any) -> Any:
    """lowbias32 (Chris Wellons): a well-mixed 32-bit integer hash, elementwise on uint32."""
    values = tf.bitwise.bitwise_xor(values, tf.bitwise.right_shift(values, 16))
    values = values * tf.constant(0x7FEB352D, tf.uint32)
    values = tf.bitwise.bitwise_xor(values, tf.bitwise.right_shift(values, 15))
    values = values * tf.constant(0x846CA68B, tf.uint32)
    return tf.bitwise.bitwise_xor(values, tf.bitwise.right_shift(values, 16))


def _random_bits(seed: int, step: Any, shape: Tuple[int, ...]) -> Any:
    """uint32 hashes, a pure function of (seed, step, slot)."""
    slots = tf.constant(np.arange(math.prod(shape), dtype=np.uint32).reshape(shape))
    key = _hash(tf.cast(step, tf.uint32) * tf.constant(0x9E3779B1, tf.uint32) + tf.constant(seed, tf.uint32))
    return _hash(slots ^ key)


def _random_rows(seed: int, step: Any, shape: Tuple[int, ...], rows: int) -> Any:
    """Row indices in [0, rows), a pure function of (seed, step, slot)."""
    return tf.cast(_random_bits(seed, step, shape) % tf.constant(rows, tf.uint32), tf.int32)


def _uniform(seed: int, step: Any, shape: Tuple[int, ...]) -> Any:
    """Numbers in [0, 1), a pure function of (seed, step, slot): the hash's top 24 bits."""
    bits = tf.bitwise.right_shift(_random_bits(seed, step, shape), 8)
    return tf.cast(bits, tf.float32) * tf.constant(1.0 / (1 << 24), tf.float32)


def edge_tables(graph: "Graph") -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """What the compiled step reads of the graph: row pointers (int32), neighbours (int32), each
    edge's cumulative share of its row's weight (float32, the row's last edge exactly 1), each
    row's total weight, and how many halvings find an edge in the widest row."""
    if graph.edges >= 2 ** 31:
        raise TrainingError(f"the neighbour graph has {graph.edges:,} edges; at most 2^31 are supported")
    degree = graph.degree
    totals = graph.row_weights()
    share = np.empty(graph.edges, dtype=np.float32)
    block = 1 << 16
    for first in range(0, graph.rows, block):  # float64 scratch for a block of rows at a time
        last = min(first + block, graph.rows)
        lo, hi = int(graph.indptr[first]), int(graph.indptr[last])
        counts = degree[first:last]
        cumulative = np.cumsum(graph.weights[lo:hi], dtype=np.float64)
        row_start = np.repeat(graph.indptr[first:last] - lo, counts)  # each edge's row's first edge
        before = np.concatenate([[0.0], cumulative])[row_start]
        row_total = np.repeat(totals[first:last], counts)
        share[lo:hi] = (cumulative - before) / np.where(row_total > 0, row_total, 1.0)
    share[graph.indptr[1:][degree > 0] - 1] = 1.0  # each row's last edge: exactly 1
    halvings = max(1, int(np.ceil(np.log2(max(2, int(degree.max()) if len(degree) else 2)))) + 1)
    return (graph.indptr.astype(np.int32), graph.indices.astype(np.int32), share.astype(np.float32),
            totals.astype(np.float32), halvings)


def row_bounds(totals: np.ndarray) -> np.ndarray:
    """int64 cumulative bounds of each row's share of the total edge weight, in units of 2^-32:
    32 random bits below bound[i] and not below bound[i - 1] choose row i; the last is 2^32."""
    cumulative = np.cumsum(totals, dtype=np.float64)
    bounds = np.floor(cumulative / cumulative[-1] * 2.0 ** 32).astype(np.int64)
    bounds[-1] = 1 << 32
    return bounds


def weighted_rows(seed: int, step: Any, bounds: Any, count: int) -> Any:
    """`count` row numbers, a pure function of (seed, step, slot), each row drawn in proportion to
    its share of `bounds` (row_bounds'): the first row whose bound exceeds 32 random bits, found
    by halving the range of rows."""
    rows = int(bounds.shape[0])
    u = tf.cast(_random_bits(seed, step, (count,)), tf.int64)
    return _first_above(bounds, u, tf.zeros((count,), tf.int32), tf.fill((count,), rows - 1),
                        max(1, int(np.ceil(np.log2(max(2, rows)))) + 1))


def _first_above(table: Any, u: Any, low: Any, high: Any, halvings: int) -> Any:
    """Elementwise, the first position in low .. high whose `table` value exceeds u (high where
    none does), by halving the range `halvings` times. An XLA while loop rather than unrolled
    halvings: the step's program is smaller and compiles faster (digits: about 0.4 s less
    compilation, the same steps per second), with the same results."""
    def halve(i: Any, low: Any, high: Any) -> Tuple[Any, Any, Any]:
        middle = (low + high) // 2
        right = tf.gather(table, middle) <= u
        return i + 1, tf.where(right, tf.minimum(middle + 1, high), low), tf.where(right, high, middle)

    return tf.while_loop(lambda i, low, high: i < halvings, halve, (tf.constant(0), low, high))[1]


def _runner(encoder: Any, decoder: Any, optimizer: "FlatAdam", rows: int, batch: int, draws: int, halvings: int,
            negatives: int, a: float, b: float, reconstruction_weight: float, seed: int, mean_weight: float,
            anchor_strength: float = 0.0, encode_rows: Optional[int] = None,
            squash: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = None,
            copies: Optional[np.ndarray] = None) -> Any:
    """The compiled loop `run`. encode_rows: the code buffer is filled this many rows at a time
    (default all at once). squash: model.far_valued_columns, which the decoder rebuilds as the
    encoder sees them (see train). copies: copy_numbers(x)."""
    variables = list(encoder.trainable_variables)
    if reconstruction_weight > 0:
        variables += decoder.trainable_variables
    seed = int(seed) & 0xFFFFFFFF
    copy_of = None if copies is None else tf.constant(copies)
    offsets = tf.constant((np.arange(draws, dtype=np.float32) / draws)[None, :])  # systematic sampling

    def curve(d2: Any) -> Any:
        """a d^2b; exp(b log(.)) because XLA's pow is three times slower on CPU."""
        return a * tf.exp(b * tf.math.log(d2 + DISTANCE_FLOOR))

    def draw_edges(indptr: Any, share: Any, chosen: Any, number: Any) -> Any:
        """batch x draws edge numbers: each row's edges in proportion to their weights (the first
        edge whose cumulative share exceeds u, by halving the row's range `halvings` times)."""
        u = offsets + _uniform(seed, 3 * number + 2, (batch, 1)) / draws  # batch x draws, in [0, 1)
        low = tf.broadcast_to(tf.gather(indptr, chosen)[:, None], u.shape)
        high = tf.maximum(tf.broadcast_to(tf.gather(indptr, chosen + 1)[:, None] - 1, u.shape), low)
        return _first_above(share, u, low, high, halvings)

    def step(x: Any, target: Any, indptr: Any, neighbours: Any, share: Any, bounds: Any, codes: Any,
             number: Any, held: Any, held_weights: Any) -> Tuple[Any, Any]:
        chosen = weighted_rows(seed, 3 * number, bounds, batch)
        others = _random_rows(seed, 3 * number + 1, (batch, negatives), rows)
        drawn = tf.gather(neighbours, draw_edges(indptr, share, chosen, number))  # batch x draws
        # One pass over every pair: the row's drawn neighbours, then its random negatives.
        pairs = tf.concat([drawn, others], axis=1)  # batch x (draws + negatives)
        # Each draw stands for 1/draws of the row's weight; the rows came in proportion to their
        # weights, so each row's terms count the mean row weight.
        pull = mean_weight / draws
        push = mean_weight * (REPULSION_PER_WEIGHT / negatives)
        rows_in = tf.gather(x, chosen)
        rows_out = tf.gather(target, chosen)
        if squash is not None:
            centre, reach, squashed = (tf.constant(v[None, :], dtype) for v, dtype in
                                       zip(squash, (tf.float32, tf.float32, tf.bool)))
            rows_out = tf.where(squashed, centre + reach * tf.tanh((rows_out - centre) / reach), rows_out)
        with tf.GradientTape() as tape:
            z = encoder(rows_in, training=True)
            # Gathering each column of scalars is faster in XLA than gathering rows of codes.
            d2 = sum(tf.square(z[:, None, axis] - tf.gather(column, pairs))
                     for axis, column in enumerate(tf.unstack(codes, axis=1)))
            u = curve(d2)
            # -log q = log(1 + u) pulls along edges; -log(1 - q) = log((1 + u) / u) pushes apart.
            near, far = u[:, :draws], u[:, draws:]
            apart = tf.math.log((1.0 + far) / (far + REPULSION_FLOOR))
            if copies is not None:  # a copy of the row (or the row itself) pushes nothing
                apart = tf.where(tf.gather(copy_of, others) == tf.gather(copy_of, chosen)[:, None], 0.0, apart)
            apart = tf.reduce_sum(apart, axis=1)
            loss = (pull * tf.reduce_sum(tf.math.log1p(near)) + push * tf.reduce_sum(apart)) / batch
            loss += RADIUS_WEIGHT * tf.nn.relu(tf.reduce_mean(tf.reduce_sum(tf.square(z), axis=1)) - MAP_RADIUS ** 2)
            if reconstruction_weight > 0:
                loss += reconstruction_weight * tf.reduce_mean(tf.square(decoder(z, training=True) - rows_out))
            if anchor_strength > 0:  # held_weights: 1 / spread^2 shared, 0 new
                moved = tf.reduce_sum(tf.square(z - tf.gather(held, chosen)), axis=1)
                loss += anchor_strength * tf.reduce_mean(tf.gather(held_weights, chosen) * moved)
        optimizer.apply(tape.gradient(loss, variables))
        # The chosen rows' codes are fresh: keep them, so the buffer goes stale more slowly.
        codes = tf.tensor_scatter_nd_update(codes, chosen[:, None], z)
        return loss, codes

    def encode(x: Any) -> Any:
        """Every row's code: at once, or `encode_rows` at a time (the last block ends at the last
        row), so that only a block's hidden activations are alive together."""
        if encode_rows is None or encode_rows >= rows:
            return encoder(x, training=False)
        block = int(encode_rows)
        columns = int(x.shape[1])

        def fill(i: Any, codes: Any) -> Tuple[Any, Any]:
            first = tf.minimum(i * block, rows - block)
            z = encoder(tf.slice(x, tf.stack([first, 0]), [block, columns]), training=False)
            return i + 1, tf.tensor_scatter_nd_update(codes, (first + tf.range(block))[:, None], z)

        _, codes = tf.while_loop(lambda i, codes: i < math.ceil(rows / block), fill,
                                 (tf.constant(0), tf.zeros((rows, int(encoder.outputs[0].shape[-1])))))
        return codes

    # autograph=False: converting this code to graph form took longer than compiling it.
    @tf.function(jit_compile=True, autograph=False)
    def run(x: Any, target: Any, indptr: Any, neighbours: Any, share: Any, bounds: Any, start: Any,
            steps: Any, held: Any, held_weights: Any) -> Any:
        """Steps start .. start + steps - 1; their losses (the first `steps` of STEPS_PER_CALL)."""

        def body(s: Any, codes: Any, losses: Any) -> Tuple[Any, Any, Any]:
            loss, codes = step(x, target, indptr, neighbours, share, bounds, codes, start + s, held, held_weights)
            return s + 1, codes, losses.write(s, loss)

        # A while loop on a runtime bound: XLA compiles it once for every value of `steps`.
        _, _, losses = tf.while_loop(
            lambda s, codes, losses: s < steps, body,
            (tf.constant(0), encode(x), tf.TensorArray(tf.float32, size=STEPS_PER_CALL)))
        return losses.stack()

    return run


# Rows within this share of a column's standard deviation of each other in every column are
# copies: the encoder cannot draw them apart (float32 holds about 7 digits).
COPY_RESOLUTION = 1e-6


def copy_numbers(x: np.ndarray) -> Optional[np.ndarray]:
    """Per row, a number (int32) that its copies share: the rows equal to it in every column to
    COPY_RESOLUTION of the column's standard deviation (rows at 0 +- 1e-9 too); None where no two
    rows are copies. A hash of each row's values on that grid, a column at a time (no copy of the
    table; two different rows share a 64-bit hash about once in 10^7 tables of 10^6 rows)."""
    multipliers = np.asarray(np.random.default_rng(0).integers(1, 2 ** 63, x.shape[1], dtype=np.uint64), np.uint64)
    multipliers |= np.uint64(1)  # odd: no bit of a column is lost
    hashed = np.zeros(len(x), np.uint64)
    for column in range(x.shape[1]):
        values = np.asarray(x[:, column], dtype=np.float64)
        spread = values.std()
        steps = np.rint((values - values.mean()) / (spread if spread > 0 else 1.0) / COPY_RESOLUTION)
        bits = steps.astype(np.int64).view(np.uint64)
        hashed = hashed * np.uint64(0x9E3779B97F4A7C15) + bits * multipliers[column]
    distinct, numbers = np.unique(hashed, return_inverse=True)
    return None if len(distinct) == len(x) else numbers.astype(np.int32)


ALIGNMENT = 64  # bytes: TensorFlow takes a numpy array this aligned without copying it (dlpack)


def aligned_empty(rows: int, columns: int) -> np.ndarray:
    """An uninitialised float32 rows x columns array whose data starts on an ALIGNMENT boundary."""
    size = rows * columns * 4
    buffer = np.empty(size + ALIGNMENT, dtype=np.uint8)
    offset = (-buffer.ctypes.data) % ALIGNMENT
    return buffer[offset:offset + size].view(np.float32).reshape(rows, columns)


def rows_in_memory(source: "RowSource") -> np.ndarray:
    """Every normalised row of a neighbors.RowSource in one aligned float32 array, filled a block
    at a time: a table in the float32 cache is read once, and `as_tensor` hands it to TensorFlow
    without a second copy."""
    from reducer.engine.neighbors import BLOCK_ROWS

    x = aligned_empty(source.rows, source.columns)
    for start in range(0, source.rows, BLOCK_ROWS):
        block = source.block(start, BLOCK_ROWS)
        x[start:start + len(block)] = block
    return x


def as_tensor(x: np.ndarray) -> Any:
    """A float32 tensor of `x` that shares its memory when x is ALIGNMENT-aligned and contiguous
    (tf.convert_to_tensor copies a large array, briefly twice); an aligned copy otherwise."""
    x = np.asarray(x)
    if not (x.dtype == np.float32 and x.flags.c_contiguous and x.ctypes.data % ALIGNMENT == 0):
        copy = aligned_empty(*x.shape)
        copy[:] = x
        x = copy
    return tf.experimental.dlpack.from_dlpack(x.__dlpack__())


def _first_dense(encoder: Any) -> Any:
    return next(layer for layer in encoder.layers if isinstance(layer, keras.layers.Dense))


def standardisation(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(mean, spread) of each column: the encoder trains on (x - mean) / spread."""
    mean = x.mean(axis=0, dtype=np.float64)
    spread = x.std(axis=0, dtype=np.float64)
    spread[~(spread > 0)] = 1.0
    return mean, spread


def fold_standardisation(encoder: Any, mean: np.ndarray, spread: np.ndarray, into: str) -> None:
    """Rewrite the encoder's first layer so that it takes standardised rows (into="standardised")
    or the table's rows again (into="table") and computes the same function: kernel W and bias b
    on (x - mean) / spread equal W / spread and b - (mean / spread) @ W on x."""
    layer = _first_dense(encoder)
    kernel, bias = (w.astype(np.float64) for w in layer.get_weights())
    if into == "standardised":
        kernel, bias = kernel * spread[:, None], bias + mean @ kernel
    else:
        kernel, bias = kernel / spread[:, None], bias - (mean / spread) @ kernel
    layer.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])


def train(encoder: Any, decoder: Any, x: np.ndarray, graph: "Graph", model_config: ModelConfig,
          training_config: TrainingConfig, progress: Optional[Callable[..., None]] = None,
          standardise: bool = False, start_layout: bool = False, anchor: Optional[Anchor] = None,
          input_statistics: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = None) -> History:
    """Train `encoder` (and `decoder` when reconstruction counts) in place; returns a `History`
    of the mean loss per epoch, an epoch being ceil(rows / batch_size) steps.

    `standardise`: the encoder trains on standardised columns, folded back into its first layer
    at the end, so it still takes `x` (the decoder still reconstructs `x`). For min-max scaled
    or raw columns: every input non-negative and small, ReLU units there die under the sized
    learning rate and the map collapsed to one point (breast_cancer, a 12,000 x 40 table).

    An encoder with the robust input (model.build) needs no standardising: its first layers
    centre and scale every column; on a cold start (`start_layout`) they take their statistics
    from `x` (model.set_robust_input; `input_statistics`: model.input_statistics(x) where the
    caller has them already), on a warm one they keep the published model's.

    `start_layout`: first train the encoder to the graph's spectral layout (engine/init.py: a
    cold start; a warm start keeps the published weights); the History's `start` says what
    happened.
    `anchor`: on a warm night, holds the rows present last night near their published places.

    Raises TrainingError when the loss stops being finite.
    """
    if model_lib.has_robust_input(encoder):
        standardise = False
        if start_layout:
            model_lib.set_robust_input(encoder, x, input_statistics)
    if standardise:
        mean, spread = standardisation(x)
        fold_standardisation(encoder, mean, spread, into="standardised")
        try:
            standardised = aligned_empty(*x.shape)
            standardised[:] = (x - mean) / spread
            return _train(encoder, decoder, standardised, graph, model_config,
                          training_config, progress, target=x, start_layout=start_layout, anchor=anchor)
        finally:
            fold_standardisation(encoder, mean, spread, into="table")
    return _train(encoder, decoder, x, graph, model_config, training_config, progress, start_layout=start_layout,
                  anchor=anchor)


def _train(encoder: Any, decoder: Any, x: np.ndarray, graph: "Graph", model_config: ModelConfig,
           training_config: TrainingConfig, progress: Optional[Callable[..., None]] = None,
           target: Optional[np.ndarray] = None, start_layout: bool = False,
           anchor: Optional[Anchor] = None) -> History:
    """train()'s loop: the encoder takes `x`, the decoder reconstructs `target` (default `x`)."""

    from reducer.engine import init
    from reducer.engine.neighbors import curve_parameters

    rows = len(x)
    batch = min(training_config.batch_size, rows)
    steps_per_epoch = math.ceil(rows / batch)
    total = training_config.epochs * steps_per_epoch
    schedule = keras.optimizers.schedules.PolynomialDecay(
        training_config.learning_rate, decay_steps=total, end_learning_rate=0.0, power=1.0)
    variables = list(encoder.trainable_variables)
    if model_config.reconstruction_weight > 0:
        variables += decoder.trainable_variables
    optimizer = FlatAdam(variables, schedule, BETA_1)
    a, b = curve_parameters(model_config.min_dist)
    indptr, neighbours, share, totals, halvings = edge_tables(graph)
    mean_weight = float(np.mean(totals, dtype=np.float64))
    bounds = row_bounds(totals)
    run = _runner(encoder, decoder, optimizer, rows, batch, graph.k, halvings, training_config.negative_samples,
                  a, b, float(model_config.reconstruction_weight), training_config.seed, mean_weight,
                  anchor.strength if anchor is not None else 0.0,
                  encode_rows=ENCODE_ROWS if rows > BIG_ROWS else None,
                  squash=model_lib.far_valued_columns(encoder, x) if model_config.reconstruction_weight > 0 else None,
                  copies=copy_numbers(x))
    if anchor is not None:
        held = tf.constant(np.asarray(anchor.codes, np.float32))
        held_weights = tf.constant((np.asarray(anchor.weights, np.float64) / anchor.spread2()).astype(np.float32))
    else:  # not read by the compiled step
        held, held_weights = tf.zeros((1, model_config.latent)), tf.zeros((1,))
    x_tensor = as_tensor(x)
    target_tensor = x_tensor if target is None else as_tensor(target)
    graph_tensors = (tf.constant(indptr), tf.constant(neighbours), tf.constant(share), tf.constant(bounds))
    del indptr, neighbours, share

    def compile_loop() -> None:
        """The loop's XLA compilation, by a call of 0 steps (it changes no weight), run beside the
        start's regression (init.start's `beside`)."""
        run(x_tensor, target_tensor, *graph_tensors, tf.constant(0, tf.int32), tf.constant(0, tf.int32),
            held, held_weights)

    # Traced here, before the start traces its own function: the compiled program's name, and so
    # its entry in the persistent compile cache (xla_cache.py), depends on the order of tracing,
    # which a trace on the other thread would leave to chance (a new entry every night).
    run.get_concrete_function(x_tensor, target_tensor, *graph_tensors, tf.constant(0, tf.int32),
                              tf.constant(0, tf.int32), held, held_weights)

    began = init.start(encoder, x, graph, training_config.seed, beside=compile_loop) if start_layout else None
    step_losses: List[float] = []
    epoch_losses: List[float] = []
    while len(step_losses) < total:
        stopping.check()  # a SIGTERM or Ctrl-C held since the last call stops the run here
        start, steps = len(step_losses), min(STEPS_PER_CALL, total - len(step_losses))
        chunk = run(x_tensor, target_tensor, *graph_tensors, tf.constant(start, tf.int32),
                    tf.constant(steps, tf.int32), held, held_weights)
        chunk = chunk.numpy()[:steps]
        if not np.all(np.isfinite(chunk)):
            bad = int(np.flatnonzero(~np.isfinite(chunk))[0])
            raise TrainingError(f"training diverged: loss is {chunk[bad]} at epoch "
                                f"{(start + bad) // steps_per_epoch + 1}; try a smaller learning_rate")
        step_losses.extend(chunk.tolist())
        finished = len(step_losses) // steps_per_epoch
        epoch_losses.extend(float(np.mean(step_losses[e * steps_per_epoch:(e + 1) * steps_per_epoch]))
                            for e in range(len(epoch_losses), finished))
        if progress:
            progress(epoch_losses, len(step_losses), total)
    return History(tuple(epoch_losses), engine="reducer neighbour loop (XLA)", start=began)


def graph_of(x: "np.ndarray | RowSource", model_config: ModelConfig, seconds: Dict[str, float], seed: int = 0,
             progress: Optional[Callable[[int, int], None]] = None) -> "Graph":
    """The fuzzy kNN graph of the normalised rows `x` (an array or a neighbors.RowSource); records
    in `seconds` the time to import faiss for an approximate search (`graph_import`: paid once
    per process; the exact search is numpy's) and to build the graph (`graph`).
    progress(done, total): as the search goes."""
    started = time.time()
    from reducer.engine.neighbors import as_source, fuzzy_graph, search_method  # sets OpenMP's waiting

    source = as_source(x)
    if search_method(source.rows) == "approximate":
        import faiss  # noqa: F401

    seconds["graph_import"] = time.time() - started
    started = time.time()
    from reducer.engine import init

    # A wide table small enough to hold: the graph of its top principal components (init.graph_rows).
    projected = init.graph_rows(rows_in_memory(source)) if (
        source.columns > init.WIDE_COLUMNS and source.rows <= init.SPECTRAL_ROWS) else None
    if projected is None:
        graph = fuzzy_graph(source, model_config.n_neighbors, seed=seed, progress=progress)
    else:
        graph = fuzzy_graph(projected, model_config.n_neighbors, seed=seed, progress=progress)
        graph = dataclasses.replace(graph, method=f"{graph.method} (on the top {init.GRAPH_COMPONENTS} "
                                                  f"of {source.columns} principal components)")
    seconds["graph"] = time.time() - started
    return graph
