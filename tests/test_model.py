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


def test_the_robust_input_squashes_only_columns_spread_by_a_few_far_values():
    """A normal column passes as it is (centred by its mean, over its standard deviation, no
    squash); a column whose spread 1% of far rows set, and one whose middle half is one value,
    are centred by their median, drawn apart by their interquartile spread and squashed."""
    from reducer.engine.model import LINEAR_BOUND, TAIL_BOUND, heavy_columns, input_statistics

    rng = np.random.default_rng(0)
    normal = rng.normal(5.0, 2.0, 1000)
    far = np.where(np.arange(1000) < 10, 1e4, rng.normal(0.0, 1.0, 1000))
    mostly_zero = np.where(np.arange(1000) < 100, rng.uniform(1, 9, 1000), 0.0)
    constant = np.full(1000, 3.0)
    x = np.column_stack([normal, far, mostly_zero, constant])
    centre, spread, bound = input_statistics(x)
    assert list(heavy_columns(input_statistics(x))) == [False, True, True, False]
    assert list(bound) == [LINEAR_BOUND, TAIL_BOUND, TAIL_BOUND, LINEAR_BOUND]
    assert centre[0] == pytest.approx(normal.mean()) and spread[0] == pytest.approx(normal.std())
    q25, q75 = np.percentile(far, [25, 75])
    assert centre[1] == pytest.approx(np.median(far)) and spread[1] == pytest.approx((q75 - q25) / 1.349)
    assert spread[1] < 1.1 < far.std() / 100  # the bulk's spread, not the far rows'
    assert centre[2] == 0.0 and spread[2] == pytest.approx(mostly_zero.std())  # no middle spread: the sd
    assert spread[3] == 1.0  # a constant column: nothing to divide by


def test_a_column_mostly_of_one_value_is_scaled_by_its_standard_deviation():
    """Half the rows 0, the rest spread around them (issue 23, twelfth session): the quartiles
    fall either side of the 0s, a sliver apart, and an interquartile scale would squash every
    other row to +-3; the column is scaled by its standard deviation, as one whose quartiles are
    equal. Mostly one value at one end (57% dry days) likewise, and half the rows within 1e-9 of
    0 (more than MOSTLY_BEYOND of the rows beyond the quartiles' reach); a column of a few far
    values keeps its interquartile scale."""
    from reducer.engine.model import TAIL_BOUND, input_statistics, mostly_one_value

    rng = np.random.default_rng(1)
    size = np.abs(rng.normal(0.0, 1.0, 1000))
    around = np.where(np.arange(1000) < 500, 0.0, np.where(np.arange(1000) < 750, -size, size))
    dry = np.where(np.arange(1000) < 570, 0.0, rng.exponential(5.0, 1000))
    far = np.where(np.arange(1000) < 10, 1e4, rng.normal(0.0, 1.0, 1000))
    x = np.column_stack([around, dry, far])
    q25, q75 = np.percentile(around, [25, 75])
    assert 0 < q75 - q25 < 0.01
    centre, spread, bound = input_statistics(x)
    assert list(bound) == [TAIL_BOUND] * 3
    assert spread[0] == pytest.approx(around.std()) and spread[1] == pytest.approx(dry.std())
    q25, q75 = np.percentile(far, [25, 75])
    assert spread[2] == pytest.approx((q75 - q25) / 1.349)
    jittered = x.copy()
    jittered[:500, 0] = rng.normal(0.0, 1e-9, 500)  # no two values equal, yet a sliver between quartiles
    centre, spread, bound = input_statistics(jittered)
    assert spread[0] == pytest.approx(jittered[:, 0].std()) and bound[0] == TAIL_BOUND
    assert list(mostly_one_value(x, np.array([True, True, True]))) == [True, True, False]
    assert list(mostly_one_value(x, np.array([False, True, True]))) == [False, True, False]


def test_a_robust_encoder_saves_loads_and_warm_starts_with_its_statistics(tmp_path):
    """The robust input is built-in Keras layers: the saved model gives the same codes with no
    custom objects, and an encoder given the published weights computes with the published
    statistics (Keras derives a Normalization's tensors from its weights only when told)."""
    import keras

    from reducer.engine.model import (ENCODER_NAME, INPUT_LAYERS, apply, build, has_robust_input,
                                      set_robust_input, warm_start)

    rng = np.random.default_rng(1)
    x = np.column_stack([rng.normal(size=400), np.where(np.arange(400) < 4, 1e3, rng.normal(size=400))])
    x = x.astype(np.float32)
    config = ModelConfig(hidden=(8,), activation="relu", latent_activation="linear")
    encoder, decoder, _ = build(2, config, 1, "linear", robust_input=True)
    plain = build(2, config, 1, "linear")[0]
    assert has_robust_input(encoder) and not has_robust_input(plain) and encoder.name == ENCODER_NAME
    before = apply(encoder, x)
    set_robust_input(encoder, x)
    codes = apply(encoder, x)
    assert not np.allclose(codes, before)
    squashed = keras.Model(encoder.input, encoder.get_layer(INPUT_LAYERS[-1]).output)
    assert float(np.abs(apply(squashed, x)[:, 1]).max()) <= 3.0 + 1e-5  # the far rows: within the bound
    encoder.save(tmp_path / "encoder.keras")
    np.testing.assert_allclose(apply(keras.models.load_model(tmp_path / "encoder.keras"), x), codes, rtol=1e-6)
    saved = keras.Model(encoder.input, encoder(encoder.input))  # as raw_row_encoder nests it
    again, again_decoder, _ = build(2, config, 2, "linear", robust_input=True)
    assert warm_start(again, again_decoder, saved, decoder.get_weights()) is None
    np.testing.assert_allclose(apply(again, x), codes, rtol=1e-6)
    assert warm_start(plain, again_decoder, saved, None) == "the published encoder has another architecture"


def test_the_robust_input_follows_the_published_encoder_and_else_the_table():
    """Warm nights keep the published encoder's architecture (with or without the robust
    input); with no published encoder of the same columns, the table decides."""
    from types import SimpleNamespace

    import keras

    from reducer.engine.model import build, input_statistics
    from reducer.run.pipeline import robust_input

    rng = np.random.default_rng(2)
    plain_rows = rng.normal(size=(300, 3)).astype(np.float32)
    heavy_rows = plain_rows.copy()
    heavy_rows[:3, 0] = 1e3
    table = SimpleNamespace(features=["a", "b", "c"])
    config = ModelConfig(hidden=(4,), activation="relu", latent_activation="linear")

    def published(columns, robust):
        encoder = build(columns, config, 1, "linear", robust_input=robust)[0]
        rows = keras.Input(shape=(columns,))
        return keras.Model(rows, encoder(rows))

    def decided(rows, published_model):
        return robust_input("job", table, rows, published_model)[0]

    assert decided(heavy_rows, None) and not decided(plain_rows, None)
    assert not decided(heavy_rows, published(3, robust=False))
    assert decided(plain_rows, published(3, robust=True))
    assert decided(heavy_rows, published(4, robust=False))  # other columns: a cold start
    # A cold start hands on the statistics it decided by (set_robust_input need not compute
    # them again); a warm one keeps the published encoder's and computes none.
    statistics = robust_input("job", table, heavy_rows, None)[1]
    assert statistics is not None
    assert all(np.array_equal(a, b) for a, b in zip(statistics, input_statistics(heavy_rows)))
    assert robust_input("job", table, plain_rows, published(3, robust=True))[1] is None


def test_far_valued_columns_come_from_the_encoders_own_layers_and_the_rows():
    """model.far_valued_columns: the columns the robust input squashes because a few far values
    set their spread, which the decoder rebuilds as the encoder sees them (issue 23, eleventh
    session); a column squashed because it is mostly one value (a pixel mostly blank, or a day's
    rain mostly dry, whose quartiles differ: twelfth session) is rebuilt as it is. Centre and reach (spread x TAIL_BOUND) are read back from the layers, the
    statistics a cold start set (a warm night reads the published ones); an encoder without
    the robust input, or with no far-valued column, gives None."""
    from reducer.engine.model import TAIL_BOUND, build, far_valued_columns, input_statistics, set_robust_input

    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 5))
    x[:4, 1] = 1e3  # a column whose spread four far rows set
    x[:, 3] = np.where(np.arange(400) < 40, rng.uniform(1, 9, 400), 0.0)  # mostly one value
    # 55% dry days, the rest a long tail: the quartiles differ, yet one value holds most rows.
    x[:, 4] = np.where(np.arange(400) < 220, 0.0, rng.exponential(1.0, 400) ** 3)
    config = ModelConfig(hidden=(4,), activation="relu", latent_activation="linear")
    encoder = build(5, config, 1, "linear", robust_input=True)[0]
    set_robust_input(encoder, x)
    centre, reach, far = far_valued_columns(encoder, x)
    expected_centre, spread, bound = input_statistics(x)
    assert np.percentile(x[:, 4], 25) < np.percentile(x[:, 4], 75)
    assert list(bound == TAIL_BOUND) == [False, True, False, True, True]
    assert list(far) == [False, True, False, False, False]
    assert centre == pytest.approx(expected_centre, rel=1e-6)
    assert reach[1] == pytest.approx(spread[1] * TAIL_BOUND, rel=1e-6)
    assert far_valued_columns(build(5, config, 1, "linear")[0], x) is None
    mostly_blank = x.copy()
    mostly_blank[:4, 1] = 0.0  # no far rows left: only the mostly-one-value columns are squashed
    plain = build(5, config, 1, "linear", robust_input=True)[0]
    set_robust_input(plain, mostly_blank)
    assert far_valued_columns(plain, mostly_blank) is None
