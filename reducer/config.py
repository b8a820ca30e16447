"""The job file format: read a TOML file, check every key and type, fill defaults.

Relative paths inside a job (`path`, and any dataset option ending in `_path`) resolve against
the folder holding the job file, whatever the current directory is, so cron needs no `cd`.
The project root (default home of `outputs/`, `Models/` and `plugins/`) is the folder above
the job file's folder when that folder is named `jobs`, else the job file's own folder.
"""

import dataclasses
import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Iterable
from typing import Any, Dict, Optional

from reducer.datasets import options as dataset_options
from reducer.datasets.dataset import BLOCK_OPTIONS
from reducer.datasets.registry import per_feature_width
from reducer.defaults import neighbor_settings, warm_schedule
from reducer.errors import DataError, JobError, PluginError, ReducerError
from reducer.tables.csv_reader import input_problem, open_regular

ACTIVATIONS = ("sigmoid", "relu", "tanh", "elu", "selu", "gelu", "softplus", "linear")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # fullmatch: no newline slips past a `$`
# What reducer itself keeps in the outputs folder beside the job folders (report.INDEX; the
# others start with a dot, which no job name may): a job may not take one's name, in any case.
RESERVED_NAMES = ("index.html",)
# A job's name becomes file and folder names (Models/<name>.keras, and temporaries such as
# .<name>.tmp-PID-XXXXXXXX.keras): well under the 255 bytes a file name may have.
MAX_NAME_LENGTH = 100
MAX_JOB_FILE_BYTES = 1 << 20  # a job file is a few lines of TOML


@dataclass(frozen=True)
class ModelConfig:
    hidden: Optional[tuple] = None  # None: sized from the column count (see model.hidden_widths)
    latent: int = 2
    activation: str = "sigmoid"
    output_activation: Optional[str] = None  # None: sigmoid for data in [0, 1], else linear
    # "reconstruction" (the seed's) or "neighbors" (a UMAP-style loss on a kNN graph, plus
    # reconstruction_weight x the reconstruction loss; see neighbor_train.py). These field
    # defaults are the seed's model; a job that names no objective gets "neighbors", and each
    # neighbour setting it leaves out is sized from the table (Job.table_sized).
    objective: str = "reconstruction"
    latent_activation: Optional[str] = None  # None: `activation` (reconstruction), linear (neighbors)
    n_neighbors: int = 15  # neighbors only: graph neighbours per row, the row itself counted (UMAP's)
    min_dist: float = 0.1  # neighbors only: how tightly the map may pack neighbours (UMAP's)
    reconstruction_weight: float = 0.0  # neighbors only: weight of the reconstruction loss
    # neighbors only: the encoder's first layers draw apart the bulk of columns whose spread a few
    # far values set and squash those values (engine/model.py, HEAVY_RATIO)
    robust_input: bool = False


@dataclass(frozen=True)
class QualityConfig:
    enabled: bool = True  # false: no `quality` section, no metrics in the summary or plot
    max_rows: int = 4000  # metrics on a fixed-seed sample of this many rows when there are more
    # The gate (gate.py): a map that misses one of these is rejected, yesterday's files stay.
    min_trustworthiness: Optional[float] = None
    min_knn_accuracy: Optional[float] = None
    max_drift: Optional[float] = None  # on the drift section's median_displacement
    beat_pca: bool = False  # true: not worse than PCA on both trustworthiness and kNN accuracy
    # On the map section's stacked_share (quality.stacking: measured with the metrics on or off).
    max_stacked_share: Optional[float] = None
    # "continuing": max_drift holds back only maps that continue the published baseline and have a
    # drift figure; "always": new baselines too, and a map with no drift figure (gate.misses).
    drift_gate: str = "continuing"


@dataclass(frozen=True)
class ContinuityConfig:
    """[continuity]: how tonight's run builds on the published one (continuity.py)."""

    skip_unchanged: bool = True  # same rows, job, plugin code and versions: not trained again
    align: bool = True  # rotate/reflect, scale and shift the map onto the published one
    warm_start: bool = True  # start from the published model's weights when the architecture matches
    warm_epochs: Optional[int] = None  # epochs of a warm start; default defaults.warm_schedule's


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 500
    batch_size: int = 8
    learning_rate: float = 0.001
    seed: int = 1
    log_every: int = 100
    negative_samples: int = 80  # neighbors only: random rows pushed away from each row per step


# Keys that mean something only to the neighbour objective: a reconstruction job may not name them.
NEIGHBORS_ONLY = {"model": ("n_neighbors", "min_dist", "reconstruction_weight", "robust_input"),
                  "training": ("negative_samples",)}


@dataclass(frozen=True)
class Job:
    name: str
    path: Path  # the job file, absolute
    dataset: str
    dataset_options: dict = field(default_factory=dict)
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    quality: QualityConfig = QualityConfig()
    continuity: ContinuityConfig = ContinuityConfig()
    # "section.key" of the settings the job file left to the table's size ("model.objective"
    # among them when it names no objective): filled in by with_table_defaults.
    table_sized: frozenset = frozenset()
    chosen_by_reducer: tuple = ()  # after with_table_defaults: the keys it (and for_dataset) chose

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def project_root(self) -> Path:
        return project_root(self.path)

    def with_table_defaults(self, rows: int, columns: int, neighbors_fit: bool = True,
                            kept: Optional[Dict[str, Any]] = None) -> "Job":
        """This job with every setting left to the table filled in: the neighbour objective's
        settings sized from `rows` x `columns` (defaults.neighbor_settings) for each key in
        `table_sized`, then the warm start's epochs. A job that names no objective gets the
        seed's reconstruction instead when the neighbour objective does not fit in memory
        (`neighbors_fit` false; storage.sized_job decides). kept: {"rows", "columns", "settings":
        {"section.key": value}}, the published run's sizing, used instead of sizing from this
        table (continuity.sizing): its settings, and any other sized from its rows and columns."""
        job = self
        if "model.objective" in self.table_sized and not neighbors_fit:
            # The seed's reconstruction; what the job left out still holds the seed's defaults.
            job = dataclasses.replace(self, model=dataclasses.replace(self.model, objective="reconstruction"))
        elif self.table_sized:
            sized = neighbor_settings(kept["rows"], kept["columns"]) if kept else neighbor_settings(rows, columns)
            for key, value in (kept or {}).get("settings", {}).items():
                section, name = key.split(".")
                if name in sized.get(section, {}):
                    sized[section][name] = value
            sized["model"]["hidden"] = tuple(sized["model"]["hidden"])
            changes = {}
            for section in ("model", "training"):
                config = getattr(self, section)
                unset = {f.name for f in dataclasses.fields(config) if getattr(config, f.name) == f.default}
                # Left to the table and still unset (a program may have set one since reading).
                changes[section] = dataclasses.replace(config, **{
                    key: value for key, value in sized[section].items()
                    if f"{section}.{key}" in self.table_sized and key in unset})
            job = dataclasses.replace(self, **changes)
        job = dataclasses.replace(job, table_sized=frozenset(), chosen_by_reducer=tuple(sorted(self.table_sized)))
        continuity = job.continuity
        if continuity.warm_epochs is None:
            epochs, _, _ = warm_schedule(job.model.objective, job.training.epochs)
            continuity = dataclasses.replace(continuity, warm_epochs=epochs)
        return dataclasses.replace(job, continuity=continuity)

    def for_dataset(self, dataset: Any) -> "Job":
        """This job with the normalisation its objective wants: the neighbour objective (named or
        by default) z-scores the columns where the dataset says "minmax" (the Dataset default)
        and the job names no `normalize`; the kNN graph of standardised columns is not squeezed
        by one outlier (wine, iris: trustworthiness 0.966 / 0.990 z-scored vs 0.943 / 0.980
        min-max; benchmarks/README.md, "Good maps by default"). A fixed (offset, scale), "zscore"
        or "none" is the dataset's choice and kept."""
        if (self.model.objective != "neighbors" or "normalize" in self.dataset_options
                or dataset.normalize != "minmax"):
            return self
        return dataclasses.replace(self, dataset_options={**self.dataset_options, "normalize": "zscore"},
                                   table_sized=self.table_sized | {"dataset.normalize"})

    def setting(self, key: str) -> Any:
        """The value of "section.key" ("dataset.normalize", "training.epochs", ...)."""
        section, name = key.split(".")
        if section == "dataset":
            return self.dataset_options.get(name)
        return getattr(getattr(self, section), name)

    def resolved(self) -> dict[str, Any]:
        """Everything the job means, defaults filled in, as plain values for the manifest."""
        return {
            "name": self.name,
            "file": str(self.path),
            "dataset": {"name": self.dataset, **self.dataset_options},
            "model": dataclasses.asdict(self.model),
            "training": dataclasses.asdict(self.training),
            "quality": dataclasses.asdict(self.quality),
            "continuity": dataclasses.asdict(self.continuity),
            "chosen_by_reducer": list(self.chosen_by_reducer),  # the rest the job file names
        }


def real_path(path: str | os.PathLike[str]) -> Path:
    """`path` absolute with symbolic links resolved; a link loop is left as it is (reading it then
    fails with a message) rather than raising as Path.resolve does."""
    return Path(os.path.realpath(path))


def project_root(job_path: str | os.PathLike[str]) -> Path:
    folder = real_path(job_path).parent
    return folder.parent if folder.name == "jobs" else folder


# key -> (accepted types, check returning an error text or None)
def _positive(value: float) -> Optional[str]:
    return None if value > 0 else "must be greater than 0"


def _one_of(choices: tuple[Any, ...]) -> Callable[[Any], Optional[str]]:
    return lambda value: None if value in choices else f"must be one of {', '.join(map(str, choices))}"


def _hidden_widths(value: Any) -> Optional[str]:
    if not value or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in value):
        return "must be a non-empty list of positive integers"
    return None


MODEL_KEYS = {
    "hidden": ((list,), _hidden_widths),
    "latent": ((int,), _one_of((2, 3))),
    "activation": ((str,), _one_of(ACTIVATIONS)),
    "output_activation": ((str,), _one_of(ACTIVATIONS)),
    "objective": ((str,), _one_of(("reconstruction", "neighbors"))),
    "latent_activation": ((str,), _one_of(ACTIVATIONS)),
    "n_neighbors": ((int,), lambda v: None if v >= 2 else "must be at least 2 (it counts the row itself)"),
    "min_dist": ((float, int), lambda v: None if 0 <= v < 1 else "must be at least 0 and below 1"),
    "reconstruction_weight": ((float, int), lambda v: None if v >= 0 else "must be 0 or more"),
    "robust_input": ((bool,), None),
}
TRAINING_KEYS = {
    "epochs": ((int,), _positive),
    "batch_size": ((int,), _positive),
    "learning_rate": ((float, int), _positive),
    "seed": ((int,), lambda v: None if 0 <= v < 2**32 else f"must be from 0 to {2**32 - 1}"),
    "log_every": ((int,), _positive),
    "negative_samples": ((int,), _positive),
}
def _fraction(value: float) -> Optional[str]:
    return None if 0 <= value <= 1 else "must be from 0 to 1"


QUALITY_KEYS = {
    "enabled": ((bool,), None),
    "max_rows": ((int,), lambda v: None if v >= 10 else "must be at least 10"),
    "min_trustworthiness": ((float, int), _fraction),
    "min_knn_accuracy": ((float, int), _fraction),
    "max_drift": ((float, int), lambda v: None if v >= 0 else "must be 0 or more"),
    "beat_pca": ((bool,), None),
    # 0 would reject faithful maps too: a few rows fall close together by chance in any map.
    "max_stacked_share": ((float, int), lambda v: None if 0 < v <= 1 else "must be more than 0 and at most 1"),
    "drift_gate": ((str,), lambda v: None if v in ("continuing", "always") else 'must be "continuing" or "always"'),
}
CONTINUITY_KEYS = {
    "skip_unchanged": ((bool,), None),
    "align": ((bool,), None),
    "warm_start": ((bool,), None),
    "warm_epochs": ((int,), _positive),
}
TOP_KEYS = ("name", "dataset", "model", "training", "quality", "continuity")


def _type_name(types: tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", list: "a list", bool: "true/false",
             dict: "a table"}
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types))


def _check_value(where: str | Path, key: str, value: object, types: tuple[type, ...],
                 check: Optional[Callable[[Any], Optional[str]]] = None) -> None:
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    shown = dataset_options.as_written(value)
    if not ok:
        raise JobError(path=where, key=key, reason=f"must be {_type_name(types)}, got {shown}")
    problem = check(value) if check else None
    if problem:
        raise JobError(path=where, key=key, reason=f"{problem}, got {shown}")


def unknown_key(where: str | Path, key: object, valid: Iterable[str], place: str = "") -> JobError:
    """The error for a key nobody reads: list the valid ones and guess the intended one."""
    guess = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=0.6)
    hint = f" (did you mean {guess[0]!r}?)" if guess else ""
    return JobError(path=where, reason=f"unknown key {key!r}{place}; valid keys: {', '.join(valid)}{hint}")


def _check_table(where: str | Path, section: str, table: object, spec: dict[str, Any]) -> None:
    if not isinstance(table, dict):
        raise JobError(path=where, key=f"[{section}]", reason="must be a table")
    for key, value in table.items():
        if key not in spec:
            raise unknown_key(where, key, spec, f" in [{section}]")
        types, check = spec[key]
        _check_value(where, f"{section}.{key}", value, types, check)


def read_job(path: str | os.PathLike[str]) -> "Job":
    """Parse and check one job file; dataset-specific options are checked by `check_options`."""
    path = real_path(path)
    problem = input_problem(path, "a job file (TOML text)")
    if problem:
        if problem.startswith("no such file"):
            raise JobError(path=path, reason="no such job file")
        raise JobError(problem)
    try:
        with open_regular(path) as handle:
            data = handle.read(MAX_JOB_FILE_BYTES + 1)
        if len(data) > MAX_JOB_FILE_BYTES:
            raise JobError(path=path,
                           reason=f"larger than {MAX_JOB_FILE_BYTES >> 20} MiB; expected a job file (TOML text)")
        raw = tomllib.loads(data.decode("utf-8"))
    except DataError as exc:
        raise JobError(**exc.fields()) from None
    except UnicodeDecodeError as exc:
        raise JobError(path=path, reason=f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib ends its message with "(at line L, column C)": lead with the place instead.
        found = re.search(r"^(.*) \(at line (\d+), column (\d+)\)$", str(exc))
        if found:
            raise JobError(path=path, line=int(found[2]), column=int(found[3]),
                           reason=f"invalid TOML: {found[1]}") from None
        raise JobError(path=path, reason=f"invalid TOML: {exc}") from None
    except OSError as exc:
        raise JobError(path=path, reason=f"cannot read job file: {exc.strerror}") from None
    for key in raw:
        if key not in TOP_KEYS:
            raise unknown_key(path, key, TOP_KEYS)
    name = raw.get("name", path.stem)
    origin = "name" if "name" in raw else "name (the job file's name, by default)"
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise JobError(path=path, key=origin, reason=f"must be letters, digits, '_', '-' or '.', starting with a "
                                                     f"letter or digit, got {ascii(name)[:60]}")
    if name.casefold() in RESERVED_NAMES:
        raise JobError(path=path, key=origin, reason=f"{name!r} is the name of reducer's own file in the outputs "
                                                     f"folder; choose another")
    if len(name) > MAX_NAME_LENGTH:
        raise JobError(path=path, key=origin, reason=f"is {len(name)} characters long; at most {MAX_NAME_LENGTH}, "
                                                     f"as it names files and folders, got {name[:40]!r}...")
    dataset = raw.get("dataset")
    if not isinstance(dataset, dict) or "name" not in dataset:
        raise JobError(path=path, reason="missing [dataset] table with a name = \"...\" key")
    dataset = dict(dataset)
    dataset_name = dataset.pop("name")
    _check_value(path, "dataset.name", dataset_name, (str,))
    return job_from_tables(path, name, dataset_name, _resolve_paths(path, dataset, path.parent),
                           raw.get("model", {}), raw.get("training", {}), raw.get("quality", {}),
                           raw.get("continuity", {}))


def job_from_tables(path: Path, name: str, dataset_name: str, dataset_options: dict, model_table: dict,
                    training_table: dict, quality_table: dict, continuity_table: dict) -> "Job":
    """A Job from its tables as a job file gives them (a key left out: its default, or sized from
    the table for the neighbour objective): what `read_job` builds, and reducer.Map too, so both
    get the same checks, defaults and sizing. `path` names where the settings came from in messages."""
    _check_table(path, "model", model_table, MODEL_KEYS)
    _check_table(path, "training", training_table, TRAINING_KEYS)
    _check_table(path, "quality", quality_table, QUALITY_KEYS)
    _check_table(path, "continuity", continuity_table, CONTINUITY_KEYS)
    table_sized: frozenset = frozenset()
    if model_table.get("objective", "neighbors") == "neighbors":
        # The neighbour objective, named or by default: what the job leaves out is sized from
        # the table when it is read (defaults.neighbor_settings, Job.with_table_defaults).
        table_sized = frozenset(f"{section}.{key}" for section, table in neighbor_settings(1, 1).items()
                                for key in table if key not in (model_table, training_table)[section == "training"])
        model_table = {**model_table, "objective": "neighbors"}
    else:
        for section, table in (("model", model_table), ("training", training_table)):
            for key in NEIGHBORS_ONLY[section]:
                if key in table:
                    raise JobError(path=path, key=f"{section}.{key}",
                                   reason="applies only with [model] objective = \"neighbors\"")
    if "hidden" in model_table:
        model_table = {**model_table, "hidden": tuple(model_table["hidden"])}
    for key in ("min_dist", "reconstruction_weight"):
        if model_table.get(key) is not None:
            model_table = {**model_table, key: float(model_table[key])}
    if "learning_rate" in training_table:
        training_table = {**training_table, "learning_rate": float(training_table["learning_rate"])}
    quality_table = {k: float(v) if isinstance(v, int) and k.startswith(("min_", "max_d")) else v
                     for k, v in quality_table.items()}
    training = TrainingConfig(**training_table)
    return Job(name=name, path=path, dataset=dataset_name,
               dataset_options=dataset_options,
               model=ModelConfig(**model_table), training=training,
               quality=QualityConfig(**quality_table), continuity=ContinuityConfig(**continuity_table),
               table_sized=table_sized)


def _resolve_paths(job_path: Path, options: dict[str, Any], folder: Path) -> dict[str, Any]:
    resolved = {}
    for key, value in options.items():
        if (key == "path" or key.endswith("_path")) and isinstance(value, str):
            try:
                expanded = Path(value).expanduser()
            except RuntimeError:  # "~someone/..." for a user this machine does not have
                user = value[1:].split("/", 1)[0]
                raise JobError(path=job_path, reason=f"dataset.{key}: cannot expand {value!r}: "
                               + (f"there is no user {user!r}" if user else "no home folder is known")) from None
            value = str(real_path(folder / expanded))
        resolved[key] = value
    return resolved


UNKNOWN_KIND = "unknown"  # a label column whose kind (class or value) the rows will tell


def gate_cannot_apply(settings: "QualityConfig", label_column: Optional[str], label_kind: Optional[str]) -> Optional[str]:
    """Why a threshold the job sets can never be checked, in one line, or None when each can.

    label_column: the job's label column (None: none); label_kind: "class", "value", or UNKNOWN_KIND
    while no row has been read (the kind is then checked again once the labels are)."""
    named = [key for key in ("min_trustworthiness", "min_knn_accuracy") if getattr(settings, key) is not None]
    named += ["beat_pca"] if settings.beat_pca else []
    if named and not settings.enabled:
        return (f"quality.{named[0]} needs the quality metrics, and [quality] enabled = false turns them off; "
                f"remove one of the two")
    for key in [k for k in named if k != "min_trustworthiness"]:
        if label_column is None:
            return (f"quality.{key} needs kNN accuracy, measured on class labels, and the job has no label "
                    f"column (set dataset.label, or remove quality.{key})")
        if label_kind == "value":
            return (f"quality.{key} needs kNN accuracy, measured on class labels, and label column "
                    f"{label_column[:40]!r} holds values (kNN R^2 is measured instead); set dataset.label_type = "
                    f"\"class\" if its values are classes, or remove quality.{key}")
    return None


def check_options(job: "Job", dataset: Any) -> dict[str, Any]:
    """Check the job's [dataset] options against what the dataset accepts: every key, type and
    value `reducer run` would refuse, before anything is read or trained. Returns the options
    with the dataset's declared defaults filled in (datasets/options.py)."""
    accepted = dataset_options.specs(dataset)
    for key in job.dataset_options:
        if key not in accepted:
            hint = (f"; {key} applies to datasets that can be read in blocks (such as csv), and "
                    f"{dataset.name!r} cannot" if key in BLOCK_OPTIONS else "")
            raise unknown_key(job.path, key, ["name", *accepted],
                              f" in [dataset] for dataset {dataset.name!r}{hint}")
    filled = dataset_options.checked(job.path, dataset, job.dataset_options)
    _check_keep(job.path, job.dataset_options.get("keep"))
    _check_roles(job, dataset, filled)
    label_column = filled.get("label", dataset.label)
    problem = gate_cannot_apply(job.quality, label_column, filled.get("label_type") or dataset.label_type or UNKNOWN_KIND)
    if problem:
        raise JobError(path=job.path, reason=problem)
    fixed_width = per_feature_width(dataset.normalize)
    features = job.dataset_options.get("features")
    if fixed_width is not None and features is not None and "normalize" not in job.dataset_options \
            and len(features) != fixed_width:
        raise JobError(f"{job.path}: dataset.features names {len(features)} column(s), but dataset "
                       f"{dataset.name!r} normalises exactly {fixed_width} with its fixed (offset, scale); name "
                       f"{fixed_width} columns, or set normalize = \"minmax\" (or \"zscore\", \"none\")")
    for key, value in job.dataset_options.items():
        if (key == "path" or key.endswith("_path")) and isinstance(value, str):
            # Before anything opens it: a FIFO would block the run for good while it holds the
            # lock, and a device such as /dev/zero never ends. A folder is fine (a plugin may read one).
            problem = input_problem(value, folders=True)
            if problem:
                raise JobError(path=job.path, reason=f"dataset.{key}: {problem}")
    if dataset.validate is not None:
        from reducer.datasets.calls import plugin_output, sigint_watch

        try:
            with sigint_watch() as watch, plugin_output(f"dataset {dataset.name!r}"):
                dataset.validate(dict(filled))
        except ReducerError as exc:
            raise JobError(**exc.within(path=job.path).fields()) from None
        except (Exception, SystemExit, KeyboardInterrupt) as exc:  # a plugin's bug: name it, as for load()
            if isinstance(exc, KeyboardInterrupt) and watch.ctrl_c:
                raise
            raise PluginError(f"{job.path}: dataset {dataset.name!r} failed to validate its options: "
                              f"{type(exc).__name__}: {exc}") from None
    return filled


def _check_roles(job: "Job", dataset: Any, filled: dict[str, Any]) -> None:
    """A column plays one part: the label is neither the id nor a feature (a label among the
    features would colour a map drawn from itself, its kNN score measured on one of the map's
    inputs; a label that is the id has one class per row), and neither is kept again (keep: it
    would be in embedding.csv twice). A JobError naming both keys, the job's (`dataset.label`) or
    the dataset's own."""
    def named(key: str) -> str:
        return f"dataset.{key}" if key in job.dataset_options else f"the {key} dataset {dataset.name!r} sets"

    label, id_column = filled.get("label", dataset.label), filled.get("id", dataset.id)
    features = filled.get("features", dataset.features)
    for key, column in (("label", label), ("id", id_column)):  # embedding.csv has them already, by role
        if column is not None and str(column) in [str(name) for name in job.dataset_options.get("keep") or []]:
            raise JobError(path=job.path, reason=f"dataset.keep names {str(column)!r}, the {key} column "
                                                 f"({named(key)}), which embedding.csv has already as its "
                                                 f"'{key}'; expected the names of other columns")
    if label is None:
        return
    if id_column is not None and str(id_column) == str(label):
        raise JobError(path=job.path, reason=f"{named('label')} and {named('id')} both name column {str(label)!r}; "
                                             f"expected two different columns (the id names each row, the label "
                                             f"colours the map and is measured)")
    if features is not None and str(label) in [str(name) for name in features]:
        raise JobError(path=job.path, reason=f"{named('features')} names {str(label)!r}, the label column "
                                             f"({named('label')}); a column is a feature or the label, not both: "
                                             f"remove it from features, or name another label")


# embedding.csv's own columns: a kept column may not take one of these names.
EMBEDDING_COLUMNS = re.compile(r"^(id|label|component_\d+)$")


def _check_keep(path: Path, keep: Optional[list]) -> None:
    """[dataset] keep: a list of distinct column names, none of them one of embedding.csv's own."""
    if keep is None:
        return
    if not all(isinstance(name, str) and name.strip() for name in keep):
        raise JobError(f"{path}: dataset.keep must be a list of column names (strings), got {keep!r}")
    twice = sorted({name for name in keep if keep.count(name) > 1})
    if twice:
        raise JobError(f"{path}: dataset.keep names {', '.join(map(repr, twice))} more than once")
    clash = [name for name in keep if EMBEDDING_COLUMNS.match(name)]
    if clash:
        raise JobError(f"{path}: dataset.keep names {clash[0]!r}, a column embedding.csv has already (id, label, "
                       f"component_1...); expected the names of other columns")


def job_for_dataset(job: "Job", dataset: Any) -> "Job":
    """The job checked against its dataset (check_options), with the normalisation its
    objective takes from it (Job.for_dataset): what `reducer check`, `reducer run` and a worker
    process all run before anything is read."""
    filled = check_options(job, dataset)
    return dataclasses.replace(job, dataset_options=filled).for_dataset(dataset)


def usable_name(name: str) -> bool:
    """Whether `name` may name a job's folder and files (read_job's rules)."""
    return (bool(NAME_PATTERN.fullmatch(name)) and len(name) <= MAX_NAME_LENGTH
            and name.casefold() not in RESERVED_NAMES)


def file_stem_name(path: "str | os.PathLike[str]") -> str:
    """The name a job file that cannot be read goes by: its file's stem, or that stem quoted
    (ascii) when it holds a control character, so a summary line is never split."""
    stem = Path(path).stem
    return stem if stem.isprintable() else ascii(stem)


def read_jobs(paths: Iterable[str | Path]) -> tuple[list["Job"], list[tuple[str, str]]]:
    """Read every job file; returns (jobs, errors) where errors are one-line messages.

    Two jobs with one name are both rejected: they would write the same outputs. So are names
    that differ only in case (`Iris`, `iris`): on a case-insensitive file system (macOS, Windows,
    many network shares) they are the same files too.
    """
    jobs, errors = [], []
    for path in paths:
        try:
            jobs.append(read_job(path))
        except JobError as exc:
            errors.append((file_stem_name(path), str(exc)))
    by_name: dict[str, list[Job]] = {}
    for job in jobs:
        by_name.setdefault(job.name.casefold(), []).append(job)
    unique = []
    for same in by_name.values():
        if len(same) == 1:
            unique.append(same[0])
            continue
        files = ", ".join(str(j.path) for j in same)
        names = list(dict.fromkeys(j.name for j in same))
        for job in same:
            if len(names) == 1:
                message = f"{job.path}: job name {job.name!r} is used by more than one job file: {files}"
            else:
                message = (f"{job.path}: job names {' and '.join(map(repr, names))} differ only in case, so they "
                           f"would write the same files on a case-insensitive file system: {files}")
            errors.append((job.name, message))
    return unique, errors
