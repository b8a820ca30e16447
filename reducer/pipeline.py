"""One job, start to finish: load, check, train, publish. TensorFlow is imported here lazily."""

import dataclasses
import logging
import platform
import time
import traceback
from concurrent import futures
from pathlib import Path

import numpy as np

from . import __version__, outputs
from .data import make_table
from .errors import PluginError, ReducerError, TrainingError
from .progress import Progress

log = logging.getLogger("reducer")
OUTPUT_FILES = ("embedding.csv", "plot.png", "manifest.json")


@dataclasses.dataclass(frozen=True)
class Destination:
    """Where one job's files go."""

    outputs_root: Path
    models_root: Path

    def job_folder(self, name):
        return Path(self.outputs_root) / name

    def model_path(self, name):
        return Path(self.models_root) / f"{name}.keras"

    def model_info_path(self, name):
        return Path(self.models_root) / f"{name}.json"


def load_rows(job, dataset, source=None):
    try:
        return dataset.load(dict(job.dataset_options))
    except ReducerError as exc:
        raise type(exc)(f"dataset {dataset.name!r}: {exc}") from None
    except (Exception, SystemExit) as exc:  # a plugin's bug: name the plugin, keep the run going
        raise PluginError(f"dataset {dataset.name!r}{f' (plugin {source})' if source else ''} failed to "
                          f"load{_raised_at(exc, source)}: {type(exc).__name__}: {exc}") from exc


def _raised_at(exc, source):
    """' at line N of plugin.py' for the plugin file's innermost frame, when there is one."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if source and f.filename == str(source)]
    return f" at line {frames[-1].lineno} of {Path(frames[-1].filename).name}" if frames else ""


def load_table(job, dataset, source=None):
    """The job's rows, loaded by the dataset's plugin and checked: a `data.Table`."""
    return make_table(load_rows(job, dataset, source), dataset, job.dataset_options)


def versions():
    import matplotlib
    import pandas

    from .tf_setup import keras, tf

    return {"python": platform.python_version(), "reducer": __version__, "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__, "pandas": pandas.__version__,
            "matplotlib": matplotlib.__version__}


def input_file_digest(job):
    path = job.dataset_options.get("path")
    if path and Path(path).is_file():
        return {"path": path, "sha256": outputs.sha256_file(path)}
    return None


def run_job(job, dataset, source, destination):
    """Train one job and publish its files; returns the manifest (a dict)."""
    if dataset.name == "csv" and job.dataset_options.get("streaming"):  # larger than memory
        from .streaming import run_streamed_job

        return run_streamed_job(job, dataset, source, destination)
    started = time.time()
    seconds = {}
    table = load_table(job, dataset, source)
    seconds["load"] = time.time() - started
    log.info("[%s] %d rows x %d columns from dataset %r", job.name, len(table.x), len(table.features),
             dataset.name)

    t = time.time()
    from . import model as model_lib
    from .tf_setup import configure

    configure()
    seconds["tensorflow_import"] = time.time() - t
    hidden = job.model.hidden or model_lib.hidden_widths(len(table.features), job.model.latent)
    model_config = dataclasses.replace(job.model, hidden=tuple(hidden),
                                       output_activation=model_lib.output_activation(job.model, table),
                                       latent_activation=job.model.latent_activation or job.model.activation)
    job = dataclasses.replace(job, model=model_config)

    graph = None
    if model_config.objective == "neighbors":  # the kNN graph first (neighbor_train.py)
        from . import neighbor_train

        graph = neighbor_train.graph_of(table.x, model_config, seconds)
    (decoder, saved_encoder, coordinates, history), reference = train_beside_reference(
        job, table, model_config, graph, seconds)
    quality = None
    if job.quality.enabled:
        t = time.time()
        quality = measure_quality(job, reference.result(), coordinates, decoder)
        seconds["quality"] = time.time() - t

    manifest = {
        "job": job.resolved(),
        "dataset": {"name": dataset.name, "source": source, "rows": int(table.x.shape[0]),
                    "columns": int(table.x.shape[1]), "features": list(table.features),
                    "label_column": table.label_column, "id_column": table.id_column,
                    "normalize": table.normalize, "offset": table.offset.tolist(),
                    "scale": table.scale.tolist(), "input_file": input_file_digest(job),
                    "rows_sha256": table.sha256},
        "versions": versions(),
        "seed": job.training.seed,
        "training": {"engine": "reducer compiled loop (XLA)", "epochs": job.training.epochs,
                     "loss_per_epoch": list(history.losses), "final_loss": history.final_loss},
        "quality": quality,
    }
    if graph is not None:
        manifest["training"].update(engine="reducer neighbour loop (XLA)", graph=graph.details())
    if quality is not None:
        from .quality import subtitle

        manifest["subtitle"] = subtitle(quality)
    publish(job, destination, table, coordinates, saved_encoder, manifest, seconds, started)
    return manifest


def train_beside_reference(job, table, model_config, graph, seconds):
    """train_and_encode's result, and the quality metrics' map-independent half (a Future, or
    None when they are off), which runs beside the training loop from the end of its first chunk
    of epochs: by then tracing and compiling (Python, holding the GIL) are over, and so is the
    kNN graph, which imports scikit-learn too (two threads importing it at once can deadlock in
    its circular imports)."""
    started = []

    def start_reference():
        if not started:
            started.append(start_quality_reference(job, table))

    try:
        result = train_and_encode(job, table, model_config, graph, seconds, after_first_chunk=start_reference)
        start_reference()  # if training reported no chunk
    except Exception:
        if started and started[0] is not None:  # leave nothing of this attempt running
            started[0].cancel()
            futures.wait(started)
        raise
    return result, started[0]


def train_and_encode(job, table, model_config, graph, seconds, after_first_chunk=None):
    """Build and train the model, then place every row: (decoder, the saved encoder with the
    input's normalisation inside, coordinates, history). after_first_chunk() is called once the
    training loop has run its first chunk of epochs."""
    from . import model as model_lib
    from . import neighbor_train, train
    from .tf_setup import keras

    t = time.time()
    keras.utils.set_random_seed(job.training.seed)
    encoder, decoder, autoencoder = model_lib.build(len(table.features), model_config, job.training.seed,
                                                    model_config.output_activation)
    show = Progress(job.name, job.training.epochs, job.training.log_every)

    def progress(losses):
        show(losses)
        if after_first_chunk is not None:
            after_first_chunk()
    if graph is not None:
        history = neighbor_train.train(encoder, decoder, table.x, graph, model_config, job.training,
                                       progress=progress)
    else:
        history = train.train(autoencoder, table.x, job.training, progress=progress)
    saved_encoder = model_lib.raw_row_encoder(encoder, table, name=f"{job.name}_encoder")
    coordinates = model_lib.apply(saved_encoder, table.raw)
    seconds["train"] = time.time() - t
    if not np.all(np.isfinite(coordinates)):
        raise TrainingError("training produced NaN or infinite coordinates; nothing published")
    return decoder, saved_encoder, coordinates, history


def start_quality_reference(job, table):
    """Start the map-independent half of the quality metrics (quality.Reference: scikit-learn's
    import, the input's neighbour ranks, PCA) in a background thread; a Future, or None when the
    job turns the metrics off. It runs while the model trains: training holds one core and,
    inside its compiled loop, not the GIL, so on two cores the metrics add ~0.1 s, not ~1.5 s.
    Started after TensorFlow's import (tf_setup hides scikit-learn from Keras during it) and
    after anything else in this thread that imports scikit-learn (see train_beside_reference)."""
    if not job.quality.enabled:
        return None
    from . import quality

    pool = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="reducer-quality")
    try:
        return pool.submit(quality.Reference, table.x, table.labels, job.model.latent, job.quality.max_rows)
    finally:
        pool.shutdown(wait=False)  # the thread ends with its one task


def measure_quality(job, reference, coordinates, decoder):
    """The manifest's `quality` section (reducer/quality.py); the decoder's reconstruction counts
    only where the decoder was trained."""
    from . import model as model_lib

    def reconstruction(rows):  # called for the sampled rows only: cheap on large tables
        return model_lib.apply(decoder, coordinates[rows])

    trained_decoder = job.model.objective != "neighbors" or job.model.reconstruction_weight > 0
    return reference.evaluate(coordinates, reconstruction if trained_decoder else None)


def publish(job, destination, table, coordinates, saved_encoder, manifest, seconds, started,
            write_embedding=None):
    """Stage every file, then rename them into place, the manifest last. write_embedding(path),
    when given, writes embedding.csv instead of `table` and `coordinates` (streaming.py)."""
    folder = destination.job_folder(job.name)
    outputs.ensure_writable_folder(folder)
    outputs.ensure_writable_folder(destination.models_root)
    targets = {
        "model": destination.model_path(job.name),
        "model_info": destination.model_info_path(job.name),
        "embedding": folder / "embedding.csv",
        "plot": folder / "plot.png",
    }
    staged = []
    try:
        t = time.time()
        staged.append((outputs.stage(targets["model"], lambda p: outputs.save_keras(p, saved_encoder)),
                       targets["model"]))
        model_info = {"job": job.name, "features": list(table.features), "id_column": table.id_column,
                      "label_column": table.label_column, "latent": job.model.latent,
                      "reducer": manifest["versions"]["reducer"]}
        staged.append((outputs.stage(targets["model_info"], lambda p: outputs.write_json(p, model_info)),
                       targets["model_info"]))
        staged.append((outputs.stage(targets["embedding"], write_embedding or (lambda p: outputs.write_embedding(
            p, table.ids, table.labels, coordinates))), targets["embedding"]))
        seconds["save"] = time.time() - t
        t = time.time()
        staged.append((outputs.stage(targets["plot"], lambda p: outputs.write_plot(
            p, job.name, coordinates, table.labels, manifest.get("subtitle"))), targets["plot"]))
        seconds["plot"] = time.time() - t
        seconds["total"] = time.time() - started
        manifest["seconds"] = {k: round(v, 3) for k, v in seconds.items()}
        manifest["files"] = {name: {"path": str(target), "sha256": outputs.sha256_file(temp),
                                    "bytes": Path(temp).stat().st_size}
                             for name, (temp, target) in zip(targets, staged)}
        staged += outputs.stage_manifest(folder, manifest, outputs.run_stamp())
    except BaseException:
        outputs.discard(staged)
        raise
    outputs.publish(staged)  # the manifest comes after the files it lists: it marks the run complete
    outputs.prune_history(folder)
