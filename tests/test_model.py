"""How the autoencoder is sized and built."""

import numpy as np
import pytest

from reducer.jobs import ModelConfig


def test_default_hidden_width_follows_the_column_count():
    from reducer.model import hidden_widths

    assert hidden_widths(64, 2) == (32,)  # the seed's 64-32-2-32-64
    assert hidden_widths(4, 2) == (4,)
    assert hidden_widths(13, 3) == (7,)
    assert hidden_widths(3, 3) == (6,)
    assert hidden_widths(5000, 2) == (256,)


@pytest.mark.parametrize("latent", [2, 3])
def test_encoder_and_decoder_mirror_each_other(latent):
    from reducer.model import build

    encoder, decoder, autoencoder = build(10, ModelConfig(hidden=(8, 5), latent=latent), 1, "sigmoid")
    assert [layer.units for layer in encoder.layers[1:]] == [8, 5, latent]
    assert [layer.units for layer in decoder.layers[1:]] == [5, 8, 10]
    assert autoencoder.output_shape == (None, 10)
    assert encoder.name == "encoder" and decoder.name == "decoder"


def test_same_seed_same_initial_weights():
    from reducer.model import build

    first = build(6, ModelConfig(hidden=(4,)), 7, "sigmoid")[2].get_weights()
    second = build(6, ModelConfig(hidden=(4,)), 7, "sigmoid")[2].get_weights()
    other = build(6, ModelConfig(hidden=(4,)), 8, "sigmoid")[2].get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
