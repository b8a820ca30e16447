"""One job, start to finish, over any table (in memory or in the float32 cache):
load -> check -> (graph) -> train -> encode -> measure -> publish.

TensorFlow is imported here lazily, after the rows are read and checked, so a job with bad
data fails in a second without it.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import socket
import time
from concurrent import futures
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Optional, Tuple

import numpy as np

from reducer import __version__, continuity, defaults, files, gate, publish, published, stopping
from reducer import quality as quality_lib
from reducer.datasets.options import as_written
from reducer.errors import TrainingError
from reducer.progress import Progress, Stage
from reducer.tables import storage

if TYPE_CHECKING:  # types only: the engine and scikit-learn are imported where they run
    from reducer.config import Job
    from reducer.datasets.dataset import Dataset
    from reducer.engine.neighbors import Graph
    from reducer.engine.train import History
    from reducer.quality import Reference
    from reducer.tables.storage import Storage
    from reducer.tables.table import Table

log = logging.getLogger("reducer")
ANCHOR_BLOCK = 65536  # rows of raw values read at a time for the warm start's anchor
FALLBACK_WARNING = "reconstruction map, not the neighbour map"
COLLAPSED = 1e-6  # a map whose extent is this small, relative to its coordinates, is one point


def _figure(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def versions() -> dict[str, Optional[str]]:
    import matplotlib
    import pandas

    from reducer.engine.tf_setup import keras, tf

    return {"python": platform.python_version(), "reducer": __version__, "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__, "pandas": pandas.__version__,
            "matplotlib": matplotlib.__version__}


def input_file_digest(path: Optional[str]) -> Optional[dict[str, str]]:
    """{"path", "sha256"} of an input file, or None when there is no such file."""
    try:
        return {"path": path, "sha256": files.sha256_file(path)} if path else None
    except OSError:  # not a file this dataset reads as a whole: nothing to record
        return None


def _settings_text(job: Job, keys: Iterable[str]) -> str:
    shown = []
    for key in keys:
        value = job.setting(key)
        # as the job file would write it: [96, 96], true (not Python's (96, 96), True)
        text = as_written(value) if isinstance(value, bool) else list(value) if isinstance(value, tuple) else value
        shown.append(f"{key.split('.')[1]} = {text}")
    return ", ".join(shown)


def load_table(job: Job, dataset: Dataset, source: Optional[str] = None,
               destination: Optional[publish.Destination] = None, previous: Optional[continuity.Previous] = None,
               retrain: bool = False) -> tuple[Job, Table, Storage, Optional[dict[str, str]], Optional[str]]:
    """The job's table, checked and normalised, where `storage.choose` puts it; with the job
    sized to it (storage.sized_for), or with the sizing of the published run `previous` kept
    (continuity.sizing), the storage decision, the input file's digest and, when the
    neighbour map does not fit, why the job gets the reconstruction map instead (else None)."""
    input_file = input_file_digest(job.dataset_options.get("path"))
    folder = storage.cache_folder(destination.outputs_root, job.name) if destination else None
    table, place = storage.open_job_table(job, dataset, source, folder, input_file["sha256"] if input_file else None)
    rows, columns = table.rows, len(table.features)
    kept, why = continuity.sizing(previous, job, rows, columns, retrain)
    sized, fallback, need = storage.sized_for(job, table, kept)
    if fallback:
        log.warning("[%s] objective = reconstruction, the seed's: %s", job.name, fallback)
    elif need is not None:
        log.info("[%s] neighbour map: %s", job.name, need.text())
    if job.table_sized and not fallback:
        # one line saying what the job left to the table, what it got, and why
        chosen = [key for key in sized.chosen_by_reducer if key.split(".")[0] in continuity.TRAINING_SECTIONS]
        named = [key for key in defaults.sized_keys() if key not in sized.chosen_by_reducer]
        written = f"; written in the job file: {_settings_text(sized, named)}" if named else ""
        if kept is not None:
            log.info("[%s] sized settings kept from the published run, sized to %d rows x %d columns (%s): %s%s",
                     job.name, kept["rows"], kept["columns"], why, _settings_text(sized, chosen), written)
        elif previous is not None and chosen:
            log.info("[%s] sized again, to %d rows x %d columns (%s): %s%s", job.name, rows, columns, why,
                     _settings_text(sized, chosen), written)
        else:
            log.info("[%s] sized to %d rows x %d columns: %s%s", job.name, rows, columns,
                     _settings_text(sized, sized.chosen_by_reducer), written)
    job = sized
    if input_file is None and table.source:  # the file a plugin read by itself
        input_file = input_file_digest(table.source)
    return job, table, place, input_file, fallback


@dataclasses.dataclass
class Outcome:
    """How one attempt ended: "ok" (published), "unchanged" (nothing to do) or "rejected" (the
    quality gate kept yesterday's files); the manifest published or considered; why."""

    status: published.Status
    manifest: published.Manifest
    reason: Optional[str] = None


def run_job(job: Job, dataset: Dataset, source: Optional[str], destination: publish.Destination,
            force: bool = False, retrain: bool = False) -> Outcome:
    """Train one job and publish its files, unless nothing changed since its published run
    (and not `force`); returns an Outcome. retrain: train cold with fresh sizing and make the
    map a new baseline (still aligned onto the published one)."""
    started, started_at = time.time(), publish.utc_now()
    seconds = {}
    previous = continuity.Previous.find(destination.job_folder(job.name))
    written = job
    job, table, place, input_file, fallback = load_table(job, dataset, source, destination, previous, retrain)
    kept = storage.kept_columns(job, dataset, source, table)  # before training: a missing column ends it now
    sized = None if fallback else continuity.sizing_record(written, job, table.rows, len(table.features), previous,
                                                           retrain)
    seconds["load"] = time.time() - started
    log.info("[%s] %d rows x %d columns from dataset %r, held %s (%s)", job.name, table.rows,
             len(table.features), dataset.name, table.where, place.reason)
    fingerprint = continuity.fingerprint(job, source, table.sha256,
                                         continuity.header_digest(table.features, table.id_column, table.label_column))
    damaged = None
    if (previous is not None and not force and not retrain and job.continuity.skip_unchanged
            and previous.manifest.fingerprint == fingerprint):
        # "Unchanged" promises the published files: check them against the manifest first.
        damaged = publish.damaged_file(destination, job.name, previous.manifest)
        if damaged is None:
            before = previous.manifest.dataset.rows_order_sha256
            if before and before != table.order_sha256:
                log.info("[%s] same rows in a new order: nothing to train, published files untouched", job.name)
                return Outcome(published.Status.UNCHANGED, previous.manifest,
                               "same rows in a new order, same job, plugin and versions as the published run")
            return Outcome(published.Status.UNCHANGED, previous.manifest,
                           "same rows, job, plugin and versions as the published run")
        log.warning("[%s] the published %s is damaged: training and publishing again", job.name, damaged)
    resized = sized.reason if sized is not None and not sized.kept and previous is not None else None
    changed = continuity.changes(previous, job, fingerprint, resized) if previous is not None else []
    if damaged and damaged.startswith("embedding.csv"):
        previous = None  # no map to align to or measure drift against
    why = ("--retrain given: a cold start with fresh sizing, a new baseline" if retrain else
           f"{', '.join(changed)} changed since the published run" if changed else
           f"the published {damaged} is damaged" if damaged else
           "no published run yet" if previous is None else
           "--force given" if force else "[continuity] skip_unchanged = false")
    log.info("[%s] training: %s", job.name, why)
    baseline = continuity.baseline(previous, job, retrain)

    sample = published.sample_rows(table.rows)
    sample_raw, sample_labels = table.take(sample)  # the rows drawn and measured
    storage.check_labels(job, dataset, sample_labels, table.label_column)  # before any training
    storage.check_gate(job, dataset, sample_labels, table.label_column)  # as check --data decides it

    warm_from = None
    cold = [words for words in changed if words == continuity.SETTINGS_CHANGED or words.startswith(continuity.RESIZED)]
    if job.continuity.warm_start and retrain:
        log.info("[%s] cold start: --retrain given (a new baseline, aligned onto the published map)", job.name)
    elif job.continuity.warm_start and cold:
        # New settings are the user's word (or the table outgrew the sized ones): train them as a
        # first night would; the alignment still keeps the map's orientation.
        log.info("[%s] cold start: %s changed since the published run", job.name, cold[0])
    elif job.continuity.warm_start:
        warm_from = publish.published_version(destination.job_folder(job.name))
    label_kind = storage.declared_label_type(job, dataset)
    fitted = fit(job, table, sample_raw, sample_labels, seconds, warm_from, label_kind)
    job, graph, reference = fitted.job, fitted.graph, fitted.reference
    encoder, decoder, history = fitted.encoder, fitted.decoder, fitted.history
    from reducer.engine import model as model_lib

    t = time.time()
    saved_encoder = model_lib.raw_row_encoder(encoder, table, name=f"{job.name}_encoder")
    coordinates = model_lib.apply(saved_encoder, sample_raw)
    check_map(coordinates)
    codes = coordinates  # the decoder's input: the map before any alignment
    transform, drift = None, None
    # Tonight's map is compared with the last published map of its dimensions (issue 21).
    compared = continuity.comparable(previous, destination.job_folder(job.name), job.model.latent)
    if previous is not None and compared is not previous:
        log.info("[%s] the published map has %s dimensions, tonight's %d: compared with %s", job.name,
                 continuity.latent_of(previous.manifest), job.model.latent,
                 f"the last {job.model.latent}-dimensional map ({compared.folder})" if compared else "none")
    if compared is not None:
        sample_ids = table.ids_at(sample)
        if job.continuity.align:
            transform = continuity.alignment(sample_ids, coordinates, compared)
        if transform is not None:  # folded into the saved encoder: every consumer gets the aligned map
            saved_encoder = model_lib.raw_row_encoder(encoder, table, f"{job.name}_encoder", transform)
            coordinates = model_lib.apply(saved_encoder, sample_raw)
            check_map(coordinates)
    seconds["encode"] = time.time() - t
    quality = None
    if reference is not None:
        t = time.time()
        quality = measure_quality(job, reference.result(), coordinates, decoder, codes)
        if len(sample) < table.rows:  # measured on the plot's sample of a large table
            quality.update(sampled=True, rows_in_table=int(table.rows))
        seconds["quality"] = time.time() - t
    # After the quality thread, as drift below: both import scikit-learn.
    stacked = check_stacking(job.name, coordinates, table.normalised(sample_raw), sample_labels, label_kind)
    if compared is not None:  # after the quality thread: both import scikit-learn, which deadlocks at once
        drift = continuity.drift(sample_ids, coordinates, compared, transform,
                                 all_ids=table.ids() if len(sample) < table.rows else None)
        drift["against"] = continuity.against(compared, previous)
        log.info("[%s] %s the published map: %d shared rows, median displacement %s, neighbour overlap %s",
                 job.name, "aligned onto" if transform is not None else "compared with (not aligned)",
                 drift["shared_rows"], _figure(drift["median_displacement"]), _figure(drift.get("neighbor_overlap")))

    manifest = build_manifest(job, dataset, source, table, place, input_file, history, graph, quality,
                              len(sample))
    manifest.fingerprint = fingerprint
    manifest.drift = None if drift is None else published.Drift.from_json(drift)
    manifest.run = published.RunTimes(started_at=started_at, finished_at=None, host=socket.gethostname())
    if fallback:  # the summary line and the report say it too (results.py, report.py)
        manifest.training.extra["objective_fallback"] = f"{FALLBACK_WARNING}: {fallback}"
    manifest.sizing, manifest.baseline = sized, baseline
    if warm_from is not None:
        manifest.training.extra["warm_start"] = history.warm_start
    if history.start is not None:
        manifest.training.extra["start"] = history.start
    manifest.extra["map"] = stacked
    warnings = [quality_lib.stacking_warning(stacked),
                None if drift is None else continuity.row_number_warning(drift, table.id_column)]
    if any(warnings):
        manifest.extra["warnings"] = [w for w in warnings if w]
    shown = publish.Shown(coordinates=coordinates, labels=sample_labels, features=table.features,
                          id_column=table.id_column, label_column=table.label_column)
    missed = gate.misses(job.quality, quality, drift, new_baseline=baseline.new, published_before=previous is not None,
                         stacked=stacked)
    from reducer.report import write_map_page
    if not missed:
        continuity.keep_for_later(previous, destination.job_folder(job.name), job.model.latent)
    publish.publish_job(job, destination, table, lambda raw: model_lib.apply(saved_encoder, raw), shown,
                        saved_encoder, manifest, seconds, started, decoder=decoder, rejected=missed,
                        kept=kept, mode=files.mode_for(input_file["path"] if input_file else None),
                        map_page=write_map_page)
    if missed:
        return Outcome(published.Status.REJECTED, manifest, missed)
    return Outcome(published.Status.OK, manifest)


@dataclasses.dataclass
class Fitted:
    """What `fit` trained: the job with its model resolved against the table, the encoder over
    normalised rows, the decoder, the training history, the kNN graph (neighbour objective) and
    the quality metrics' map-independent half (a Future, or None when they are off)."""

    job: Job
    encoder: Any
    decoder: Any
    history: History
    graph: Optional[Graph]
    reference: Optional[futures.Future[Reference]]


def fit(job: Job, table: Table, sample_raw: np.ndarray, sample_labels: Optional[np.ndarray],
        seconds: Dict[str, float], warm_from: Optional[Path] = None, label_kind: Optional[str] = None) -> Fitted:
    """The training step of a job, and of reducer.Map.fit (one mechanism): TensorFlow set up, the
    model sized to the table, the kNN graph for the neighbour objective, then the model trained
    beside the quality reference on the sample's rows (`sample_raw`, raw values)."""
    t = time.time()
    from reducer.engine import model as model_lib
    from reducer.engine.tf_setup import configure

    configure()
    seconds["tensorflow_import"] = time.time() - t
    job = dataclasses.replace(job, model=model_lib.resolve(job.model, table))
    graph = None
    if job.model.objective == "neighbors":  # the kNN graph first (engine/neighbor_train.py)
        from reducer.engine import neighbor_train
        from reducer.engine.neighbors import TableRows

        graph = neighbor_train.graph_of(TableRows(table), job.model, seconds, seed=job.training.seed,
                                        progress=Stage(job.name, "neighbour graph", "rows"))
        log.info("[%s] neighbour graph: %s search, %s edges (%s), widest row %s", job.name,
                 graph.method, f"{graph.edges:,}", storage.size_text(graph.nbytes), f"{int(graph.degree.max()):,}")
    trained, reference = train_beside_reference(job, table, graph, table.normalised(sample_raw), sample_labels,
                                                seconds, warm_from, label_kind)
    encoder, decoder, history = trained
    return Fitted(job, encoder, decoder, history, graph, reference)


def check_map(coordinates: np.ndarray) -> None:
    """A map is published only when it is one: finite, and not every row at one spot (a
    diverged or saturated model can place every row on the same point with a finite loss)."""
    if not np.all(np.isfinite(coordinates)):
        raise TrainingError("training produced NaN or infinite coordinates")
    spread = float(np.ptp(coordinates, axis=0).max()) if len(coordinates) > 1 else 1.0
    size = max(1.0, float(np.abs(coordinates).max()))
    if spread <= COLLAPSED * size:
        raise TrainingError("training collapsed the map: every row lands on one point; try a smaller learning_rate")


def check_stacking(name: str, coordinates: np.ndarray, x: np.ndarray, labels: Optional[np.ndarray] = None,
                   label_kind: Optional[str] = None) -> dict[str, Any]:
    """The manifest's `map` section (quality.stacking: how many distinct rows share a point, which
    classes of the label mostly do, the nearest-neighbour distance and the largest coordinate);
    logs a warning when a large share of the rows, or most of a class, sits on top of others,
    which check_map's one-point test does not catch. reducer.Map.fit calls it too."""
    section = quality_lib.stacking(coordinates, x, labels, label_kind)
    warning = quality_lib.stacking_warning(section)
    if warning:
        log.warning("[%s] %s", name, warning)
    return section


def build_manifest(job: Job, dataset: Dataset, source: Optional[str], table: Table, place: Storage,
                   input_file: Optional[dict[str, str]], history: History, graph: Optional[Graph],
                   quality: Optional[dict[str, Any]], plot_rows: int) -> published.Manifest:
    """The manifest of one run: everything but the files and the seconds, which publishing adds."""
    training = published.Training(engine=history.engine, epochs=job.training.epochs,
                                  loss_per_epoch=list(history.losses), final_loss=history.final_loss)
    manifest = published.Manifest(
        job=job.resolved(),
        dataset=published.DatasetFacts(
            name=dataset.name, source=source, rows=int(table.rows), columns=len(table.features),
            features=list(table.features), label_column=table.label_column, id_column=table.id_column,
            normalize=table.normalize, offset=table.offset.tolist(), scale=table.scale.tolist(),
            input_file=input_file, rows_sha256=table.sha256, rows_order_sha256=table.order_sha256),
        table=place.section(),
        versions=versions(),
        seed=job.training.seed,
        training=training,
        quality=None if quality is None else published.Quality.from_json(quality),
    )
    if graph is not None:
        training.extra["graph"] = graph.details()
    cached = table.cache_facts()
    if cached is not None:
        from reducer.engine.train import block_rows

        chunk_rows = storage.chunk_rows(job)
        manifest.streaming = {
            "chunk_rows": chunk_rows, "block_rows": block_rows(chunk_rows, min(job.training.batch_size, table.rows)),
            **cached, "plot_rows": int(plot_rows), "plot_sample_seed": published.SAMPLE_SEED}
    if quality is not None:
        from reducer.quality import subtitle

        manifest.subtitle = subtitle(quality)
    return manifest


def train_beside_reference(job: Job, table: Table, graph: Optional[Graph], sample_x: np.ndarray,
                           sample_labels: Optional[np.ndarray], seconds: dict[str, float],
                           warm_from: Optional[Path] = None, label_kind: Optional[str] = None,
                           ) -> tuple[tuple[Any, Any, History], Optional[futures.Future[Reference]]]:
    """train()'s result, and the quality metrics' map-independent half (a Future, or None when
    they are off), which runs beside the training loop from the end of its first chunk of
    epochs: by then tracing and compiling (Python, holding the GIL) are over, and so is the
    kNN graph, which imports scikit-learn too (two threads importing it at once can deadlock in
    its circular imports)."""
    started: list[Optional[futures.Future[Reference]]] = []

    def start_reference() -> None:
        if not started:
            started.append(start_quality_reference(job, sample_x, sample_labels, label_kind))

    try:
        result = train(job, table, graph, seconds, after_first_chunk=start_reference, warm_from=warm_from)
        start_reference()  # if training reported no chunk
    except BaseException:  # a failure, or a stop (SIGTERM, Ctrl-C)
        if started and started[0] is not None:  # leave nothing of this attempt running
            started[0].cancel()
            futures.wait([started[0]])
        raise
    return result, started[0]


def train(job: Job, table: Table, graph: Optional[Graph], seconds: dict[str, float],
          after_first_chunk: Optional[Callable[[], None]] = None,
          warm_from: Optional[Path] = None) -> tuple[Any, Any, History]:
    """_build_and_train with SIGTERM and Ctrl-C held from the model's build to the loop's end: the
    loops stop between two compiled calls (stopping.check), never wherever Python happens to be
    inside TensorFlow's layer, whose bare `except:` clauses turned a stop raised there into a
    TypeError (an internal error, exit 70) or swallowed it."""
    with stopping.held(second_at_once=True):
        return _build_and_train(job, table, graph, seconds, after_first_chunk, warm_from)


def _build_and_train(job: Job, table: Table, graph: Optional[Graph], seconds: dict[str, float],
                     after_first_chunk: Optional[Callable[[], None]] = None,
                     warm_from: Optional[Path] = None) -> tuple[Any, Any, History]:
    """Build and train the model: (encoder, decoder, history). The loop follows the objective and
    where the table is: the neighbour loop, the compiled loop over every row in memory, or the
    same loop fed chunks from disk. warm_from: the published run's version folder, whose weights
    start the training when the architecture matches (then `warm_epochs` epochs). history gets
    a `warm_start` attribute: what happened. after_first_chunk() is called once the loop has run
    its first chunk of epochs."""
    from reducer.engine import model as model_lib
    from reducer.engine import neighbor_train, train as engine
    from reducer.engine.neighbors import TableRows
    from reducer.engine.tf_setup import keras

    t = time.time()
    keras.utils.set_random_seed(job.training.seed)
    activation = job.model.output_activation
    assert activation is not None, "model.resolve fills in the output activation before training"
    published_model, why_not, decoder_weights = None, None, None
    if warm_from is not None:
        trains_decoder = job.model.objective != "neighbors" or job.model.reconstruction_weight > 0
        why_not, published_model, decoder_weights = model_lib.load_published(warm_from, needs_decoder=trains_decoder)
    # Read a block at a time into the one array the training loop shares (a cached table's rows
    # are never all in memory twice).
    rows = neighbor_train.rows_in_memory(TableRows(table)) if graph is not None else None
    robust, statistics = (robust_input(job.name, table, rows, published_model)
                          if job.model.robust_input and rows is not None else (False, None))
    encoder, decoder, autoencoder = model_lib.build(len(table.features), job.model, job.training.seed, activation,
                                                    robust_input=robust)
    warm, anchor = None, None
    if warm_from is not None:
        if why_not is None:
            why_not = model_lib.warm_start(encoder, decoder, published_model, decoder_weights)
        if why_not is None:
            # warm_epochs is filled in from the table (Job.with_table_defaults) before any training
            _, rate, strength = defaults.warm_schedule(job.model.objective, job.training.epochs)
            if graph is not None and strength > 0:
                anchor = warm_anchor(job.name, table, published_model, encoder.name, warm_from, strength)
            if anchor is None:
                # No anchor (the reconstruction objective, or a published map without one): a few
                # gentle epochs, since Adam moves every weight by about the learning rate per step
                # whatever the gradient, so full-strength epochs would carry the map away again.
                rate = defaults.GENTLE_LEARNING_RATE
            training = dataclasses.replace(job.training, epochs=job.continuity.warm_epochs or 1,
                                           learning_rate=job.training.learning_rate * rate)
            job = dataclasses.replace(job, training=training)
            warm = {"from": warm_from.name, "epochs": training.epochs, "learning_rate": training.learning_rate,
                    "anchor": None if anchor is None else {
                        "strength": anchor.strength, "rows_held": int((anchor.weights > 0).sum())}}
            log.info("[%s] warm start from the published run's weights (%s): %d epochs at learning rate %g%s",
                     job.name, warm_from.name, training.epochs, training.learning_rate,
                     "" if anchor is None else
                     f", the {int((anchor.weights > 0).sum())} rows of the published map held near their places")
        else:
            warm = {"from": None, "reason": why_not}
            log.info("[%s] cold start: %s", job.name, why_not)
    show = Progress(job.name, job.training.epochs, job.training.log_every)

    def progress(losses: Any, *steps: Any) -> None:
        show(losses, *steps)
        if after_first_chunk is not None:
            after_first_chunk()

    if graph is not None and rows is not None:
        history = neighbor_train.train(encoder, decoder, rows, graph, job.model, job.training, progress=progress,
                                       standardise=table.normalize in neighbor_train.UNCENTRED,
                                       start_layout=not (warm and warm.get("from")), anchor=anchor,
                                       input_statistics=statistics)
    else:
        history = engine.train_table(autoencoder, table, job.training, storage.chunk_rows(job), progress=progress)
    history = dataclasses.replace(history, warm_start=warm)
    seconds["train"] = time.time() - t
    return encoder, decoder, history


def robust_input(name: str, table: Table, rows: Any, published_model: Any) -> Tuple[bool, Optional[Any]]:
    """Whether the encoder gets the robust input (engine/model.py, HEAVY_RATIO), the job allowing
    it: as the published encoder has it where there is one to warm-start from (same columns),
    else where one of the table's columns is heavy (a table with none keeps the plain encoder,
    the same numbers); and the rows' input statistics where they were computed (the decision's,
    so a cold start need not compute them again), else None."""
    from reducer.engine import model as model_lib

    inner = None if published_model is None else model_lib.published_encoder(published_model, model_lib.ENCODER_NAME)
    if inner is not None and inner.input_shape[-1] == rows.shape[1]:
        return model_lib.has_robust_input(inner), None
    statistics = model_lib.input_statistics(rows)
    heavy = model_lib.heavy_columns(statistics)
    if heavy.any():
        names = [str(column) for column, is_heavy in zip(table.features, heavy) if is_heavy]
        log.info("[%s] robust input: %d of %d columns spread by a few far values, drawn apart and squashed: %s",
                 name, len(names), len(heavy),
                 ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else ""))
    return bool(heavy.any()), statistics


def warm_anchor(name: str, table: Table, published_model: Any, encoder_name: str, warm_from: Path,
                strength: float) -> Optional[Any]:
    """The neighbor_train.Anchor of a warm night: every row's code under the published model
    (in the warm encoder's frame), held with weight 1 where its id is on the published map
    (`warm_from`'s embedding.csv); None when no row is shared or the published model or map
    cannot give them (then the warm start is gentle, and the log says why)."""
    from reducer.engine import model as model_lib
    from reducer.engine.neighbor_train import Anchor

    try:
        previous_ids = published.read_embedding(warm_from / published.EMBEDDING).ids
    except (OSError, ValueError, published.PublishedRecordError) as exc:  # damaged: cut off, not CSV
        log.info("[%s] no anchor for the warm start: the published embedding.csv cannot be read (%s)", name, exc)
        return None
    ids = np.concatenate(list(table.id_chunks())) if table.rows else np.empty(0, dtype=object)
    here, _ = continuity.shared_rows(ids, previous_ids)
    if len(here) == 0:
        return None
    raw = np.concatenate([table.raw(start, ANCHOR_BLOCK) for start in range(0, table.rows, ANCHOR_BLOCK)])
    codes = model_lib.published_codes(published_model, encoder_name, raw)
    if codes is None:
        log.info("[%s] no anchor for the warm start: the published model has no normalise layer", name)
        return None
    weights = np.zeros(table.rows, dtype=np.float32)
    weights[here] = 1.0
    return Anchor(codes=codes, weights=weights, strength=float(strength))


def start_quality_reference(job: Job, x: np.ndarray, labels: Optional[np.ndarray],
                            label_kind: Optional[str] = None) -> Optional[futures.Future[Reference]]:
    """Start the map-independent half of the quality metrics (quality.Reference: scikit-learn's
    import, the input's neighbour ranks, PCA) in a background thread; a Future, or None when the
    job turns the metrics off. It runs while the model trains: training holds one core and,
    inside its compiled loop, not the GIL, so on two cores the metrics add ~0.1 s, not ~1.5 s.
    Started after TensorFlow's import (tf_setup hides scikit-learn from Keras during it) and
    after anything else in this thread that imports scikit-learn (see train_beside_reference).
    BLAS and OpenMP run on one thread meanwhile (`reference_beside_training`)."""
    if not job.quality.enabled:
        return None
    pool = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="reducer-quality")
    try:
        return pool.submit(reference_beside_training, x, labels, job.model.latent, job.quality.max_rows, label_kind)
    finally:
        pool.shutdown(wait=False)  # the thread ends with its one task


def reference_beside_training(x: np.ndarray, labels: Optional[np.ndarray], dims: int, max_rows: int,
                              label_kind: Optional[str] = None) -> Reference:
    """quality.Reference with BLAS and OpenMP limited to one thread (threadpoolctl). Beside the
    training loop, which keeps a core busy, OpenBLAS's second thread has no core to run on:
    PCA's LAPACK call, which holds the GIL throughout, then spun for 0.3-2 s instead of 0.02 s
    (digits, 2 cores), and the training loop's thread waited for the GIL between two compiled
    calls for as long (benchmarks/README.md, issue 23's time). The same numbers: the sample is
    small, and the metrics' arithmetic does not depend on the thread count (tests/test_quality.py).
    The limit is the process's while it holds (OpenBLAS has one), and only TensorFlow, whose
    kernels are Eigen's, works beside it."""
    from threadpoolctl import threadpool_limits

    from reducer import quality

    with threadpool_limits(limits=1):
        return quality.Reference(x, labels, dims, max_rows, kind=label_kind)


def measure_quality(job: Job, reference: Reference, coordinates: np.ndarray, decoder: Any,
                    codes: Optional[np.ndarray] = None) -> dict[str, Any]:
    """The manifest's `quality` section (reducer/quality.py) of the published `coordinates`; the
    decoder's reconstruction counts only where the decoder was trained, from `codes`: the same
    rows' map before it was aligned onto last night's (the decoder never saw the aligned map:
    fed it, an aligned night's reconstruction error read several times PCA's). Without `codes`,
    `coordinates` are the decoder's own."""
    from reducer.engine import model as model_lib

    decoded_from = coordinates if codes is None else codes

    def reconstruction(rows: np.ndarray) -> np.ndarray:  # called for the sampled rows only: cheap on large tables
        return model_lib.apply(decoder, decoded_from[rows])

    trained_decoder = job.model.objective != "neighbors" or job.model.reconstruction_weight > 0
    return reference.evaluate(coordinates, reconstruction if trained_decoder else None)
