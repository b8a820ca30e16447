"""The training engine against Keras `fit`: same losses, every row used, repeatable, logged."""

import re

import numpy as np
import pytest

ROWS, COLUMNS, BATCH = 61, 6, 8  # 61 = 7 x 8 + 5: every epoch ends with a batch of 5


@pytest.fixture(scope="module")
def tf_modules():
    from reducer.engine import model as model_lib
    from reducer.engine import train
    from reducer.engine.tf_setup import configure, keras, tf

    configure()
    return model_lib, train, keras, tf


def small_data(seed=0):
    return np.random.default_rng(seed).uniform(0, 1, size=(ROWS, COLUMNS)).astype("float32")


def autoencoder(model_lib, seed=3, hidden=(4,)):
    from reducer.config import ModelConfig

    return model_lib.build(COLUMNS, ModelConfig(hidden=hidden, latent=2), seed, "sigmoid")[2]


def config(**values):
    from reducer.config import TrainingConfig

    return TrainingConfig(**{"epochs": 12, "batch_size": BATCH, "learning_rate": 0.01, "seed": 5, **values})


def test_engine_matches_keras_fit_batch_for_batch(tf_modules):
    """Same initial weights, same batches in the same order (no shuffle): every epoch's loss
    and the final weights agree with fit's to float32 rounding, the short last batch included."""
    model_lib, train, keras, _ = tf_modules
    x = small_data()
    epochs = 12
    fitted, engine_model = autoencoder(model_lib), autoencoder(model_lib)
    fitted.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse")
    fit_losses = fitted.fit(x, x, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0).history["loss"]

    trainer = train.Trainer(engine_model, learning_rate=0.01, batch_size=BATCH)
    engine_losses = trainer.run(x, np.tile(np.arange(ROWS), (epochs, 1)))
    trainer.write_weights()

    np.testing.assert_allclose(engine_losses, fit_losses, rtol=2e-4)
    assert fit_losses[-1] < 0.95 * fit_losses[0]  # it did learn: the comparison means something
    for ours, theirs in zip(engine_model.get_weights(), fitted.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-5)


def test_shuffled_training_reaches_fits_loss(tf_modules):
    """With shuffling (each side its own shuffle), the final losses agree within a few percent."""
    model_lib, train, keras, _ = tf_modules
    x = small_data(1)
    fitted, engine_model = autoencoder(model_lib), autoencoder(model_lib)
    fitted.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse")
    fit_loss = fitted.fit(x, x, batch_size=BATCH, epochs=60, verbose=0).history["loss"][-1]
    ours = train.train(engine_model, x, config(epochs=60)).final_loss
    assert ours == pytest.approx(fit_loss, rel=0.05)


def test_every_row_counts_once_per_epoch_with_a_short_last_batch(tf_modules):
    """With learning rate 0 the weights never move, so each epoch's loss must be the mean
    squared error over all rows, computed by hand: a dropped last batch, or padding rows that
    counted, would change it. One row is made far off so that losing it would show."""
    model_lib, train, _, _ = tf_modules
    x = small_data(2)
    x[ROWS - 1] = 1.0  # far from the sigmoid outputs of a fresh model
    model = autoencoder(model_lib)
    before = model.get_weights()
    expected = float(np.mean((model.predict(x, verbose=0).astype(np.float64) - x) ** 2))

    history = train.train(model, x, config(epochs=3, learning_rate=0.0))

    assert history.losses == pytest.approx([expected] * 3, rel=1e-5)
    for after, start in zip(model.get_weights(), before):
        np.testing.assert_array_equal(after, start)


def test_same_seed_same_weights_bit_for_bit(tf_modules):
    model_lib, train, _, _ = tf_modules
    x = small_data(3)
    runs = []
    for seed in (5, 5, 6):
        model = autoencoder(model_lib)
        history = train.train(model, x, config(seed=seed))
        runs.append((history.losses, model.get_weights()))
    (losses_a, weights_a), (losses_b, weights_b), (losses_c, weights_c) = runs
    assert losses_a == losses_b
    assert all(np.array_equal(a, b) for a, b in zip(weights_a, weights_b))
    assert not all(np.array_equal(a, c) for a, c in zip(weights_a, weights_c))  # the seed matters


def test_chunks_carry_the_optimizer_state(tf_modules, monkeypatch):
    """Epochs split over several compiled calls (a shorter last one too) train exactly as one call."""
    model_lib, train, _, _ = tf_modules
    x = small_data(4)
    whole, split = autoencoder(model_lib), autoencoder(model_lib)
    one_call = train.train(whole, x, config(epochs=7))
    monkeypatch.setattr(train, "STEPS_PER_CALL", 2 * 8)  # 2 epochs of 8 steps per call: 2+2+2+1
    four_calls = train.train(split, x, config(epochs=7))
    assert four_calls.losses == pytest.approx(one_call.losses, rel=1e-6)
    for a, b in zip(whole.get_weights(), split.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_models_other_than_a_dense_chain_train_the_same_way(tf_modules):
    """A model the fast path does not handle (here: an extra identity Activation layer) goes
    through Keras' own call and reaches the same losses as the equivalent Dense chain."""
    model_lib, train, keras, _ = tf_modules
    x = small_data(5)
    chain = autoencoder(model_lib)
    inputs = keras.Input(shape=(COLUMNS,))
    other = keras.Model(inputs, keras.layers.Activation("linear")(chain(inputs)))
    assert train._dense_chain(other) is None
    reference = autoencoder(model_lib)
    orders = np.tile(np.arange(ROWS), (6, 1))
    losses_other = train.Trainer(other, 0.01, BATCH).run(x, orders)
    losses_chain = train.Trainer(reference, 0.01, BATCH).run(x, orders)
    np.testing.assert_allclose(losses_other, losses_chain, rtol=1e-4)


def test_diverging_training_is_a_training_error(tf_modules):
    from reducer.errors import TrainingError

    model_lib, train, _, _ = tf_modules
    x = small_data(6) * 1e30
    with pytest.raises(TrainingError, match="diverged"):
        train.train(autoencoder(model_lib), x, config(epochs=2))


def test_loss_lines_in_a_real_runs_log(project):
    """`epoch =    N loss = x.xxxxxx` every log_every epochs and at the end, no carriage
    returns when stderr is not a terminal (cron's log)."""
    job = project.iris_job(epochs=12)  # log_every = 5
    result = project.run("run", job, "--outputs", project.outputs, "--models", project.models)
    assert result.returncode == 0, result.stderr
    epochs = [int(n) for n in re.findall(r"\[iris\] epoch = +(\d+) loss = \d+\.\d{6}$", result.stderr, re.M)]
    assert epochs == [5, 10, 12]
    assert "\r" not in result.stderr


def test_the_neighbour_loops_flat_adam_is_keras_adam_to_the_bit(tf_modules):
    """neighbor_train.FlatAdam (one update over every variable, fewer XLA kernels) takes the same
    steps as keras.optimizers.Adam with the same schedule and beta_1, compiled by XLA as the
    neighbour loop is: the same weights, bit for bit, after 30 steps."""
    from reducer.config import ModelConfig
    from reducer.engine import model as model_lib
    from reducer.engine.neighbor_train import FlatAdam
    from reducer.engine.tf_setup import keras, tf

    config = ModelConfig(hidden=(16, 8), activation="relu", latent_activation="linear")
    rows = tf.constant(np.random.default_rng(4).normal(size=(40, 6)).astype(np.float32))
    weights = []
    for flat in (False, True):
        encoder, decoder, _ = model_lib.build(6, config, seed=3, out_activation="linear")
        variables = list(encoder.trainable_variables) + list(decoder.trainable_variables)
        schedule = keras.optimizers.schedules.PolynomialDecay(0.02, decay_steps=30, end_learning_rate=0.0)
        if flat:
            optimizer = FlatAdam(variables, schedule, beta_1=0.7)
            apply = optimizer.apply
        else:
            keras_adam = keras.optimizers.Adam(learning_rate=schedule, beta_1=0.7)
            keras_adam.build(variables)

            def apply(gradients):
                keras_adam.apply_gradients(zip(gradients, variables))

        @tf.function(jit_compile=True, autograph=False)
        def steps():
            def body(s):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(decoder(encoder(rows)) - rows))
                apply(tape.gradient(loss, variables))
                return (s + 1,)

            return tf.while_loop(lambda s: s < 30, body, (tf.constant(0),))

        steps()
        weights.append([v.numpy() for v in variables])
    assert all(a.tobytes() == b.tobytes() for a, b in zip(*weights))
    assert not np.allclose(weights[1][0], model_lib.build(6, config, seed=3, out_activation="linear")[0]
                           .trainable_variables[0].numpy())  # it trained


def test_copy_numbers_name_rows_equal_in_every_column():
    """neighbor_train.copy_numbers: rows equal in every column, to a millionth of its standard
    deviation, share a number; rows a thousandth apart in one column do not; a table without two
    such rows gives None (the compiled step is then the same program as before it existed)."""
    from reducer.engine.neighbor_train import copy_numbers

    x = np.random.default_rng(2).normal(size=(500, 7)).astype(np.float32)
    assert copy_numbers(x) is None
    x[10] = x[3]
    x[20] = x[3]
    x[30] = x[4]
    x[31] = x[4]
    x[31, 6] += 1e-3
    x[40] = x[5] + np.float32(1e-9) * np.arange(7, dtype=np.float32)  # 0 +- 1e-9: a copy too
    numbers = copy_numbers(x)
    assert numbers.dtype == np.int32 and numbers.shape == (500,)
    assert numbers[3] == numbers[10] == numbers[20] and numbers[30] == numbers[4] != numbers[31]
    assert numbers[40] == numbers[5]
    assert len(np.unique(numbers)) == 496  # rows 10, 20, 30 and 40 are copies
