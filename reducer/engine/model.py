"""The autoencoder: how it is sized and built. Imports Keras, so import this module lazily."""

import dataclasses
import math
from pathlib import Path
from typing import Any, Optional, Tuple

import numpy as np

from reducer.config import ModelConfig
from reducer.engine.tf_setup import keras
from reducer.tables.table import Table


def hidden_widths(columns: int, latent: int) -> Tuple[int]:
    """Default encoder hidden widths: one layer of half the column count, at least 2 x latent,
    at most 256 (64 columns give the seed's [32])."""
    return (min(max(math.ceil(columns / 2), 2 * latent), 256),)


def output_activation(config: ModelConfig, table: Table) -> str:
    """Sigmoid when every normalised value is in [0, 1] (as the seed), else linear."""
    if config.output_activation:
        return config.output_activation
    return "sigmoid" if table.in_unit_range else "linear"


def resolve(config: ModelConfig, table: Table) -> ModelConfig:
    """The job's ModelConfig with every default that depends on the table filled in."""
    return dataclasses.replace(config, hidden=tuple(config.hidden or hidden_widths(len(table.features), config.latent)),
                               output_activation=output_activation(config, table),
                               latent_activation=config.latent_activation or config.activation)


# The robust input (issue 23, ninth session; [model] robust_input): a column whose standard
# deviation is more than HEAVY_RATIO x its interquartile spread (IQR / 1.349, the standard
# deviation of a normal column) owes its spread to a few far values; or its middle half is one
# value. Such a column's rows reach the encoder as median-centred multiples of that interquartile
# spread, squashed by TAIL_BOUND x tanh(u / TAIL_BOUND): the bulk is drawn apart and no far value
# swamps it. A column whose quartiles do not describe its bulk (interquartile_scaled: mostly one
# value, or most of its rows far beyond them) is squashed in multiples of its standard deviation:
# half a table of 0s beside rows spread around them drew every such row to +-3 (a map of
# 2^columns dots). Every other column passes as it is (z-scored: centred by its mean, over its
# standard deviation, LINEAR_BOUND: tanh is then the identity to float32's precision).
HEAVY_RATIO = 1.5
TAIL_BOUND = 3.0
LINEAR_BOUND = 1000.0
# A column whose commonest value holds this share of the rows is "mostly one value" (a dry day's
# rain, a blank pixel): its tail is the rows' information, not a few rows' distance, so it keeps
# it in the decoder's target (far_valued_columns) and is scaled by its standard deviation.
MOSTLY_ONE_VALUE = 0.5
# More than this share of a column's rows beyond TAIL_BOUND interquartile spreads of its median:
# the quartiles measure a sliver, not the bulk (interquartile_scaled). A few far values put
# 1.0-1.3% of the rows there (benchmarks/quality.py --outliers), real tables' columns at most 20%.
MOSTLY_BEYOND = 0.25
INPUT_SAMPLE = 100_000  # the statistics from at most this many rows (a fixed-seed sample)
INPUT_LAYERS = ("input_scale", "input_squash", "input_unscale")
ENCODER_NAME = "encoder"  # the inner model's name in the saved raw-row encoder


def _statistics_rows(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """The rows the input statistics come from: a fixed-seed sample of at most INPUT_SAMPLE, float64."""
    if len(x) > INPUT_SAMPLE:
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), INPUT_SAMPLE, replace=False))]
    return np.asarray(x, np.float64)


def input_statistics(x: np.ndarray, seed: int = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre, spread, bound) per column of the rows `x` for the robust input layers."""
    x = _statistics_rows(x, seed)
    std = x.std(axis=0)
    q25, median, q75 = np.percentile(x, [25, 50, 75], axis=0)
    middle = (q75 - q25) / 1.349
    heavy = (std > 0) & ((middle <= 0) | (std > HEAVY_RATIO * middle))
    spread = np.where(interquartile_scaled(x, heavy, (q25, median, q75)), middle, std)
    spread = np.where(spread > 0, spread, 1.0)
    centre = np.where(heavy, median, x.mean(axis=0))
    return centre, spread, np.where(heavy, TAIL_BOUND, LINEAR_BOUND)


def heavy_columns(statistics: Tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Which columns the robust input squashes (the others it passes as they are), from the rows'
    input_statistics."""
    return statistics[2] == TAIL_BOUND


def has_robust_input(encoder: Any) -> bool:
    return any(layer.name == INPUT_LAYERS[0] for layer in encoder.layers)


def set_robust_input(encoder: Any, x: np.ndarray,
                     statistics: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = None) -> None:
    """Give the encoder's robust input layers the statistics of the rows `x` (a cold start):
    `statistics`, input_statistics(x) already computed, or computed here."""
    centre, spread, bound = input_statistics(x) if statistics is None else statistics
    encoder.get_layer(INPUT_LAYERS[0]).set_weights([centre, (spread * bound) ** 2, np.array(len(x))])
    encoder.get_layer(INPUT_LAYERS[2]).set_weights([np.zeros_like(bound), bound ** -2.0, np.array(len(x))])
    refresh_normalisation(encoder)


def far_valued_columns(encoder: Any, x: np.ndarray) -> Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(centre, reach, far) per column: far = the columns the encoder's robust input squashes
    because a few far values set their spread (their middle half spreads, and no one value
    holds half the rows, unlike a pixel mostly blank or a day's rain mostly dry), in the rows
    `x`; centre and reach (spread x TAIL_BOUND) from the layers' own weights, so a warm night
    reads the published ones. None where the encoder has no robust input or no column is far-valued.
    neighbor_train's decoder rebuilds these columns as the encoder sees them."""
    if not has_robust_input(encoder):
        return None
    centre, variance = (np.asarray(w, np.float64) for w in encoder.get_layer(INPUT_LAYERS[0]).get_weights()[:2])
    bound = np.asarray(encoder.get_layer(INPUT_LAYERS[2]).get_weights()[1], np.float64) ** -0.5
    rows = _statistics_rows(x)
    far = interquartile_scaled(rows, np.isclose(bound, TAIL_BOUND), np.percentile(rows, [25, 50, 75], axis=0))
    if not far.any():
        return None
    return centre, np.sqrt(variance), far


def commonest_share(column: np.ndarray) -> float:
    """The share of the rows that hold the column's commonest value."""
    _, counts = np.unique(column, return_counts=True)
    return float(counts.max()) / len(column)


def interquartile_scaled(rows: np.ndarray, columns: np.ndarray, quartiles: Any) -> np.ndarray:
    """Per column, whether it is among `columns` (a mask) and its interquartile spread describes
    its bulk, so that the robust input scales it by that spread: the quartiles (`quartiles`: the
    25th, 50th and 75th percentiles of `rows`) differ, no one value holds MOSTLY_ONE_VALUE of the
    rows, and at most MOSTLY_BEYOND of them lie beyond TAIL_BOUND such spreads of the median.
    Otherwise the quartiles measure a sliver (half a table at 0 +- 1e-9 beside rows spread around
    it: every other row squashed to +-3, the map a few dots) and the standard deviation scales."""
    q25, median, q75 = quartiles
    middle = (q75 - q25) / 1.349
    found = np.asarray(columns, bool) & (middle > 0)
    found &= ~mostly_one_value(rows, found)
    for column in np.flatnonzero(found):
        beyond = np.abs(rows[:, column] - median[column]) > TAIL_BOUND * middle[column]
        found[column] = float(np.mean(beyond)) <= MOSTLY_BEYOND
    return found


def mostly_one_value(rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Per column, whether it is among `columns` (a mask) and its commonest value holds at least
    MOSTLY_ONE_VALUE of the rows (a dry day's rain, a blank pixel), wherever that value sits."""
    found = np.zeros(rows.shape[1], dtype=bool)
    for column in np.flatnonzero(columns):
        found[column] = commonest_share(rows[:, column]) >= MOSTLY_ONE_VALUE
    return found


def refresh_normalisation(model: Any) -> None:
    """Keras computes a Normalization layer from the tensors it derives from its weights when it
    is built, adapted or loaded, not when set_weights changes them: derive them again."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            refresh_normalisation(layer)
        elif isinstance(layer, keras.layers.Normalization) and layer.weights:
            layer.finalize_state()


def build(columns: int, config: ModelConfig, seed: int, out_activation: str,
          robust_input: bool = False) -> Tuple[Any, Any, Any]:
    """(encoder, decoder, autoencoder) over normalised rows; the decoder mirrors the encoder.
    robust_input: the encoder's first layers are the robust input (HEAVY_RATIO), built-in
    Normalization and tanh layers, so the saved model still loads with no custom objects; their
    statistics are set by set_robust_input before training. The pipeline builds them where the
    job allows ([model] robust_input) and the table has a heavy column, or the published
    encoder has them (a warm start needs the same architecture)."""
    widths = list(config.hidden or ())  # resolve() filled it in
    counter = iter(range(seed, seed + 10_000))

    def dense(units: int, activation: str, name: str) -> Any:
        # glorot_uniform as in the seed; one seed per layer so Keras never reuses a sequence.
        return keras.layers.Dense(units, activation=activation, name=name,
                                  kernel_initializer=keras.initializers.GlorotUniform(seed=next(counter)))

    encoder_input = keras.Input(shape=(columns,), name="normalised_rows")
    h = encoder_input
    if robust_input:
        scale, squash, unscale = INPUT_LAYERS
        h = keras.layers.Normalization(axis=-1, name=scale)(h)
        h = keras.layers.Activation("tanh", name=squash)(h)
        h = keras.layers.Normalization(axis=-1, name=unscale)(h)
    for i, width in enumerate(widths):
        h = dense(width, config.activation, f"encoder_hidden_{i + 1}")(h)
    code = dense(config.latent, config.latent_activation or config.activation, "code")(h)
    encoder = keras.Model(encoder_input, code, name=ENCODER_NAME)

    decoder_input = keras.Input(shape=(config.latent,), name="code_in")
    h = decoder_input
    for i, width in enumerate(reversed(widths)):
        h = dense(width, config.activation, f"decoder_hidden_{i + 1}")(h)
    reconstruction = dense(columns, out_activation, "reconstruction")(h)
    decoder = keras.Model(decoder_input, reconstruction, name="decoder")

    rows = keras.Input(shape=(columns,), name="rows")
    autoencoder = keras.Model(rows, decoder(encoder(rows)), name="autoencoder")
    return encoder, decoder, autoencoder


def raw_row_encoder(encoder: Any, table: Table, name: str,
                    transform: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> Any:
    """The encoder to save: normalisation inside, so it takes raw rows and needs no reducer code.

    transform: (matrix, translation) laying the map on last night's (continuity.alignment),
    folded in as a last linear Dense layer named "align", so every consumer of the saved
    encoder gets the aligned map and the file still loads with no custom objects.
    """
    columns = len(table.features)
    rows = keras.Input(shape=(columns,), name="raw_rows")
    normalise = keras.layers.Normalization(mean=table.offset, variance=table.scale.astype("float64") ** 2,
                                           name="normalise")
    code = encoder(normalise(rows))
    if transform is not None:
        matrix, translation = transform
        align = keras.layers.Dense(matrix.shape[1], activation="linear", name="align")
        code = align(code)
        align.set_weights([np.asarray(matrix, np.float32), np.asarray(translation, np.float32)])
    return keras.Model(rows, code, name=name)


def load_published(previous_version: Path, needs_decoder: bool = True) -> Tuple[Optional[str], Any, Any]:
    """(None, the published raw-row encoder, the published decoder's weights or None), or (the
    one-line reason a cold start is made instead, None, None). needs_decoder: the loss trains
    the decoder, so an encoder beside a fresh decoder would be pulled apart."""
    model_path, decoder_path = previous_version / "model.keras", previous_version / "decoder.keras"
    if not model_path.is_file():
        return f"no published model in {previous_version}", None, None
    if needs_decoder and not decoder_path.is_file():
        return f"the published run kept no decoder ({previous_version.name}, from an earlier reducer)", None, None
    try:
        saved = keras.models.load_model(model_path, compile=False)
        decoder_weights = (keras.models.load_model(decoder_path, compile=False).get_weights()
                           if decoder_path.is_file() else None)
    except Exception as exc:  # a damaged file fails in Keras, h5py or zipfile, each its own way: train cold
        first = (str(exc).splitlines() or [""])[0][:120]
        return f"the published model cannot be read ({type(exc).__name__}: {first})", None, None
    return None, saved, decoder_weights


def published_encoder(saved: Any, encoder_name: str) -> Optional[Any]:
    """The inner encoder of a published raw-row encoder, or None when it has none by that name."""
    try:
        return saved.get_layer(encoder_name)
    except ValueError:
        return None


def warm_start(encoder: Any, decoder: Any, saved: Any, decoder_weights: Any) -> Optional[str]:
    """Give `encoder` (and `decoder`) the weights of the published ones (load_published) when
    their shapes match; None, or the one-line reason a cold start is made instead."""
    inner = published_encoder(saved, encoder.name)
    if inner is None:
        return f"the published model has no {encoder.name!r} (from an earlier reducer)"
    pairs = [(encoder, inner.get_weights())]
    if decoder_weights is not None:
        pairs.append((decoder, decoder_weights))
    for model, weights in pairs:
        if [w.shape for w in model.get_weights()] != [w.shape for w in weights]:
            return f"the published {model.name} has another architecture"
    for model, weights in pairs:
        model.set_weights(weights)
        refresh_normalisation(model)  # the robust input's statistics are the published ones
    return None


def published_codes(saved: Any, encoder_name: str, raw_rows: np.ndarray,
                    batch_size: int = 4096) -> Optional[np.ndarray]:
    """The published raw-row encoder's codes of `raw_rows` in the frame of its inner encoder:
    its own normalisation (last night's offset and scale), not its alignment, which is the
    frame a warm-started encoder trains in. None when the model is not laid out as
    raw_row_encoder lays it out (an earlier reducer's)."""
    try:
        normalise, inner = saved.get_layer("normalise"), saved.get_layer(encoder_name)
    except ValueError:
        return None
    starts = range(0, len(raw_rows), batch_size) or [0]
    return np.concatenate([np.asarray(inner(normalise(raw_rows[start:start + batch_size]), training=False))
                           for start in starts]).astype(np.float32)


def apply(model: Any, rows: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """`model.predict(rows, batch_size)` without predict's tracing of a graph function (0.1-0.2 s
    per model, more than the work on a few thousand rows): each batch is one eager call running
    the same kernels, so the numbers are the same as predict's (tests/test_model.py compares)."""
    starts = range(0, len(rows), batch_size) or [0]  # no rows: one empty call (predict fails on it)
    return np.concatenate([np.asarray(model(rows[start:start + batch_size], training=False)) for start in starts])
