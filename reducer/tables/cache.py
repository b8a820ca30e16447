"""A table held on disk: the float32 cache a large input is read into once.

One pass over the dataset's blocks (Dataset.read_blocks: for the csv dataset, csv_reader.py)
goes through the same TableBuilder as a table held in memory (table.py), so the statistics,
checks and row digest are the same; the float32 feature values go to `raw.f32` (rows x
features, row-major), labels to `labels.i32` as codes, ids (when there is an id column) to
`ids.csv`, and `meta.json` says what the cache holds and which input it came from. The cache
lives in `outputs/.cache/<job>/`, is built under a temporary name and renamed into place, and
is reused while the input's content (its sha256), the job's [dataset] options and the plugin's
code are unchanged; a dataset without an input file reducer can hash is read again every time.
Nothing here imports TensorFlow.
"""

import csv
import dataclasses
import json
import logging
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple, Union

import numpy as np

from reducer.tables.normalise import normalised
from reducer.tables.table import READ_ROWS, Block, Layout, TableBuilder, span

log = logging.getLogger("reducer")

FORMAT = 3  # bump when the cache layout or key changes: old caches are then rebuilt
# Options that change how the rows are read, never which rows: not part of the key.
ROW_NEUTRAL_OPTIONS = ("streaming", "chunk_rows")


@dataclasses.dataclass(frozen=True)
class CachedTable:
    """The cache of one job's table: answers the `table.Table` interface, from disk."""

    folder: Path
    rows: int
    features: Tuple[str, ...]
    offset: np.ndarray  # float32, one per feature
    scale: np.ndarray  # float32, one per feature, never 0
    normalize: str
    label_column: Optional[str]
    id_column: Optional[str]
    label_names: Tuple[Any, ...]  # label code -> label text
    x_min: float  # the smallest and largest normalised value
    x_max: float
    input_sha256: Optional[str]
    sha256: str  # of the rows whatever their order, as table.MemoryTable.sha256
    reused: bool = False
    order_sha256: str = ""  # as table.MemoryTable.order_sha256
    source = None  # the rows came through the cache: the input file is in the manifest already
    held = "cache"

    @property
    def where(self) -> str:
        return f"in the float32 cache, {'reused from' if self.reused else 'written to'} {self.folder}"

    @property
    def in_unit_range(self) -> bool:
        slack = 1e-6  # as table.MemoryTable.in_unit_range
        return self.x_min >= -slack and self.x_max <= 1.0 + slack

    def cache_facts(self) -> Optional[Dict[str, Any]]:
        """The manifest's facts about the cache: its folder and whether this run reused it."""
        return {"cache": str(self.folder), "cache_reused": self.reused}

    def raw(self, start: int = 0, count: Optional[int] = None) -> np.ndarray:
        """Rows start..start+count of the raw feature values, float32, read from disk (every row
        by default)."""
        rows = span(start, count, self.rows)
        columns = len(self.features)
        with open(self.folder / "raw.f32", "rb") as handle:
            handle.seek(rows.start * columns * 4)
            values = np.fromfile(handle, dtype=np.float32, count=(rows.stop - rows.start) * columns)
        return values.reshape(rows.stop - rows.start, columns)

    def normalised(self, raw: np.ndarray) -> np.ndarray:
        return normalised(raw, self.offset, self.scale)

    def normalised_rows(self) -> np.ndarray:
        """Every row, normalised, in memory (the neighbour objective's graph needs them all)."""
        return self.normalised(self.raw())

    def resident_rows(self) -> Optional[np.ndarray]:
        """None: the rows are on disk, to be read in pieces (`raw`, `chunks`)."""
        return None

    def chunks(self, size: int = READ_ROWS) -> Iterator[Block]:
        """(raw values, ids, labels) of `size` rows at a time, in order, read from disk."""
        for start, ids in zip(range(0, self.rows, size), self.id_chunks(size)):
            yield self.raw(start, size), ids, self.labels(start, size)

    def labels(self, start: int = 0, count: Optional[int] = None) -> Optional[np.ndarray]:
        """Label texts of rows start..start+count (an object array), or None without labels."""
        if self.label_column is None:
            return None
        rows = span(start, count, self.rows)
        codes = np.fromfile(self.folder / "labels.i32", dtype=np.int32, count=rows.stop - rows.start,
                            offset=rows.start * 4)
        return np.asarray(self.label_names, dtype=object)[codes]

    def ids(self, start: int = 0, count: Optional[int] = None) -> np.ndarray:
        """Ids of rows start..start+count, in one pass over the ids up to them."""
        rows = span(start, count, self.rows)
        return self.ids_at(np.arange(rows.start, rows.stop))

    def id_chunks(self, size: int = READ_ROWS) -> Iterator[np.ndarray]:
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

    def ids_at(self, rows: np.ndarray) -> np.ndarray:
        """The ids of the sorted row indices `rows`, in one pass over the ids."""
        rows = np.asarray(rows)
        found, start = [], 0
        for chunk in self.id_chunks():
            lo, hi = np.searchsorted(rows, [start, start + len(chunk)])
            found.append(np.asarray(chunk, dtype=object)[rows[lo:hi] - start])
            start += len(chunk)
        return np.concatenate(found) if found else np.empty(0, dtype=object)

    def take(self, rows: np.ndarray) -> Tuple[np.ndarray, Optional[np.ndarray]]:
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


def cache_key(input_sha256: Optional[str], options: Mapping[str, Any], normalize: Any,
              code: Optional[str]) -> Dict[str, Any]:
    """What the cache depends on: the input file's content (None when the dataset has no file
    reducer can hash), every [dataset] option as the plugin receives it (defaults filled in),
    the normalisation and the plugin's code (datasets/code.py)."""
    rows_options = {k: v for k, v in options.items() if k not in ROW_NEUTRAL_OPTIONS}
    return json.loads(json.dumps({"format": FORMAT, "input_sha256": input_sha256, "options": rows_options,
                                  "normalize": normalize, "code": code}, sort_keys=True, default=str))


def open_table(blocks: Any, key: Dict[str, Any], folder: Union[str, Path], dataset_name: str,
               origin: str) -> CachedTable:
    """The CachedTable for `key`: reused from `folder` when it holds it, else built there from
    `blocks` (a Dataset.read_blocks context manager, entered only when the cache is built)."""
    folder = Path(folder)
    # Without an input file to hash, nothing says the rows are yesterday's: read them again.
    cached = _load(folder, key) if key["input_sha256"] is not None else None
    if cached is not None:
        return cached
    _remove_leftovers(folder)
    temp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    temp.mkdir(parents=True)
    try:
        meta = _build(blocks, key, temp, dataset_name, origin)
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


def _remove_leftovers(folder: Path) -> None:
    """Half-built caches of this job from a run that was killed; only this job writes them."""
    if folder.parent.is_dir():
        for path in folder.parent.glob(f".{folder.name}.*-*"):
            shutil.rmtree(path, ignore_errors=True)


def _load(folder: Path, key: Dict[str, Any]) -> Optional[CachedTable]:
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if meta.get("key") != key:
            return None
        if (folder / "raw.f32").stat().st_size != meta["rows"] * len(meta["features"]) * 4:
            return None
        if "rows_order_sha256" not in meta:  # written before the digest ignored the rows' order
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return _table(folder, meta, reused=True)


def _table(folder: Path, meta: Dict[str, Any], reused: bool) -> CachedTable:
    return CachedTable(folder=folder, rows=meta["rows"], features=tuple(meta["features"]),
                       offset=np.asarray(meta["offset"], dtype=np.float32),
                       scale=np.asarray(meta["scale"], dtype=np.float32), normalize=meta["normalize"],
                       label_column=meta["label_column"], id_column=meta["id_column"],
                       label_names=tuple(meta["label_names"]), x_min=meta["x_min"], x_max=meta["x_max"],
                       input_sha256=meta["key"]["input_sha256"], sha256=meta["rows_sha256"], reused=reused,
                       order_sha256=meta.get("rows_order_sha256", ""))


def _write_json(path: Path, value: Any) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        json.dump(value, handle, indent=1)
        handle.write("\n")


# ---------------------------------------------------------------- the first pass


def _build(blocks: Any, key: Dict[str, Any], folder: Path, dataset_name: str, origin: str) -> Dict[str, Any]:
    started = time.time()
    label_codes: Dict[Any, int] = {}
    rows, reported = 0, time.time()
    with blocks as opened, open(folder / "raw.f32", "wb") as raw_file, \
            open(folder / "labels.i32", "wb") as label_file, \
            open(folder / "ids.csv", "w", encoding="utf-8", newline="") as id_file:
        id_writer = csv.writer(id_file, lineterminator="\n")

        def write(raw32: np.ndarray, ids: Optional[np.ndarray], labels: Optional[np.ndarray]) -> None:
            raw32.tofile(raw_file)
            if labels is not None:
                for value in dict.fromkeys(labels):
                    label_codes.setdefault(value, len(label_codes))
                codes = np.fromiter((label_codes[v] for v in labels), dtype=np.int32, count=len(labels))
                codes.tofile(label_file)
            if ids is not None:
                id_writer.writerows([value] for value in ids)

        layout = Layout(tuple(opened.features), opened.label_column, opened.id_column)
        builder = TableBuilder(layout, key["normalize"], dataset_name, origin, sink=write)
        for values, ids, labels in opened:
            builder.add(values, ids, labels)
            rows += len(values)
            if time.time() - reported > 30:
                log.info("%s: %d rows read into the cache so far", origin, rows)
                reported = time.time()
    offset32, scale32, method = builder.finish()
    stats = builder.stats
    x_min = normalised(stats.min.astype(np.float32), offset32, scale32)
    x_max = normalised(stats.max.astype(np.float32), offset32, scale32)
    meta = {
        "key": key, "rows": rows, "features": list(layout.features), "normalize": method,
        "offset": offset32.tolist(), "scale": scale32.tolist(),
        "label_column": layout.label_column, "id_column": layout.id_column,
        "label_names": list(label_codes), "x_min": float(x_min.min()), "x_max": float(x_max.max()),
    }
    if layout.label_column is None:
        os.unlink(folder / "labels.i32")
    if layout.id_column is None:
        os.unlink(folder / "ids.csv")
    unfinished = _table(folder, {**meta, "rows_sha256": ""}, False)
    meta["rows_sha256"] = builder.digest.row_set.hexdigest()
    meta["rows_order_sha256"] = builder.digest.hexdigest(
        None if layout.label_column is None else (unfinished.labels(s, READ_ROWS)
                                                  for s in range(0, rows, READ_ROWS)),
        unfinished.id_chunks())
    meta["seconds"] = round(time.time() - started, 3)
    return meta
