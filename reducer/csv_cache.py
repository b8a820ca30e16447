"""A CSV larger than memory, read once into a binary cache (`streaming = true`).

One pass over the file (csv_chunks.py: checked block by block, errors name the line) gathers
the normalisation statistics and appends the float32 feature values to `raw.f32` (rows x
features, row-major). Labels go to `labels.i32` as codes, ids (when there is an id column) to
`ids.csv`, and `meta.json` says what the cache holds and which file it came from. The cache
lives in `outputs/.cache/<job>/`, is built under a temporary name and renamed into place, and
is reused while the CSV's size and modification time and the job's reading options are
unchanged. Nothing here imports TensorFlow.
"""

import csv
import dataclasses
import hashlib
import json
import logging
import os
import secrets
import shutil
import time
from pathlib import Path

import numpy as np

from .csv_chunks import CHUNK_ROWS, CsvChunks
from .data import check_spread
from .dataset import NORMALIZE_METHODS
from .errors import DataError
from .outputs import sha256_file

log = logging.getLogger("reducer")

FORMAT = 1  # bump when the cache layout changes: old caches are then rebuilt
READ_ROWS = 65_536  # rows per read when a whole cache is walked through


@dataclasses.dataclass(frozen=True)
class CachedTable:
    """The cache of one job's CSV; what the streamed pipeline needs instead of `data.Table`."""

    folder: Path
    rows: int
    features: tuple
    offset: np.ndarray  # float32, one per feature
    scale: np.ndarray  # float32, one per feature, never 0
    normalize: str
    label_column: object  # str or None
    id_column: object  # str or None
    label_names: tuple  # label code -> label text
    x_min: float  # the smallest and largest normalised value
    x_max: float
    input_sha256: str
    sha256: str  # of feature values, labels and ids, as data.Table.sha256
    reused: bool = False

    @property
    def in_unit_range(self):
        slack = 1e-6  # as data.Table.in_unit_range
        return self.x_min >= -slack and self.x_max <= 1.0 + slack

    def raw(self, start, count):
        """Rows start..start+count of the raw feature values, float32, read from disk."""
        columns = len(self.features)
        count = max(0, min(count, self.rows - start))
        with open(self.folder / "raw.f32", "rb") as handle:
            handle.seek(start * columns * 4)
            values = np.fromfile(handle, dtype=np.float32, count=count * columns)
        return values.reshape(count, columns)

    def normalised(self, raw):
        return ((raw - self.offset) / self.scale).astype(np.float32)  # as data.make_table

    def labels(self, start, count):
        """Label texts of rows start..start+count (an object array), or None without labels."""
        if self.label_column is None:
            return None
        count = max(0, min(count, self.rows - start))
        codes = np.fromfile(self.folder / "labels.i32", dtype=np.int32, count=count, offset=start * 4)
        return np.asarray(self.label_names, dtype=object)[codes]

    def id_chunks(self, size=READ_ROWS):
        """The ids in order, `size` at a time: text from the id column, else row numbers."""
        if self.id_column is None:
            for start in range(0, self.rows, size):
                yield np.arange(start, min(start + size, self.rows))
            return
        import pandas as pd

        with pd.read_csv(self.folder / "ids.csv", header=None, dtype=str, keep_default_na=False,
                         na_filter=False, chunksize=size) as reader:
            for chunk in reader:
                yield chunk[0].to_numpy(dtype=object)

    def take(self, rows):
        """(raw values, labels) of the sorted row indices `rows`, in one pass over the cache."""
        rows = np.asarray(rows)
        raw = np.empty((len(rows), len(self.features)), dtype=np.float32)
        for start in range(0, self.rows, READ_ROWS):
            lo, hi = np.searchsorted(rows, [start, start + READ_ROWS])
            if hi > lo:
                raw[lo:hi] = self.raw(start, READ_ROWS)[rows[lo:hi] - start]
        labels = None
        if self.label_column is not None:
            codes = np.memmap(self.folder / "labels.i32", dtype=np.int32, mode="r", shape=(self.rows,))
            labels = np.asarray(self.label_names, dtype=object)[np.asarray(codes[rows])]
            del codes
        return raw, labels


# ---------------------------------------------------------------- opening or building


def cache_key(path, options, dataset):
    stat = os.stat(path)
    return {"format": FORMAT, "path": str(path), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "delimiter": options.get("delimiter", ","), "header": options.get("header", True),
            "encoding": options.get("encoding", "utf-8"), "label": options.get("label", dataset.label),
            "id": options.get("id", dataset.id), "features": options.get("features", dataset.features),
            "normalize": options.get("normalize", dataset.normalize)}


def open_table(options, dataset, folder, chunk_rows=CHUNK_ROWS):
    """The CachedTable of the CSV in options["path"]: reused from `folder` when it is still
    valid, else built there with one pass over the file."""
    path = Path(options["path"])
    try:
        key = cache_key(path, options, dataset)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    folder = Path(folder)
    cached = _load(folder, key)
    if cached is not None:
        return cached
    _remove_leftovers(folder)
    temp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    temp.mkdir(parents=True)
    try:
        meta = _build(path, key, temp, chunk_rows)
        _write_json(temp / "meta.json", meta)
        if folder.exists():  # a stale cache: move it aside, then swap the new one in
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
            os.replace(folder, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(temp, folder)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return _table(folder, meta, reused=False)


def _remove_leftovers(folder):
    """Half-built caches of this job from a run that was killed; only this job writes them."""
    if folder.parent.is_dir():
        for path in folder.parent.glob(f".{folder.name}.*-*"):
            shutil.rmtree(path, ignore_errors=True)


def _load(folder, key):
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if meta.get("key") != key:
            return None
        if (folder / "raw.f32").stat().st_size != meta["rows"] * len(meta["features"]) * 4:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return _table(folder, meta, reused=True)


def _table(folder, meta, reused):
    return CachedTable(folder=folder, rows=meta["rows"], features=tuple(meta["features"]),
                       offset=np.asarray(meta["offset"], dtype=np.float32),
                       scale=np.asarray(meta["scale"], dtype=np.float32), normalize=meta["normalize"],
                       label_column=meta["label_column"], id_column=meta["id_column"],
                       label_names=tuple(meta["label_names"]), x_min=meta["x_min"], x_max=meta["x_max"],
                       input_sha256=meta["input_sha256"], sha256=meta["rows_sha256"], reused=reused)


def _write_json(path, value):
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        json.dump(value, handle, indent=1)
        handle.write("\n")


# ---------------------------------------------------------------- the first pass


class _Stats:
    """Count, min, max, mean and sum of squared deviations per column, merged chunk by chunk
    (Chan et al.), so the mean and spread need one pass and no more memory than a chunk."""

    def __init__(self, columns):
        self.n = 0
        self.min = np.full(columns, np.inf)
        self.max = np.full(columns, -np.inf)
        self.mean = np.zeros(columns)
        self.m2 = np.zeros(columns)

    def add(self, x):
        n = len(x)
        if not n:
            return
        mean = x.mean(axis=0)
        m2 = ((x - mean) ** 2).sum(axis=0)
        delta = mean - self.mean
        total = self.n + n
        self.m2 += m2 + delta ** 2 * self.n * n / total
        self.mean += delta * n / total
        self.n = total
        self.min = np.minimum(self.min, x.min(axis=0))
        self.max = np.maximum(self.max, x.max(axis=0))

    def affine(self, method):
        """(offset, scale) per column, float64, as data._affine computes them in memory."""
        if method == "minmax":
            offset, scale = self.min, self.max - self.min
        elif method == "zscore":
            offset, scale = self.mean, np.sqrt(self.m2 / self.n)
        else:
            offset, scale = np.zeros_like(self.mean), np.ones_like(self.mean)
        return offset, np.where(scale > 0, scale, 1.0)


def _build(path, key, folder, chunk_rows):
    started = time.time()
    normalize = key["normalize"]
    if normalize not in NORMALIZE_METHODS:
        raise DataError(f"{path}: normalize must be one of {', '.join(NORMALIZE_METHODS)}, got {normalize!r}")
    reader = CsvChunks(path, key["delimiter"], key["header"], key["encoding"], key["label"], key["id"],
                       key["features"], chunk_rows)
    label_codes = {}
    raw_digest = hashlib.sha256()
    rows, reported = 0, time.time()
    with reader, open(folder / "raw.f32", "wb") as raw_file, \
            open(folder / "labels.i32", "wb") as label_file, \
            open(folder / "ids.csv", "w", encoding="utf-8", newline="") as id_file:
        stats = _Stats(len(reader.features))
        id_writer = csv.writer(id_file, lineterminator="\n")
        for x, ids, labels in reader:
            stats.add(x)
            raw32 = np.ascontiguousarray(x, dtype=np.float32)
            raw_digest.update(raw32.tobytes())
            raw32.tofile(raw_file)
            if labels is not None:
                for value in dict.fromkeys(labels):
                    label_codes.setdefault(value, len(label_codes))
                codes = np.fromiter((label_codes[v] for v in labels), dtype=np.int32, count=len(labels))
                codes.tofile(label_file)
            if ids is not None:
                id_writer.writerows([value] for value in ids)
            rows += len(x)
            if time.time() - reported > 30:
                log.info("%s: %d rows read into the cache so far", path, rows)
                reported = time.time()
    if rows < 2:
        raise DataError(f"{path}: {rows} data row{'' if rows == 1 else 's'}; expected at least 2 rows")
    names = list(reader.features)
    min32, max32 = stats.min.astype(np.float32), stats.max.astype(np.float32)
    offset, scale = stats.affine(normalize)
    try:
        offset32, scale32 = check_spread(names, min32, max32, offset, scale, normalize, path)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    x_min = ((min32 - offset32) / scale32).astype(np.float32)
    x_max = ((max32 - offset32) / scale32).astype(np.float32)
    label_names = list(label_codes)
    meta = {
        "key": key, "rows": rows, "features": names, "normalize": normalize,
        "offset": offset32.tolist(), "scale": scale32.tolist(),
        "label_column": reader.label_column, "id_column": reader.id_column,
        "label_names": label_names, "x_min": float(x_min.min()), "x_max": float(x_max.max()),
    }
    if reader.label_column is None:
        os.unlink(folder / "labels.i32")
    if reader.id_column is None:
        os.unlink(folder / "ids.csv")
    meta["input_sha256"] = sha256_file(path)
    meta["rows_sha256"] = _rows_digest(raw_digest, _table(folder, {**meta, "rows_sha256": "",
                                                                    "input_sha256": ""}, False))
    meta["seconds"] = round(time.time() - started, 3)
    return meta


def _rows_digest(raw_digest, table):
    """data.Table.sha256 computed piecewise: the float32 values, then labels, then ids, each
    joined by \\x1f, so one CSV gives the same digest streamed or in memory."""
    digest = raw_digest.copy()
    parts = []
    if table.label_column is not None:
        parts.append(table.labels(s, READ_ROWS) for s in range(0, table.rows, READ_ROWS))
    parts.append(table.id_chunks())
    for chunks in parts:
        first = True
        for chunk in chunks:
            text = "\x1f".join(map(str, chunk))
            digest.update((text if first else "\x1f" + text).encode())
            first = False
    return digest.hexdigest()

