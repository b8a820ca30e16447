"""The training engine: the math of Keras `fit` (Adam, MSE, a fresh shuffle each epoch, a
smaller last batch), compiled with XLA so that many epochs run in one call.

`fit` spends nearly all its time on per-step Python and dispatch overhead for models this
small. Here a chunk of epochs is one compiled loop and the host only wakes up between chunks
to report progress. What makes each step cheap (see benchmarks/README.md for the numbers):

- One step body for every batch. The last, smaller batch of an epoch is padded to the batch
  size and its padding rows get weight 0, so its loss and gradients are exactly those of the
  smaller batch, and only one step is compiled.
- The optimizer state lives in the loop as plain tensors, Adam's moments as one flat vector:
  Keras' per-variable update becomes a few fused kernels. The arithmetic is Keras' own Adam
  (keras/src/optimizers/adam.py), term by term.
- A chain of Dense layers runs as matmul + bias + activation, with gradients written as
  matmuls on explicitly transposed operands. XLA then emits every matmul as its own small
  kernel instead of calling a GEMM library (~1.5 us of set-up per call at these sizes); see
  tf_setup.py for the XLA flags that allow it. Any other model runs through Keras'
  `stateless_call`, same math, slower.

The trained weights are written back into the Keras model's variables at the end.
"""

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from reducer import stopping
from reducer.config import TrainingConfig
from reducer.engine.tf_setup import keras, tf
from reducer.errors import TrainingError
from reducer.tables.table import Table

# progress(losses) after each chunk of epochs: the mean loss of every epoch so far
Progress = Callable[[Sequence[float]], None]

# Optimizer steps per compiled call: large enough to hide the per-call cost, small enough that
# the progress display moves a few times a second.
STEPS_PER_CALL = 4000


@dataclass(frozen=True)
class History:
    losses: Tuple[float, ...]  # mean loss per epoch, over every row of the epoch
    warm_start: Optional[Dict[str, Any]] = None  # the pipeline's note of a warm start, or None
    engine: str = "reducer compiled loop (XLA)"  # the loop that trained, as the manifest names it
    start: Optional[Dict[str, Any]] = None  # the neighbour objective's starting layout (engine/init.py)

    @property
    def final_loss(self) -> float:
        return self.losses[-1]


@tf.custom_gradient
def _matmul(a: Any, w: Any) -> Any:
    """a @ w whose gradients are matmuls of row-major, explicitly transposed operands: XLA's
    own small-matmul kernels take only that form (TensorFlow's gradient of MatMul contracts a
    transposed dimension, which XLA hands to a GEMM library at ~1.5 us per call)."""

    def gradient(upstream: Any) -> Tuple[Any, Any]:
        return tf.matmul(upstream, tf.transpose(w)), tf.matmul(tf.transpose(a), upstream)

    return tf.matmul(a, w), gradient


def _dense_chain(model: Any) -> Optional[List[Any]]:
    """The model's Dense layers in call order, or None when it is anything else."""
    chain: List[Any] = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            inner = _dense_chain(layer)
            if inner is None:
                return None
            chain.extend(inner)
        elif (type(layer) is keras.layers.Dense and not getattr(layer, "lora_enabled", False)
              and layer.compute_dtype == "float32" and layer.trainable):
            chain.append(layer)
        else:
            return None
    return chain


def _forward(model: Any, sample: Any) -> Callable[[List[Any], Any], Any]:
    """forward(params, rows) -> model(rows), with params in `model.trainable_variables` order."""
    variables = model.trainable_variables
    position = {id(v): i for i, v in enumerate(variables)}
    chain = _dense_chain(model)
    if chain is not None and not model.non_trainable_variables:
        try:
            plan = [(position[id(layer.kernel)], None if layer.bias is None else position[id(layer.bias)],
                     layer.activation) for layer in chain]
        except KeyError:
            plan = None
        if plan is not None and len(plan) + sum(b is not None for _, b, _ in plan) == len(variables):
            def dense_chain(params: List[Any], rows: Any) -> Any:
                h = rows
                for kernel, bias, activation in plan:
                    h = _matmul(h, params[kernel])
                    if bias is not None:
                        h = h + params[bias]
                    h = activation(h)
                return h

            # A functional model could branch; the chain must give exactly what Keras gives.
            params = [tf.convert_to_tensor(v) for v in variables]
            if np.allclose(dense_chain(params, sample).numpy(), model(sample).numpy(), rtol=1e-5, atol=1e-6):
                return dense_chain

    non_trainable = list(model.non_trainable_variables)

    def keras_call(params: List[Any], rows: Any) -> Any:
        return model.stateless_call(params, non_trainable, rows, training=True)[0]

    return keras_call


def _adam_constants(learning_rate: float) -> Tuple[float, float, float, float]:
    adam = keras.optimizers.Adam(learning_rate=learning_rate)  # Keras' defaults for the rest
    return float(learning_rate), float(adam.beta_1), float(adam.beta_2), float(adam.epsilon)


class Trainer:
    """Adam + MSE training state of one model, advanced by compiled chunks of epochs.

    run() may be called with differently sized row sets (one compilation per shape); the
    optimizer state carries over. write_weights() puts the current weights into the model.
    """

    def __init__(self, model: Any, learning_rate: float, batch_size: int) -> None:
        self.model = model
        self.batch_size = batch_size
        self.variables = list(model.trainable_variables)
        self.shapes = [tuple(v.shape) for v in self.variables]
        sizes = [math.prod(s) for s in self.shapes]
        self.offsets = np.cumsum([0] + sizes).tolist()
        self.params = [tf.convert_to_tensor(v) for v in self.variables]
        self.m = tf.zeros([sum(sizes)])
        self.v = tf.zeros([sum(sizes)])
        self.step = tf.constant(0, tf.int64)  # Adam's `iterations`
        self.constants = _adam_constants(learning_rate)
        self._forward: Optional[Callable[[List[Any], Any], Any]] = None
        self._runners: Dict[Tuple[int, int, int, int], Any] = {}

    def run(self, x: Any, orders: np.ndarray, capacity: Optional[int] = None, rows: Optional[int] = None) -> np.ndarray:
        """Train one epoch per row of `orders` (int, each a permutation of the first `rows` rows
        of x, in the order the batches take them); return each epoch's mean loss over its rows
        (numpy).

        capacity: the number of epochs the compiled call is built for (default len(orders));
        keep it fixed across calls so that a shorter last chunk does not compile again.
        rows: how many of x's rows are data (default all); x may already be padded to
        bucket_rows(rows) (train() pads it once), else it is padded here.
        """
        x = tf.convert_to_tensor(x, dtype=tf.float32)
        rows = int(rows or x.shape[0])
        columns = x.shape[1]
        bucket = bucket_rows(rows)
        if x.shape[0] != bucket:
            x = tf.pad(x[:rows], [[0, bucket - rows], [0, 0]])
        epochs = len(orders)
        capacity = max(capacity or epochs, epochs)
        batch = min(self.batch_size, rows)
        padded = np.zeros((capacity, math.ceil(bucket / batch) * batch), dtype=np.int32)  # row 0, weight 0
        padded[:epochs, :rows] = orders
        if self._forward is None:
            self._forward = _forward(self.model, x[:16])
        key = (bucket, columns, batch, capacity)
        if key not in self._runners:
            self._runners[key] = self._compile(batch)
        self.params, self.m, self.v, self.step, losses = self._runners[key](
            x, tf.constant(padded), tf.constant(epochs, tf.int32), tf.constant(rows, tf.int32),
            tf.constant(1.0 / rows, tf.float32), self.params, self.m, self.v, self.step)
        return losses.numpy()[:epochs]

    def write_weights(self) -> None:
        for variable, value in zip(self.variables, self.params):
            variable.assign(value)

    def _compile(self, batch: int) -> Any:
        forward, shapes, offsets = self._forward, self.shapes, self.offsets
        assert forward is not None, "run() sets the forward function before it compiles"
        learning_rate, beta_1, beta_2, epsilon = self.constants
        row_in_batch = tf.range(batch)

        def adam(params: List[Any], gradients: List[Any], m: Any, v: Any, step: Any) -> Tuple[List[Any], Any, Any]:
            # keras/src/optimizers/adam.py update_step, on all variables at once.
            local_step = tf.cast(step, tf.float32)
            beta_1_power = tf.pow(tf.constant(beta_1, tf.float32), local_step)
            beta_2_power = tf.pow(tf.constant(beta_2, tf.float32), local_step)
            alpha = tf.constant(learning_rate, tf.float32) * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
            gradient = tf.concat([tf.reshape(g, [-1]) for g in gradients], 0)
            m = m + (gradient - m) * (1 - beta_1)
            v = v + (tf.square(gradient) - v) * (1 - beta_2)
            change = (m * alpha) / (tf.sqrt(v) + epsilon)
            params = [p - tf.reshape(change[offsets[i]:offsets[i + 1]], shapes[i]) for i, p in enumerate(params)]
            return params, m, v

        def train_step(x: Any, order: Any, rows: Any, b: Any, params: List[Any], m: Any, v: Any,
                       step: Any) -> Tuple[List[Any], Any, Any, Any, Any]:
            rows_taken = tf.gather(x, tf.slice(order, [b * batch], [batch]))
            weight = tf.cast(b * batch + row_in_batch < rows, tf.float32)  # 0 on the padding
            count = tf.cast(tf.minimum(batch, rows - b * batch), tf.float32)
            with tf.GradientTape() as tape:
                tape.watch(params)
                reconstruction = forward(params, rows_taken)
                # Keras' MeanSquaredError: mean over columns, then sum over the batch / batch size.
                total = tf.reduce_sum(tf.reduce_mean(tf.square(rows_taken - reconstruction), axis=-1) * weight)
                loss = total / count
            gradients = tape.gradient(loss, params)
            params, m, v = adam(params, gradients, m, v, step + 1)
            return params, m, v, step + 1, total

        @tf.function(jit_compile=True, autograph=False)
        def run(x: Any, orders: Any, epochs: Any, rows: Any, inverse_rows: Any, params: List[Any], m: Any, v: Any,
                step: Any) -> Tuple[List[Any], Any, Any, Any, Any]:
            capacity = orders.shape[0]
            steps = (rows + batch - 1) // batch  # run-time, as `rows`: see bucket_rows

            def epoch(e: Any, params: List[Any], m: Any, v: Any, step: Any, losses: Any) -> Tuple[Any, ...]:
                order = tf.gather(orders, e)

                def one_batch(b: Any, params: List[Any], m: Any, v: Any, step: Any, total: Any) -> Tuple[Any, ...]:
                    params, m, v, step, batch_total = train_step(x, order, rows, b, params, m, v, step)
                    return b + 1, params, m, v, step, total + batch_total

                _, params, m, v, step, total = tf.while_loop(
                    lambda b, *_: b < steps, one_batch, (tf.constant(0), params, m, v, step, tf.constant(0.0)))
                # Keras' epoch loss: the batch losses weighted by batch size, over the epoch's rows.
                # Times 1/rows, not / rows: XLA turned the division by a constant row count into
                # this product, and the losses reported stay the same to the bit.
                epoch_loss = total * inverse_rows
                return e + 1, params, m, v, step, losses + tf.one_hot(e, capacity) * epoch_loss

            # `epochs` bounds a plain while loop (no maximum_iterations), so it is a run-time
            # value: a shorter last chunk reuses the compiled code.
            _, params, m, v, step, losses = tf.while_loop(
                lambda e, *_: e < epochs, epoch, (tf.constant(0), params, m, v, step, tf.zeros([capacity])))
            return params, m, v, step, losses

        return run


def bucket_rows(rows: int) -> int:
    """`rows` rounded up to one of 8 sizes per doubling (1920 for 1797; at most 1/8 more).

    The compiled training loop is built for the bucket and told the real row count at run time,
    so a table that grows a little from one night to the next reuses last night's compiled
    code (xla_cache.py) instead of compiling for 1-3 s. The padding rows are never trained on.
    """
    granularity = 1 << max(0, int(rows).bit_length() - 4)
    return -(-int(rows) // granularity) * granularity


def train(autoencoder: Any, x: np.ndarray, config: TrainingConfig, progress: Optional[Progress] = None) -> History:
    """Train `autoencoder` in place to reproduce `x`; returns a `History`.

    config: the job's TrainingConfig. progress(losses) is called after each chunk of epochs
    with the per-epoch losses so far. Raises TrainingError when the loss stops being finite.
    """
    rows = x.shape[0]
    trainer = Trainer(autoencoder, config.learning_rate, config.batch_size)
    # Chunks sized by the bucket, not the rows: the compiled program is then the same for
    # every row count in the bucket (see bucket_rows). The epochs and their order are not.
    steps_per_epoch = math.ceil(bucket_rows(rows) / min(config.batch_size, rows))
    chunk = max(1, min(config.epochs, STEPS_PER_CALL // steps_per_epoch))
    shuffle = np.random.default_rng(config.seed)
    x_tensor = tf.convert_to_tensor(np.pad(np.asarray(x, np.float32), [(0, bucket_rows(rows) - rows), (0, 0)]))
    losses: List[float] = []
    try:
        while len(losses) < config.epochs:
            stopping.check()  # a SIGTERM or Ctrl-C held since the last call stops the run here
            epochs = min(chunk, config.epochs - len(losses))
            orders = np.stack([shuffle.permutation(rows) for _ in range(epochs)])
            chunk_losses = trainer.run(x_tensor, orders, capacity=chunk, rows=rows)
            losses.extend(float(v) for v in chunk_losses)
            if not np.all(np.isfinite(chunk_losses)):
                first = int(np.flatnonzero(~np.isfinite(chunk_losses))[0])
                raise TrainingError(f"training diverged: loss is {chunk_losses[first]} at epoch "
                                    f"{len(losses) - epochs + first + 1}; try a smaller learning_rate")
            if progress:
                progress(losses)
    finally:
        trainer.write_weights()
    return History(tuple(losses))


def train_table(autoencoder: Any, table: Table, config: TrainingConfig, chunk_rows: int,
                progress: Optional[Progress] = None) -> History:
    """Train `autoencoder` on a table (tables.table.Table): in one compiled loop over every row
    when the table hands them over at once (`resident_rows`), else read from it in chunks
    (`train_chunks`). Where the rows are held is the table's business, not asked here."""
    rows = table.resident_rows()
    if rows is not None:
        return train(autoencoder, rows, config, progress=progress)
    return train_chunks(autoencoder, table, config, chunk_rows, progress=progress)


BLOCK_ROWS = 4096  # rows read from a cached table in one piece; blocks are shuffled, then rows in a chunk


def block_rows(chunk_rows: int, batch_size: int) -> int:
    """Rows per contiguous read: BLOCK_ROWS, or fewer when a chunk is smaller than that."""
    return min(BLOCK_ROWS, max(chunk_rows, batch_size))


def train_chunks(autoencoder: Any, table: Table, config: TrainingConfig, chunk_rows: int,
                 progress: Optional[Progress] = None) -> History:
    """`train` for a table on disk (tables.cache.CachedTable): returns a `History`.

    Each epoch shuffles the table's blocks of BLOCK_ROWS rows, gathers about `chunk_rows` rows
    of them at a time, shuffles those rows and runs one epoch of the same compiled loop over
    them, so memory stays near one chunk. An epoch's loss is the mean over all its rows, as in
    memory. The numbers differ from `train` on the same rows: the order of the rows differs.
    """
    rows = table.rows
    batch_size = min(config.batch_size, rows)
    block = block_rows(chunk_rows, batch_size)
    blocks_per_chunk = max(1, chunk_rows // block)
    full_blocks, tail = divmod(rows, block)
    trainer = Trainer(autoencoder, config.learning_rate, batch_size)
    shuffle = np.random.default_rng(config.seed)
    losses: List[float] = []
    try:
        for epoch in range(1, config.epochs + 1):
            # The short block goes last, so every epoch has the same few chunk sizes to compile.
            order = [*shuffle.permutation(full_blocks), *([full_blocks] if tail else [])]
            total = 0.0
            for first in range(0, len(order), blocks_per_chunk):
                stopping.check()  # between two compiled calls, as in train()
                x = table.normalised(np.concatenate([table.raw(b * block, block)
                                                     for b in order[first:first + blocks_per_chunk]]))
                permutation = shuffle.permutation(len(x)).astype(np.int32)[None, :]
                loss = float(trainer.run(x, permutation, capacity=1)[0])
                if not np.isfinite(loss):
                    raise TrainingError(f"training diverged: loss is {loss} at epoch {epoch}; "
                                        f"try a smaller learning_rate")
                total += loss * len(x)
            losses.append(total / rows)
            if progress:
                progress(losses)
    finally:
        trainer.write_weights()
    return History(tuple(losses), engine="reducer compiled loop (XLA), fed in shuffled chunks")
