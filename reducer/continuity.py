"""Night after night: last night's published map, and what tonight's run does with it.

- `fingerprint`: what a run depends on (the rows, the job, the plugin's code, the versions).
  A job whose fingerprint equals its published run's is not trained again.
- `procrustes` / `alignment`: the rotation or reflection, uniform scale and translation that
  best lay tonight's map on last night's, on the rows present both nights (matched by id).
  The pipeline folds it into the saved encoder, so every consumer gets the aligned map.
- `drift`: how far the shared rows moved, and how many of their map neighbours they kept.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Optional, Tuple

import numpy as np

from reducer import __version__, published
from reducer.datasets.code import code_digest

if TYPE_CHECKING:
    from reducer.config import Job

NEIGHBORS_K = 10  # map neighbours compared night to night
# Below this share of map neighbours kept night to night, a table without an id column is
# warned that its rows are matched by row number (warm nights with rows appended keep ~0.9;
# 21 rows inserted at the top of 441 gave 0.07).
ROW_NUMBER_OVERLAP = 0.5
DRIFT_MAX_ROWS = 5000  # neighbour overlap on a fixed-seed sample of the shared rows beyond this


def _package_version(*names: str) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def header_digest(features: Any, id_column: Optional[str], label_column: Optional[str]) -> str:
    """sha256 of the table's header as the map reads it: the feature columns' names in order,
    and which columns are the id and the label. Rows alone would not see two swapped names."""
    header = {"features": [str(name) for name in features], "id": id_column, "label": label_column}
    return hashlib.sha256(json.dumps(header, sort_keys=True, default=str).encode()).hexdigest()


def fingerprint(job: Job, source: str | None, rows_sha256: str, header_sha256: str | None = None) -> dict[str, Any]:
    """What a published run depends on; equal fingerprints give the same map, so no retraining.
    header_sha256: header_digest of the table. TensorFlow's version is read from its package
    metadata: deciding imports nothing heavy."""
    resolved = job.resolved()
    resolved.pop("continuity", None)  # how to continue does not change what the map is
    return {
        "rows_sha256": rows_sha256,
        "header_sha256": header_sha256,
        "job_sha256": hashlib.sha256(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest(),
        "plugin": code_digest(source),  # its file, every file of its folder, or its package's files
        "reducer": __version__,
        "tensorflow": _package_version("tensorflow", "tensorflow-cpu"),
        "keras": _package_version("keras"),
    }


# The fingerprint's parts, in words for the log line that says why a job trains again.
CHANGES = (("rows_sha256", "the rows"), ("header_sha256", "the table's column names"), ("job_sha256", "the job file"), ("plugin", "the dataset's plugin code"),
           ("reducer", "reducer's version"), ("tensorflow", "TensorFlow's version"), ("keras", "Keras's version"))
SETTINGS_CHANGED = "the job's [model] or [training] settings"
TRAINING_SECTIONS = ("model", "training")  # what the weights were trained under


def settings_changed(previous: Previous, job: Job) -> bool:
    """Whether the job trains under other [model] or [training] settings than the published
    run did (its path, dataset options or gate may have changed without that). Settings still
    None are filled from the table by the model (model.resolve) the same way both nights, and
    log_every changes no weight. A setting the published manifest does not record came with a
    later reducer (robust_input): the published run trained without it, and a warm start keeps
    what the published model is, so it changes nothing (else every job would train cold, its
    map jumping, on the first night after an upgrade)."""
    now = json.loads(json.dumps(job.resolved(), default=str))
    before = previous.manifest.job
    return any(key in (before.get(section) or {}) and before[section][key] != value
               for section in TRAINING_SECTIONS for key, value in now[section].items()
               if value is not None and key != "log_every")


def changes(previous: Previous, job: Job, fingerprint: dict[str, Any], resized: Optional[str] = None) -> list[str]:
    """What differs between tonight's run and the published one, in words. resized: why the
    settings reducer sizes were sized again tonight (sizing()), when they were."""
    before = previous.manifest.fingerprint or {}
    found = [words for key, words in CHANGES if before.get(key) != fingerprint.get(key)]
    if "the job file" in found and settings_changed(previous, job):
        found[found.index("the job file")] = (SETTINGS_CHANGED if resized is None or written_changed(previous, job)
                                              else f"{RESIZED} ({resized})")
    return found


# ---------------------------------------------------------------- sized settings

# The settings reducer sizes from the table (defaults.neighbor_settings) belong to the published
# run: kept while tonight's row count is within this factor of the rows they were sized for, so a
# growing table trains warm instead of cold on every night that would have moved a sized value.
SIZED_BAND = (0.5, 2.0)
RESIZED = "the settings reducer sizes from the table"


def plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def written_settings(resolved: Dict[str, Any], sized: Iterable[str]) -> Dict[str, Any]:
    """{"section.key": value} of the [model] and [training] settings the job file itself gives
    (or leaves at their defaults), not those sized from the table; log_every changes no weight."""
    sized = set(sized)
    return {f"{section}.{key}": value for section in TRAINING_SECTIONS
            for key, value in (resolved.get(section) or {}).items()
            if f"{section}.{key}" not in sized and key != "log_every"}


def written_changed(previous: "Previous", job: Any) -> bool:
    """Whether the job file's own [model] or [training] settings differ from the published
    run's; a setting the job file now names, or no longer names, is a change. Settings still
    None are filled from the table by the model the same way both nights."""
    before = previous.manifest.job
    was = written_settings(before, before.get("chosen_by_reducer") or [])
    now = written_settings(plain(job.resolved()), set(job.table_sized) | set(job.chosen_by_reducer))
    return set(was) != set(now) or any(was[key] != value for key, value in now.items() if value is not None)


def recorded_sizing(previous: "Previous") -> Optional[Dict[str, Any]]:
    """The published run's sizing: {"rows", "columns", "settings"}; for a run published before
    reducer recorded it, the settings its job chose from the table, and that table's shape."""
    section = previous.manifest.sizing
    if section is not None:
        return {"rows": section.rows, "columns": section.columns, "settings": dict(section.settings)}
    job, data = previous.manifest.job, previous.manifest.dataset
    chosen = [key for key in job.get("chosen_by_reducer") or [] if key.split(".")[0] in TRAINING_SECTIONS]
    if not chosen or not data.rows or not data.columns:
        return None
    return {"rows": data.rows, "columns": data.columns,
            "settings": {key: (job.get(key.split(".")[0]) or {}).get(key.split(".")[1]) for key in chosen}}


def sizing(previous: Optional["Previous"], job: Any, rows: int, columns: int,
           retrain: bool = False) -> Tuple[Optional[Dict[str, Any]], str]:
    """(the published run's sizing to keep tonight, or None to size from tonight's table; why).
    Kept while the job file's own settings are unchanged, the columns are the same and the rows
    within SIZED_BAND of those the settings were sized for; the job file's settings always win."""
    if not any(key.split(".")[0] in TRAINING_SECTIONS for key in job.table_sized):
        return None, "the job file names every setting"
    if previous is None:
        return None, "no published run yet"
    if retrain:
        return None, "--retrain given"
    record = recorded_sizing(previous)
    if record is None:
        return None, "the published run does not say what was sized"
    if written_changed(previous, job):
        return None, "the job file's own [model] or [training] settings changed"
    sized_rows, sized_columns = record["rows"], record["columns"]
    if columns != sized_columns:
        return None, f"{columns} columns, not the {sized_columns} the settings were sized for"
    low, high = SIZED_BAND
    if not low * sized_rows <= rows <= high * sized_rows:
        return None, f"{rows} rows, outside {low:g}x-{high:g}x of the {sized_rows} the settings were sized for"
    kept = {"rows": sized_rows, "columns": sized_columns,
            "settings": {key: value for key, value in record["settings"].items() if key != "model.objective"}}
    return kept, f"{rows} rows, within {low:g}x-{high:g}x of the {sized_rows} they were sized for"


class Previous:
    """The job's published run: its manifest and (read on demand) its map, by id."""

    def __init__(self, folder: Path | str, manifest: published.Manifest) -> None:
        self.folder = Path(folder)
        self.manifest = manifest
        self._map: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def find(cls, folder: Path | str) -> "Previous | None":
        """The published run in `folder` (outputs/<job>/), or None on a first night;
        PublishedRecordError when its manifest cannot be read."""
        manifest = published.read_manifest(Path(folder) / published.MANIFEST)
        return None if manifest is None else cls(folder, manifest)

    def map(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids as text, coordinates float64) of last night's embedding.csv."""
        if self._map is None:
            embedding = published.read_embedding(self.folder / published.EMBEDDING)
            self._map = embedding.ids, embedding.coordinates
        return self._map


def shared_rows(ids: Any, previous_ids: Any) -> tuple[np.ndarray, np.ndarray]:
    """(indices into ids, indices into previous_ids) of the ids present both nights; ids that
    occur more than once on either night cannot be matched and are left out."""
    tonight = {}
    for k, value in enumerate(map(str, ids)):
        tonight[value] = -1 if value in tonight else k
    last = {}
    for k, value in enumerate(map(str, previous_ids)):
        last[value] = -1 if value in last else k
    pairs = [(k, last[v]) for v, k in tonight.items() if k >= 0 and last.get(v, -1) >= 0]
    if not pairs:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    here, there = np.asarray(pairs, dtype=np.int64).T
    order = np.argsort(here)
    return here[order], there[order]


def procrustes(x: np.ndarray, y: np.ndarray, scale: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(matrix, translation) minimising |x @ matrix + translation - y|: orthogonal Procrustes
    (rotation or reflection), times a uniform scale when `scale`."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    mx, my = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - mx, y - my
    u, s, vt = np.linalg.svd(xc.T @ yc)
    rotation = u @ vt
    factor = float(s.sum() / (xc ** 2).sum()) if scale and (xc ** 2).sum() > 0 else 1.0
    matrix = rotation * factor
    return matrix, my - mx @ matrix


def alignment(ids: Any, coordinates: np.ndarray, previous: Previous,
              min_shared: int = 3) -> tuple[np.ndarray, np.ndarray] | None:
    """The transform laying this map on `previous`'s, or None when too few rows are shared."""
    previous_ids, previous_coordinates = previous.map()
    if previous_coordinates.shape[1] != coordinates.shape[1]:
        return None
    here, there = shared_rows(ids, previous_ids)
    if len(here) < max(min_shared, coordinates.shape[1] + 1):
        return None
    return procrustes(coordinates[here], previous_coordinates[there])


def _neighbours(points: np.ndarray, k: int) -> list[set[int]]:
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(points) - 1)
    found = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points, return_distance=False)
    return [set(row[row != i][:k]) for i, row in enumerate(found)]


def drift(ids: Any, coordinates: np.ndarray, previous: Previous,
          transform: tuple[np.ndarray, np.ndarray] | None = None, all_ids: Any = None) -> dict[str, Any]:
    """The manifest's `drift` section for this (aligned) map of rows `ids` against `previous`.
    all_ids: every row's id tonight, when `ids` are a sample's (a large table's plot sample): the
    shared, added and removed rows are counted over the whole table, the displacement and the
    neighbour overlap measured on the sample."""
    previous_ids, previous_coordinates = previous.map()
    here, there = shared_rows(ids, previous_ids)
    if all_ids is None:
        total, shared = len(ids), len(here)
    else:
        total, shared = len(all_ids), len(shared_rows(all_ids, previous_ids)[0])
    section: dict[str, Any] = {
        "shared_rows": int(shared), "added_rows": int(total - shared),
        "removed_rows": int(len(previous_ids) - shared), "median_displacement": None,
        "neighbor_overlap": None, "neighbors_k": NEIGHBORS_K,
        "transform": None if transform is None else {"matrix": transform[0].tolist(),
                                                     "translation": transform[1].tolist()}}
    if len(here) < 2 or previous_coordinates.shape[1] != coordinates.shape[1]:
        return section
    now, then = coordinates[here].astype(np.float64), previous_coordinates[there]
    spread = float(np.sqrt(((then - then.mean(axis=0)) ** 2).sum(axis=1).mean())) or 1.0
    section["median_displacement"] = float(np.median(np.linalg.norm(now - then, axis=1)) / spread)
    if len(here) > NEIGHBORS_K + 1:
        chosen = published.sample_rows(len(here), DRIFT_MAX_ROWS)
        tonight, last = _neighbours(now[chosen], NEIGHBORS_K), _neighbours(then[chosen], NEIGHBORS_K)
        section["neighbor_overlap"] = float(np.mean([len(a & b) / len(a) for a, b in zip(tonight, last)]))
    return section


def row_number_warning(drift: dict[str, Any], id_column: Optional[str]) -> Optional[str]:
    """A warning for the summary line when a table without an id column kept few of its map
    neighbours: its rows are matched with last night's by row number, so rows inserted or
    removed before the table's end pair each row with another one's place (and the map's
    warm start and alignment follow the wrong rows)."""
    overlap = drift.get("neighbor_overlap")
    if id_column is not None or overlap is None or overlap >= ROW_NUMBER_OVERLAP:
        return None
    return (f"only {overlap:.0%} of map neighbours kept since the published run, and this table has no id "
            f"column: rows are matched by row number, so rows inserted or removed before its end pair the "
            f"wrong rows; set dataset.id to a column naming each row")


def sizing_record(written: Any, job: Any, rows: int, columns: int, previous: Optional["Previous"],
                  retrain: bool = False) -> Optional[published.Sizing]:
    """The manifest's `sizing` for `job`, sized from `written` (the job as its file says) by
    sizing() and Job.with_table_defaults; None when the job file names every setting."""
    chosen = [key for key in job.chosen_by_reducer if key.split(".")[0] in TRAINING_SECTIONS]
    if not chosen:
        return None
    kept, why = sizing(previous, written, rows, columns, retrain)
    return published.Sizing(rows=kept["rows"] if kept else rows, columns=kept["columns"] if kept else columns,
                            settings={key: plain(job.setting(key)) for key in chosen}, kept=kept is not None,
                            reason=why, band=list(SIZED_BAND))


def baseline(previous: Optional["Previous"], job: Any, retrain: bool = False) -> published.Baseline:
    """The manifest's `baseline`: whether tonight's map starts a new baseline, why, and since
    when the published one holds (its first night's start). A new baseline: the first night,
    `--retrain`, or another `latent` (a map of other dimensions cannot continue the published
    one). The quality gate's max_drift does not hold a new baseline back unless [quality]
    drift_gate = "always" (gate.misses)."""
    if previous is None:
        return published.Baseline(new=True, reason="no published run yet")
    if retrain:
        return published.Baseline(new=True, reason="--retrain given")
    latent_before = latent_of(previous.manifest)
    if latent_before is not None and latent_before != job.model.latent:
        return published.Baseline(new=True, reason=f"latent changed from {latent_before} to {job.model.latent}")
    before = previous.manifest.baseline
    since = (before.since if before is not None else None) or previous.manifest.started_at
    return published.Baseline(new=False, since=since)


# ---------------------------------------------------------------- maps of other dimensions

BASELINES = "baselines"  # outputs/<job>/baselines/<latent>d/: the last published map of each other latent


def latent_of(manifest: published.Manifest) -> Optional[int]:
    value = (manifest.job.get("model") or {}).get("latent")
    return value if isinstance(value, int) else None


def comparable(previous: Optional["Previous"], job_folder: Path, latent: int) -> Optional["Previous"]:
    """The published map to align tonight's onto and measure drift against: the published run
    when it has `latent` dimensions, else the last published map that had (kept by
    keep_for_later when the latent changed), else None."""
    if previous is not None and latent_of(previous.manifest) == latent:
        return previous
    return Previous.find(Path(job_folder) / BASELINES / f"{latent}d")


def keep_for_later(previous: Optional["Previous"], job_folder: Path, latent: int) -> Optional[Path]:
    """Before a map of `latent` dimensions is published over one of other dimensions: a copy of
    the published map (embedding.csv, manifest.json) in baselines/<its latent>d/, so that a
    later night back in those dimensions compares with it. Returns the folder, or None."""
    if previous is None:
        return None
    before = latent_of(previous.manifest)
    if before is None or before == latent:
        return None
    from reducer import files

    # Never through a link: baselines/ and baselines/<d>d/ are folders of reducer's own.
    folder = files.managed_folder(files.managed_folder(Path(job_folder) / BASELINES) / f"{before}d")
    staged: list[tuple[Path, Path]] = []

    def copy_of(source: Path) -> Callable[[Path], None]:
        data = source.read_bytes()

        def write(path: Path) -> None:
            Path(path).write_bytes(data)
        return write

    try:
        for name in ("embedding.csv", "manifest.json"):  # the manifest last: it says the copy is whole
            staged.append((files.stage(folder / name, copy_of(previous.folder / name)), folder / name))
    except BaseException:
        files.discard(staged)
        raise
    files.publish(staged)
    return folder


def against(compared: "Previous", previous: Optional["Previous"]) -> Dict[str, Any]:
    """The drift section's `against`: which published run tonight's map was compared with."""
    return {"run_started_at": compared.manifest.started_at, "latent": latent_of(compared.manifest),
            "published": compared is previous,
            "folder": None if compared is previous else str(compared.folder)}
