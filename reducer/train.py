"""The training engine: the math of Keras `fit` (Adam, MSE, a fresh shuffle each epoch, a
smaller last batch), compiled with XLA so that many epochs run in one call.

`fit` spends nearly all its time on per-step Python and dispatch overhead for models this
small; here a whole chunk of epochs is one compiled `tf.while_loop`, and the host only wakes
up between chunks to report progress.
"""

import math
from dataclasses import dataclass

import numpy as np

from .errors import TrainingError
from .tf_setup import keras, tf

# Steps per compiled call: large enough to hide dispatch cost, small enough for live progress.
STEPS_PER_CALL = 2000


@dataclass(frozen=True)
class History:
    losses: tuple  # mean loss per epoch, over every row of the epoch

    @property
    def final_loss(self):
        return self.losses[-1]


def _epoch_runner(model, optimizer, rows, columns, batch_size):
    full_batches, last = divmod(rows, batch_size)
    variables = model.trainable_variables

    def step(batch):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(batch, training=True) - batch))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    @tf.function(jit_compile=True)
    def run(x, order, epochs):
        """Train `epochs` epochs (<= order's first dimension); return each epoch's mean loss."""
        losses = tf.TensorArray(tf.float32, size=tf.shape(order)[0])
        for e in tf.range(epochs):
            shuffled = tf.gather(x, order[e])
            total = tf.constant(0.0)
            for b in tf.range(full_batches):
                batch = tf.slice(shuffled, [b * batch_size, 0], [batch_size, columns])
                total += step(batch) * batch_size
            if last:  # Python-level: the partial batch has its own static shape
                total += step(shuffled[full_batches * batch_size:]) * last
            losses = losses.write(e, total / rows)
        return losses.stack()

    return run


def train(autoencoder, x, config, progress=None):
    """Train `autoencoder` in place to reproduce `x`; returns a `History`.

    config: the job's TrainingConfig. progress(losses) is called after each chunk of epochs
    with the per-epoch losses so far. Raises TrainingError when the loss stops being finite.
    """
    rows, columns = x.shape
    batch_size = min(config.batch_size, rows)
    optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate)
    optimizer.build(autoencoder.trainable_variables)
    run = _epoch_runner(autoencoder, optimizer, rows, columns, batch_size)
    steps_per_epoch = math.ceil(rows / batch_size)
    chunk = max(1, min(config.epochs, STEPS_PER_CALL // steps_per_epoch))
    shuffle = np.random.default_rng(config.seed)
    x_tensor = tf.convert_to_tensor(x, dtype=tf.float32)
    losses = []
    done = 0
    while done < config.epochs:
        epochs = min(chunk, config.epochs - done)
        order = np.zeros((chunk, rows), dtype=np.int32)  # fixed shape: one compilation only
        for e in range(epochs):
            order[e] = shuffle.permutation(rows)
        chunk_losses = run(x_tensor, tf.constant(order), tf.constant(epochs)).numpy()[:epochs]
        losses.extend(float(v) for v in chunk_losses)
        done += epochs
        if not np.all(np.isfinite(chunk_losses)):
            first = int(np.flatnonzero(~np.isfinite(chunk_losses))[0])
            raise TrainingError(f"training diverged: loss is {chunk_losses[first]} at epoch "
                                f"{done - epochs + first + 1}; try a smaller learning_rate")
        if progress:
            progress(losses)
    return History(tuple(losses))
