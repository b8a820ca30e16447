"""One job on a CSV larger than memory: the csv dataset with `streaming = true`.

The stages of pipeline.run_job, in pieces: the CSV is read once into a binary cache
(csv_cache.py); training reads the cache back in shuffled chunks through train.py's compiled
epoch runner; embedding.csv is written chunk by chunk; the plot and the quality metrics use a
fixed-seed sample of rows. Memory stays near a few chunks whatever the size of the file.
"""

import dataclasses
import logging
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from . import csv_cache
from .errors import JobError, TrainingError
from .progress import Progress

log = logging.getLogger("reducer")

CACHE_FOLDER = ".cache"  # under the outputs folder; job names cannot start with "."
BLOCK_ROWS = 4096  # rows read from the cache in one piece; blocks are shuffled, then rows in a chunk
PLOT_ROWS = 50_000  # rows drawn in plot.png and handed to the quality metrics
SAMPLE_SEED = 0  # fixed, as quality.SEED: the same rows every night


def wants_streaming(job, dataset):
    return dataset.name == "csv" and bool(job.dataset_options.get("streaming"))


def block_rows(chunk_rows, batch_size):
    """Rows per contiguous read: BLOCK_ROWS, or fewer when a chunk is smaller than that."""
    return min(BLOCK_ROWS, max(chunk_rows, batch_size))


def sample_rows(rows, size, seed=SAMPLE_SEED):
    """Sorted indices of a fixed-seed sample of at most `size` rows."""
    if rows <= size:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, size=size, replace=False))


def run_streamed_job(job, dataset, source, destination):
    """Train one streamed job and publish its files; returns the manifest, as pipeline.run_job."""
    from .pipeline import publish, versions

    started = time.time()
    seconds = {}
    options = job.dataset_options
    chunk_rows = options.get("chunk_rows", csv_cache.CHUNK_ROWS)
    if chunk_rows < 1:
        raise JobError(f"{job.path}: dataset.chunk_rows must be 1 or more, got {chunk_rows}")
    objective = getattr(job.model, "objective", "reconstruction")
    if objective != "reconstruction":  # the neighbour graph needs every row in memory
        raise JobError(f"{job.path}: model.objective = {objective!r} needs the rows in memory; "
                       f"streaming = true trains the reconstruction objective only")
    cache_folder = Path(destination.outputs_root) / CACHE_FOLDER / job.name
    table = csv_cache.open_table(options, dataset, cache_folder, chunk_rows)
    seconds["load"] = time.time() - started
    log.info("[%s] %d rows x %d columns from %s (streamed; cache %s %s)", job.name, table.rows,
             len(table.features), options["path"], "reused from" if table.reused else "written to",
             cache_folder)

    t = time.time()
    from . import model as model_lib
    from .tf_setup import configure, keras

    configure()
    seconds["tensorflow_import"] = time.time() - t
    hidden = job.model.hidden or model_lib.hidden_widths(len(table.features), job.model.latent)
    model_config = dataclasses.replace(job.model, hidden=tuple(hidden),
                                       output_activation=model_lib.output_activation(job.model, table))
    if getattr(model_config, "latent_activation", "") is None:  # resolved as pipeline.run_job does
        model_config = dataclasses.replace(model_config, latent_activation=model_config.activation)
    job = dataclasses.replace(job, model=model_config)

    t = time.time()
    keras.utils.set_random_seed(job.training.seed)
    encoder, _, autoencoder = model_lib.build(len(table.features), model_config, job.training.seed,
                                              model_config.output_activation)
    progress = Progress(job.name, job.training.epochs, job.training.log_every)
    losses = train_streamed(autoencoder, table, job.training, chunk_rows, progress)
    saved_encoder = model_lib.raw_row_encoder(encoder, table, name=f"{job.name}_encoder")
    sample = sample_rows(table.rows, PLOT_ROWS)
    sample_raw, sample_labels = table.take(sample)
    sample_coordinates = saved_encoder.predict(sample_raw, batch_size=4096, verbose=0)
    seconds["train"] = time.time() - t
    if not np.all(np.isfinite(sample_coordinates)):
        raise TrainingError("training produced NaN or infinite coordinates; nothing published")

    manifest = {
        "job": job.resolved(),
        "dataset": {"name": dataset.name, "source": source, "rows": table.rows,
                    "columns": len(table.features), "features": list(table.features),
                    "label_column": table.label_column, "id_column": table.id_column,
                    "normalize": table.normalize,
                    "offset": table.offset.tolist(), "scale": table.scale.tolist(),
                    "input_file": {"path": options["path"], "sha256": table.input_sha256},
                    "rows_sha256": table.sha256},
        "versions": versions(),
        "seed": job.training.seed,
        "training": {"engine": "reducer compiled loop (XLA), fed in shuffled chunks",
                     "epochs": job.training.epochs, "loss_per_epoch": list(losses), "final_loss": losses[-1]},
        "streaming": {"chunk_rows": chunk_rows,
                      "block_rows": block_rows(chunk_rows, min(job.training.batch_size, table.rows)),
                      "cache": str(cache_folder), "cache_reused": table.reused, "plot_rows": int(len(sample)),
                      "plot_sample_seed": SAMPLE_SEED},
    }
    t = time.time()
    quality = _quality(job, autoencoder, table, sample_raw, sample_coordinates, sample_labels)
    if quality is not None:
        manifest["quality"], manifest["subtitle"] = quality
    seconds["quality"] = time.time() - t
    shown = SimpleNamespace(features=table.features, id_column=table.id_column,
                            label_column=table.label_column, ids=None, labels=sample_labels)
    publish(job, destination, shown, sample_coordinates, saved_encoder, manifest, seconds, started,
            write_embedding=lambda path: write_embedding(path, table, saved_encoder))
    return manifest


def train_streamed(autoencoder, table, config, chunk_rows, progress=None):
    """Train in place on every row of the cache, `config.epochs` times; returns the loss per epoch.

    Each epoch shuffles the cache's blocks of BLOCK_ROWS rows, gathers about `chunk_rows` rows
    of them at a time, shuffles those rows and runs one pass of train.py's compiled loop over
    them. An epoch's loss is the mean over all its rows, as in memory.
    """
    from .tf_setup import keras, tf
    from .train import _epoch_runner

    rows, columns = table.rows, len(table.features)
    batch_size = min(config.batch_size, rows)
    block = block_rows(chunk_rows, batch_size)
    blocks_per_chunk = max(1, chunk_rows // block)
    full_blocks, tail = divmod(rows, block)
    optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate)
    optimizer.build(autoencoder.trainable_variables)
    runners = {}  # rows in a chunk -> compiled runner: a chunk's shape is static under XLA
    shuffle = np.random.default_rng(config.seed)
    losses = []
    for epoch in range(1, config.epochs + 1):
        # The short block goes last, so every epoch has the same few chunk sizes to compile.
        order = [*shuffle.permutation(full_blocks), *([full_blocks] if tail else [])]
        total = 0.0
        for first in range(0, len(order), blocks_per_chunk):
            x = table.normalised(np.concatenate([table.raw(b * block, block)
                                                 for b in order[first:first + blocks_per_chunk]]))
            n = len(x)
            if n not in runners:
                runners[n] = _epoch_runner(autoencoder, optimizer, n, columns, min(batch_size, n))
            permutation = shuffle.permutation(n).astype(np.int32)[None, :]
            loss = float(runners[n](tf.constant(x), tf.constant(permutation), tf.constant(1)).numpy()[0])
            if not np.isfinite(loss):
                raise TrainingError(f"training diverged: loss is {loss} at epoch {epoch}; "
                                    f"try a smaller learning_rate")
            total += loss * n
        losses.append(total / rows)
        if progress:
            progress(losses)
    return tuple(losses)


def write_embedding(path, table, encoder):
    """embedding.csv as outputs.write_embedding writes it, one piece of the cache at a time."""
    import pandas as pd

    step = csv_cache.READ_ROWS
    ids = table.id_chunks(step)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        for start in range(0, table.rows, step):
            coordinates = encoder.predict(table.raw(start, step), batch_size=4096, verbose=0)
            if not np.all(np.isfinite(coordinates)):
                raise TrainingError(f"training produced NaN or infinite coordinates (rows from {start + 1}); "
                                    f"nothing published")
            columns = {"id": next(ids)}
            if table.label_column is not None:
                columns["label"] = table.labels(start, step)
            for k in range(coordinates.shape[1]):
                columns[f"component_{k + 1}"] = coordinates[:, k].astype(np.float64)
            pd.DataFrame(columns).to_csv(handle, header=start == 0, index=False, lineterminator="\n",
                                         float_format="%.9g")


def _quality(job, autoencoder, table, sample_raw, coordinates, labels):
    """(the manifest's quality section, the plot's subtitle) on the sample, or None when the
    job turns them off ([quality] enabled = false) or this checkout has no quality metrics."""
    try:
        from . import quality
    except ImportError:
        return None
    settings = getattr(job, "quality", None)
    if settings is not None and not settings.enabled:
        return None
    x = table.normalised(sample_raw)
    reconstruction = autoencoder.predict(x, batch_size=4096, verbose=0)
    limit = {"max_rows": settings.max_rows} if settings is not None else {}
    section = quality.evaluate(x, coordinates, labels, reconstruction, **limit)
    section["sampled"] = bool(section["rows"] < table.rows)
    section["rows_in_table"] = table.rows
    return section, quality.subtitle(section)
