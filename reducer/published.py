"""THE format of what a run publishes: every reader and writer of these files goes through here.

    outputs/<job>/manifest.json            Manifest: one published (or rejected) run
    outputs/<job>/status.json              Status: how the last attempt ended
    outputs/<job>/history/<stamp>-manifest.json, <stamp>-rejected-manifest.json, <stamp>-status.json
                                           the same records, one per attempt: read as Nights
    outputs/<job>/embedding.csv            id, label (when there is one), component_1..k

Each record is a dataclass with `to_json()` / `from_json()` and a `format` number (FORMAT).
Reading checks every field it declares: a wrong type, a malformed file, a file that is not a
regular file or is larger than MAX_RECORD_BYTES raises PublishedRecordError (path, key,
reason), which callers turn into one line for that job. Keys a record does not declare are
kept (`extra`) and written back unchanged, so a newer reducer's additions survive an older
one: keys are added, never renamed.

The fixed-seed sample of rows that plot.png draws, the quality metrics measure, and the map
page shows is `sample_rows`: one function, one seed. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import re
import stat
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar, Optional, TypeVar

import numpy as np

from reducer.errors import NotFoundError, PublishedRecordError, TrainingError

FORMAT = 1  # written into every record; a record without one was written before the field (format 1)
MAX_RECORD_BYTES = 16 << 20  # a manifest of a 10,000-column table is about 1 MB
SAMPLE_ROWS = 50_000  # rows drawn in plot.png and on the map page, and handed to the quality metrics
SAMPLE_SEED = 0  # fixed, not the job's seed: the same rows every night, whatever the job's seed
MANIFEST = "manifest.json"
STATUS = "status.json"
EMBEDDING = "embedding.csv"
HISTORY = "history"
DATA_LINK = "..data"  # outputs/<job>/..data -> the version folder readers see (publish.py switches it)
VERSION_NAME = re.compile(r"\.\.v-\d{8}T\d{6}Z-\d+-[0-9a-f]{8}")  # ..v-<run stamp>-<hex>


class Status(enum.StrEnum):
    """How one attempt ended, as status.json and history/ record it."""

    OK = "ok"  # published
    UNCHANGED = "unchanged"  # nothing to do: the published run is current
    FAILED = "failed"  # nothing published; the previous files are kept
    REJECTED = "rejected"  # the quality gate refused the map; the previous files are kept


# ---------------------------------------------------------------- the record machinery

R = TypeVar("R", bound="Record")


def _kind(hint: Any) -> str:
    """A type hint in words, for the error line."""
    if hint is int:
        return "a whole number"
    if hint is float:
        return "a number"
    if hint is str:
        return "text"
    if hint is bool:
        return "true or false"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _kind(a) for a in typing.get_args(hint))
    if origin is list or hint is list:
        return "a list"
    if origin is dict or hint is dict or (isinstance(hint, type) and issubclass(hint, Record)):
        return "an object"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return " or ".join(repr(m.value) for m in hint)
    return str(hint)


def _convert(value: Any, hint: Any, path: Path, key: str) -> Any:
    """`value` checked against `hint` (nested records built); PublishedRecordError when it does not fit."""
    def wrong() -> PublishedRecordError:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        return PublishedRecordError(path=path, key=key, reason=f"must be {_kind(hint)}, got {shown}")

    if hint is Any:
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        others = [option for option in options if option is not type(None)]
        if len(others) == 1:  # Optional[X]: X's own error, which names the key inside it
            return _convert(value, others[0], path, key)
        for option in others:
            try:
                return _convert(value, option, path, key)
            except PublishedRecordError:
                continue
        raise wrong()
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise wrong()
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise wrong()
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise wrong()
    if hint is str:
        if isinstance(value, str):
            return value
        raise wrong()
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            raise wrong() from None
    if isinstance(hint, type) and issubclass(hint, Record):
        return hint.from_json(value, path, key)
    if origin is list or hint is list:
        if not isinstance(value, list):
            raise wrong()
        (item,) = typing.get_args(hint) or (Any,)
        return [_convert(v, item, path, f"{key}[{k}]") for k, v in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise wrong()
        _, item = typing.get_args(hint) or (str, Any)
        return {str(k): _convert(v, item, path, f"{key}.{k}") for k, v in value.items()}
    raise TypeError(f"published.py cannot check a field of type {hint!r}")  # a bug in a record below


def _plain(value: Any) -> Any:
    """A field's value as JSON data."""
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclasses.dataclass
class Record:
    """A JSON object with typed fields; keys it does not declare ride along in `extra`."""

    REQUIRED: ClassVar[tuple[str, ...]] = ()  # keys a record of this kind cannot do without

    @classmethod
    def from_json(cls: type[R], data: Any, path: Path | str = "", key: str = "") -> R:
        """The record in `data` (parsed JSON); PublishedRecordError naming `path` and the key."""
        path = Path(path)
        if not isinstance(data, dict):
            raise PublishedRecordError(path=path, key=key or None, reason=f"must be an object, got {data!r:.60}")
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "extra":
                continue
            name = f"{key}.{f.name}" if key else f.name
            if f.name in data:
                values[f.name] = _convert(data[f.name], hints[f.name], path, name)
            elif f.name in cls.REQUIRED:
                raise PublishedRecordError(path=path, key=name, reason="is missing")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**values, extra={k: v for k, v in data.items() if k not in known})  # type: ignore[call-arg]

    def to_json(self) -> dict[str, Any]:
        """The record as JSON data: the declared fields, then the keys it was read with and did not declare."""
        data = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "extra"}
        data.update({k: v for k, v in getattr(self, "extra", {}).items() if k not in data})
        return data


# ---------------------------------------------------------------- the records


@dataclasses.dataclass
class Quality(Record):
    """The manifest's `quality` section (reducer/quality.py measures it)."""

    rows: Optional[int] = None
    sampled: Optional[bool] = None
    sample_seed: Optional[int] = None
    trustworthiness_k: list[int] = dataclasses.field(default_factory=list)
    trustworthiness_5: Optional[float] = None
    trustworthiness_12: Optional[float] = None
    label_type: Optional[str] = None
    knn_accuracy: Optional[float] = None
    knn_r2: Optional[float] = None
    knn: Optional[dict[str, Any]] = None
    reconstruction_mse: Optional[float] = None
    pca: dict[str, Optional[float]] = dataclasses.field(default_factory=dict)
    rows_in_table: Optional[int] = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        for key in ("knn_r2", "rows_in_table"):  # written only where measured, as before
            if data[key] is None:
                del data[key]
        return data


@dataclasses.dataclass
class Drift(Record):
    """The manifest's `drift` section (continuity.drift)."""

    shared_rows: int = 0
    added_rows: int = 0
    removed_rows: int = 0
    median_displacement: Optional[float] = None
    neighbor_overlap: Optional[float] = None
    neighbors_k: Optional[int] = None
    transform: Optional[dict[str, Any]] = None
    # Which published map tonight's was compared with: {"run_started_at", "latent", "published"
    # (the one readers had), "folder" (else where the last map of these dimensions was kept)}.
    against: Optional[dict[str, Any]] = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Sizing(Record):
    """The manifest's `sizing`: the settings reducer sized from the table (continuity.sizing),
    and the table shape they were sized for; `kept`: from the published run, or sized tonight."""

    rows: int = 0
    columns: int = 0
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)  # "section.key" -> value
    kept: bool = False
    reason: Optional[str] = None
    band: list[float] = dataclasses.field(default_factory=list)  # rows kept within these factors
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Baseline(Record):
    """The manifest's `baseline`: whether this map starts a new one (the first night, --retrain,
    another latent) and why, or since when (UTC) the one it continues holds."""

    new: bool = False
    reason: Optional[str] = None
    since: Optional[str] = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Accepted(Record):
    """The manifest's `accepted`: a rejected candidate published by `reducer accept`."""

    by: str = "hand"
    at: Optional[str] = None
    candidate: Optional[str] = None  # its folder's name in outputs/<job>/rejected/
    gate_missed: Optional[str] = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class DatasetFacts(Record):
    """The manifest's `dataset` section: what was read, and how it was normalised."""

    name: Optional[str] = None
    source: Optional[str] = None
    rows: int = 0
    columns: int = 0
    features: list[str] = dataclasses.field(default_factory=list)
    label_column: Optional[str] = None
    id_column: Optional[str] = None
    normalize: Optional[str] = None
    offset: list[float] = dataclasses.field(default_factory=list)
    scale: list[float] = dataclasses.field(default_factory=list)
    input_file: Optional[dict[str, Any]] = None
    rows_sha256: Optional[str] = None
    rows_order_sha256: Optional[str] = None  # the rows in their order: a shuffle alone changes only this
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Training(Record):
    """The manifest's `training` section."""

    engine: Optional[str] = None
    epochs: Optional[int] = None
    loss_per_epoch: list[float] = dataclasses.field(default_factory=list)
    final_loss: Optional[float] = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # graph, warm_start


@dataclasses.dataclass
class RunTimes(Record):
    """The manifest's `run` section: when and where (UTC, ISO 8601)."""

    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    host: Optional[str] = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class FileEntry(Record):
    """One published file in the manifest's `files`: where readers find it, its digest and size."""

    REQUIRED = ("sha256",)
    path: Optional[str] = None
    sha256: str = ""
    bytes: Optional[int] = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Manifest(Record):
    """manifest.json: the commit record of one run (publish.py writes it last)."""

    format: int = FORMAT
    job: dict[str, Any] = dataclasses.field(default_factory=dict)  # the job, defaults filled in
    dataset: DatasetFacts = dataclasses.field(default_factory=DatasetFacts)
    table: Optional[dict[str, Any]] = None
    versions: dict[str, Optional[str]] = dataclasses.field(default_factory=dict)
    seed: Optional[int] = None
    training: Training = dataclasses.field(default_factory=Training)
    quality: Optional[Quality] = None
    subtitle: Optional[str] = None  # the quality in one line, for readers of older manifests
    streaming: Optional[dict[str, Any]] = None
    fingerprint: Optional[dict[str, Any]] = None
    drift: Optional[Drift] = None
    run: Optional[RunTimes] = None
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    rejected: Optional[str] = None
    files: dict[str, FileEntry] = dataclasses.field(default_factory=dict)
    sizing: Optional[Sizing] = None
    baseline: Optional[Baseline] = None
    accepted: Optional[Accepted] = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        for key in ("subtitle", "streaming", "rejected", "accepted"):  # written only where there is one
            if data[key] is None:
                del data[key]
        return data

    @property
    def finished_at(self) -> Optional[str]:
        return self.run.finished_at if self.run else None

    @property
    def stacked_share(self) -> Optional[float]:
        """The `map` section's stacked_share (quality.stacking), or None in a manifest written
        before it was measured (or one whose value is not a number)."""
        section = self.extra.get("map")
        share = section.get("stacked_share") if isinstance(section, dict) else None
        return float(share) if isinstance(share, (int, float)) and not isinstance(share, bool) else None

    @property
    def warnings(self) -> list[str]:
        """The manifest's own `warnings` (stacked rows, row numbers as ids), [] where it has none."""
        found = self.extra.get("warnings")
        return [w for w in found if isinstance(w, str)] if isinstance(found, list) else []

    @property
    def started_at(self) -> Optional[str]:
        return self.run.started_at if self.run else None


@dataclasses.dataclass
class StatusRecord(Record):
    """status.json (and history/<stamp>-status.json): how one attempt ended."""

    REQUIRED = ("status",)
    format: int = FORMAT
    job: Optional[str] = None
    status: Status = Status.FAILED
    reason: Optional[str] = None
    attempted_at: Optional[str] = None
    published_at: Optional[str] = None
    manifest_sha256: Optional[str] = None
    seconds: Optional[float] = None
    # The published map's warnings (its manifest's) when the attempt published or found it
    # current: a cron job that reads status.json alone learns of a stacked map too.
    warnings: list[str] = dataclasses.field(default_factory=list)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Night(Record):
    """One attempt in history/, as `reducer history` and the report's charts show it."""

    time: Optional[str] = None
    status: Status = Status.OK
    reason: Optional[str] = None
    rows: Optional[int] = None
    final_loss: Optional[float] = None
    trustworthiness: Optional[float] = None
    knn_accuracy: Optional[float] = None
    drift: Optional[float] = None
    knn_r2: Optional[float] = None  # instead of knn_accuracy where the label holds values
    # The manifest's map.stacked_share (quality.stacking; null before it was measured, and for an
    # attempt that published nothing) and its `warnings` (a status record's: the published map's
    # when the attempt found it current), so a night of stacked dots shows in the history too.
    stacked_share: Optional[float] = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        if data["knn_r2"] is None:  # written only where measured, as in the manifest
            del data["knn_r2"]
        return data

    @classmethod
    def of_manifest(cls, manifest: Manifest, stamp: str, rejected: bool) -> Night:
        quality = manifest.quality or Quality()
        return cls(time=manifest.started_at or stamp, status=Status.REJECTED if rejected else Status.OK,
                   reason=manifest.rejected or (f"accepted by hand (the gate had rejected it: "
                                                f"{manifest.accepted.gate_missed})" if manifest.accepted else None),
                   rows=manifest.dataset.rows, final_loss=manifest.training.final_loss,
                   trustworthiness=quality.trustworthiness_5, knn_accuracy=quality.knn_accuracy,
                   drift=manifest.drift.median_displacement if manifest.drift else None, knn_r2=quality.knn_r2,
                   stacked_share=manifest.stacked_share, warnings=manifest.warnings)

    @classmethod
    def of_status(cls, record: StatusRecord) -> Night:
        return cls(time=record.attempted_at, status=record.status, reason=record.reason, warnings=list(record.warnings))


# ---------------------------------------------------------------- reading and writing the records


def read_bytes(path: Path | str, limit: int = MAX_RECORD_BYTES) -> Optional[bytes]:
    """The bytes of `path`, or None when there is no such file. A link to a regular file is
    followed (the reader paths are links into ..data); a folder, FIFO or device is refused
    before it is opened, a file above `limit` bytes before it is read: PublishedRecordError."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PublishedRecordError(path=path, reason=f"cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise PublishedRecordError(path=path, reason="not a regular file")
    if info.st_size > limit:
        raise PublishedRecordError(path=path, reason=f"larger than {limit:,} bytes ({info.st_size:,})")
    try:
        # O_NONBLOCK: should a FIFO be swapped in after the check, opening it does not hang.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PublishedRecordError(path=path, reason=f"cannot be read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise PublishedRecordError(path=path, reason="not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise PublishedRecordError(path=path, reason=f"larger than {limit:,} bytes")
    return data


def _parse(path: Path | str, data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PublishedRecordError(path=Path(path), reason=f"not valid JSON ({exc})") from None


def read_json(path: Path | str, limit: int = MAX_RECORD_BYTES) -> Any:
    """The parsed JSON of `path` (read as read_bytes does), or None when there is no such file."""
    data = read_bytes(path, limit)
    return None if data is None else _parse(path, data)


def read_manifest(path: Path | str) -> Optional[Manifest]:
    """The manifest at `path` (a manifest.json), or None when there is none."""
    data = read_json(path)
    return None if data is None else Manifest.from_json(data, path)


def read_manifest_and_digest(path: Path | str) -> tuple[Optional[Manifest], Optional[str]]:
    """(the manifest, the sha256 of the bytes it was read from), or (None, None) when there is none."""
    data = read_bytes(path)
    if data is None:
        return None, None
    return Manifest.from_json(_parse(path, data), path), hashlib.sha256(data).hexdigest()


def read_status(path: Path | str) -> Optional[StatusRecord]:
    """The status record at `path`, or None when there is none."""
    data = read_json(path)
    return None if data is None else StatusRecord.from_json(data, path)


def write_record(path: Path | str, record: Record) -> None:
    """One record as JSON, indented, into `path` (callers write to a temporary and rename)."""
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        json.dump(record.to_json(), handle, indent=2, default=str)  # a Path in the job section, say
        handle.write("\n")


def live_version(job_folder: Path | str) -> Optional[Path]:
    """The version folder `..data` points to (a real folder named like one), or None when
    nothing is published that way."""
    link = Path(job_folder) / DATA_LINK
    try:
        target = os.readlink(link)
    except OSError:  # absent, or not a link
        return None
    if not VERSION_NAME.fullmatch(target):
        return None
    version = Path(job_folder) / target
    return version if version.is_dir() and not version.is_symlink() else None


def version_stamp(version_name: str) -> str:
    """The run stamp in a version folder's name (`..v-STAMP-HEX`): its history copy is `STAMP-manifest.json`."""
    return version_name[len("..v-"):].rsplit("-", 1)[0]


def find_job_folder(path: Path | str) -> Path:
    """The job's folder outputs/<job>/ for `path`: that folder, or its history/ folder. NotFoundError,
    one line naming the job and the folder it was looked for in, when there is no such folder (a
    path that does not exist, a file): the `reducer history` command's line for the same job."""
    folder = Path(os.path.abspath(path))
    if folder.name == HISTORY and folder.is_dir() and not (folder / STATUS).exists() \
            and not (folder / HISTORY).is_dir():  # the history folder itself (never holds a status.json)
        folder = folder.parent
    if not folder.is_dir():
        raise NotFoundError(f"no job {folder.name!r} in {folder.parent}")
    return folder


def read_history(job_folder: Path | str) -> list[Night]:
    """Every attempt recorded for one job, oldest first: the records in `job_folder`/history/,
    and the published run's own manifest (in the version folder `..data` points to) when
    history/ has no copy of it yet. The history record is thus part of the switch: a run killed
    after the switch but before its copy reached history/ is listed, one killed before it is
    not. `job_folder`: outputs/<job>/ or its history/ folder; NotFoundError when it is not a
    folder. A record that cannot be read raises PublishedRecordError (a file that vanished while
    listing is left out)."""
    job_folder = find_job_folder(job_folder)
    folder = job_folder / HISTORY
    found: list[tuple[str, Night]] = []  # (the record's file name, which orders them)
    digests = set()  # of the published manifests' copies
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        stamp = path.name.split("-")[0]
        if path.name.endswith("-status.json"):
            status = read_status(path)
            if status is not None:
                found.append((path.name, Night.of_status(status)))
        elif path.name.endswith("-manifest.json"):
            manifest, digest = read_manifest_and_digest(path)
            if manifest is not None:
                rejected = path.name.endswith("-rejected-manifest.json")
                found.append((path.name, Night.of_manifest(manifest, stamp, rejected)))
                if not rejected:
                    digests.add(digest)
    version = live_version(job_folder)
    if version is not None:
        name = f"{version_stamp(version.name)}-manifest.json"
        if name not in (n for n, _ in found):
            manifest, digest = read_manifest_and_digest(version / MANIFEST)
            if manifest is not None and digest not in digests:  # an adopted run's copy has its older stamp
                found.append((name, Night.of_manifest(manifest, version_stamp(version.name), False)))
    return [night for _, night in sorted(found, key=lambda pair: history_order(pair[0], pair[1].time))]


def history_order(name: str, time: Optional[str] = None) -> tuple[str, str, int, str]:
    """The order of a history record named `<UTC second>Z-<pid>-...json`: its second, then the
    time the attempt began (two records can share a second: a run killed after its switch and
    the next run's failure), then the process id as a number (as text, pid 10000 sorted before
    9999, and pids wrap at the kernel's pid_max)."""
    second, _, rest = name.partition("-")
    pid = rest.split("-", 1)[0]
    return second, time or "", int(pid) if pid.isdigit() else -1, name


# ---------------------------------------------------------------- the rows drawn and measured


def sample_rows(rows: int, size: int = SAMPLE_ROWS, seed: int = SAMPLE_SEED) -> np.ndarray:
    """Sorted indices of a fixed-seed sample of at most `size` of `rows` rows (all of them when
    fewer): the rows plot.png and the map page draw, and (a smaller `size`) the metrics measure."""
    if rows <= size:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, size=size, replace=False))


# ---------------------------------------------------------------- embedding.csv


@dataclasses.dataclass
class Embedding:
    """Rows of an embedding.csv: ids and labels as text (labels None without a label column),
    coordinates as float64; `rows` counts the whole file (more than these when sampled)."""

    ids: np.ndarray
    labels: Optional[np.ndarray]
    coordinates: np.ndarray
    rows: int
    # [dataset] keep: column -> its values as text, in the file's order (after label, before the components)
    kept: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


def write_embedding(path: Path | str, chunks: Iterable[tuple[Any, Any, Any]],
                    encode: Callable[[Any], Any], with_labels: bool,
                    kept: Optional[dict[str, np.ndarray]] = None) -> None:
    """embedding.csv: id, label (when there is one), component_1..k; plain floats, '\\n' ends.

    chunks: (raw rows, ids, labels) pieces in order (a table's `chunks()`); encode(raw) gives
    their coordinates. Written a piece at a time, so a table on disk never has to fit in memory.
    """
    import pandas as pd

    with open(path, "w", encoding="utf-8", newline="") as handle:
        first, done = True, 0
        for raw, ids, labels in chunks:
            coordinates = np.asarray(encode(raw))
            if not np.all(np.isfinite(coordinates)):
                raise TrainingError("training produced NaN or infinite coordinates; nothing published")
            columns = {"id": ids}
            if with_labels:
                columns["label"] = labels
            for name, values in (kept or {}).items():  # verbatim, one per row in the table's order
                columns[name] = values[done:done + len(raw)]
            done += len(raw)
            for k in range(coordinates.shape[1]):
                columns[f"component_{k + 1}"] = coordinates[:, k].astype(np.float64)
            # %.9g round-trips float32 exactly, so the CSV holds the encoder's numbers, not rounded ones.
            pd.DataFrame(columns).to_csv(handle, header=first, index=False, lineterminator="\n",
                                         float_format="%.9g")
            first = False


def read_embedding(path: Path | str, limit: Optional[int] = None) -> Embedding:
    """The rows of an embedding.csv; with `limit`, only sample_rows(rows, limit) of them, read a
    block at a time, so a table of millions of rows costs the memory of its sample only.
    PublishedRecordError when it is not an embedding.csv (no id column, a component that is
    not a number)."""
    import pandas as pd

    path = Path(path)
    try:
        header = [str(c) for c in pd.read_csv(path, nrows=0).columns]
        # Every column but the coordinates is text, as written (ids, labels and kept columns verbatim).
        exact: dict[str, Any] = dict(dtype={c: str for c in header if not c.startswith("component_")},
                                     keep_default_na=False)
        if limit is None:
            frame = pd.read_csv(path, **exact)
            rows = len(frame)
        else:
            rows = 0
            for block in pd.read_csv(path, usecols=[0], chunksize=200_000, **exact):
                rows += len(block)
            if rows <= limit:
                frame = pd.read_csv(path, **exact)
            else:
                chosen, parts, start = sample_rows(rows, limit), [], 0
                for block in pd.read_csv(path, chunksize=200_000, **exact):
                    lo, hi = np.searchsorted(chosen, [start, start + len(block)])
                    parts.append(block.iloc[chosen[lo:hi] - start])
                    start += len(block)
                frame = pd.concat(parts, ignore_index=True)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise PublishedRecordError(path=path, reason=f"cannot be read ({' '.join(str(exc).split())})") from None
    components = [c for c in frame.columns if str(c).startswith("component_")]
    if "id" not in frame.columns or not components:
        raise PublishedRecordError(path=path, reason="no id or component_ columns")
    try:
        coordinates = frame[components].to_numpy(dtype=np.float64)
    except ValueError:
        raise PublishedRecordError(path=path, reason="a coordinate that is not a number") from None
    labels = frame["label"].to_numpy(dtype=object) if "label" in frame.columns else None
    kept = {str(c): frame[c].to_numpy(dtype=object) for c in frame.columns
            if c not in ("id", "label") and not str(c).startswith("component_")}
    return Embedding(frame["id"].to_numpy(dtype=object), labels, coordinates, rows, kept)
