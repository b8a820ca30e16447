"""How the autoencoder is sized and built."""

import numpy as np
import pytest

from reducer.config import ModelConfig


def test_default_hidden_width_follows_the_column_count():
    from reducer.engine.model import hidden_widths

    assert hidden_widths(64, 2) == (32,)  # the seed's 64-32-2-32-64
    assert hidden_widths(4, 2) == (4,)
    assert hidden_widths(13, 3) == (7,)
    assert hidden_widths(3, 3) == (6,)
    assert hidden_widths(5000, 2) == (256,)


@pytest.mark.parametrize("latent", [2, 3])
def test_encoder_and_decoder_mirror_each_other(latent):
    from reducer.engine.model import build

    encoder, decoder, autoencoder = build(10, ModelConfig(hidden=(8, 5), latent=latent), 1, "sigmoid")
    assert [layer.units for layer in encoder.layers[1:]] == [8, 5, latent]
    assert [layer.units for layer in decoder.layers[1:]] == [5, 8, 10]
    assert autoencoder.output_shape == (None, 10)
    assert encoder.name == "encoder" and decoder.name == "decoder"


def test_same_seed_same_initial_weights():
    from reducer.engine.model import build

    first = build(6, ModelConfig(hidden=(4,)), 7, "sigmoid")[2].get_weights()
    second = build(6, ModelConfig(hidden=(4,)), 7, "sigmoid")[2].get_weights()
    other = build(6, ModelConfig(hidden=(4,)), 8, "sigmoid")[2].get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


@pytest.mark.parametrize("rows", [0, 1, 300])
def test_apply_gives_predicts_numbers_exactly(rows):
    from reducer.engine.model import apply, build

    encoder, decoder, _ = build(10, ModelConfig(hidden=(8,), latent=2), 1, "sigmoid")
    x = np.random.default_rng(0).uniform(-3, 3, (rows, 10)).astype(np.float32)
    for model, data in ((encoder, x), (decoder, x[:, :2].copy())):
        got = apply(model, data, batch_size=128)  # three batches, the last one short
        if rows == 0:  # predict itself fails on no rows
            assert got.shape == (0, model.output_shape[1]) and got.dtype == np.float32
            continue
        expected = model.predict(data, batch_size=128, verbose=0)
        assert got.shape == expected.shape and got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
