"""A table held in memory, and the one way every table is assembled from checked blocks.

Whatever read the rows (a plugin's DataFrame, or a dataset's block reader such as the CSV
one), they arrive here as blocks of (float64 values, ids, labels), already cell-checked
(checks.py). `TableBuilder` gathers the normalisation statistics (normalise.ColumnStats), the
row digest and the float32 values; it finishes into an in-memory `MemoryTable` here, or into the
float32 cache on disk (cache.py), with the same numbers either way.
"""

import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Protocol, Tuple

import numpy as np

from reducer.datasets.dataset import Dataset
from reducer.errors import DataError, PluginError
from reducer.tables import checks
from reducer.tables.normalise import ColumnStats, check_spread, method_of, normalised

log = logging.getLogger("reducer")
READ_ROWS = 65_536  # rows per piece when a whole table is walked through (embedding.csv, the digest)
Block = Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]  # (values, ids, labels) of some rows


class RowsDigest:
    """sha256 of a table's float32 values, then its labels, then its ids, each joined by \\x1f:
    one digest for one table however it was read (in memory, in blocks, from the cache), which
    changes when the rows change order. `rows_hexdigest` is the digest of the rows whatever
    their order (the fingerprint's: a shuffled table is the same table)."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.row_set = RowSetDigest()

    def add_values(self, raw32: np.ndarray) -> None:
        self.digest.update(np.ascontiguousarray(raw32, dtype=np.float32).tobytes())

    def hexdigest(self, *columns: Optional[Iterable[Any]]) -> str:
        """Finish with each column (labels, ids; None to skip) given as an iterable of chunks."""
        digest = self.digest.copy()
        for chunks in columns:
            if chunks is None:
                continue
            first = True
            for chunk in chunks:
                text = "\x1f".join(map(str, chunk))
                digest.update((text if first else "\x1f" + text).encode())
                first = False
        return digest.hexdigest()


_MIX = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))
_ROW_SEEDS = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xD1B54A32D192ED03))


def _mixed(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, row by row (uint64 arithmetic wraps, as it should here)."""
    h = h ^ (h >> np.uint64(30))
    h = h * _MIX[0]
    h = h ^ (h >> np.uint64(27))
    h = h * _MIX[1]
    return h ^ (h >> np.uint64(31))


class RowSetDigest:
    """A digest of a multiset of rows (float32 values, id, label): two 64-bit hashes of each
    row, summed modulo 2**64 over the rows, so the order the rows come in does not count and
    a table streamed in blocks needs 16 bytes of state. Not a defence against a forger: a
    guard against mistaking one night's table for another's."""

    def __init__(self) -> None:
        self.sums = [np.uint64(0), np.uint64(0)]
        self.rows = 0

    def add(self, raw32: np.ndarray, ids: Any, labels: Any) -> None:
        values = np.ascontiguousarray(raw32, dtype=np.float32).view(np.uint32).astype(np.uint64)
        labels = [None] * len(values) if labels is None else labels
        texts = np.frombuffer(b"".join(hashlib.blake2b(f"{i}\x1f{lab}".encode(), digest_size=16).digest()
                                       for i, lab in zip(ids, labels)), dtype="<u8").reshape(-1, 2)
        with np.errstate(over="ignore"):
            for lane, seed in enumerate(_ROW_SEEDS):
                h = np.full(len(values), seed, dtype=np.uint64)
                for column in values.T:
                    h = (h ^ column) * _MIX[lane]
                    h = h ^ (h >> np.uint64(29))
                h = _mixed(h ^ texts[:, lane])
                self.sums[lane] = np.uint64(self.sums[lane] + h.sum(dtype=np.uint64))
        self.rows += len(values)

    def hexdigest(self) -> str:
        state = b"reducer rows, any order, 1" + b"".join(int(s).to_bytes(8, "little") for s in self.sums)
        return hashlib.sha256(state + self.rows.to_bytes(8, "little")).hexdigest()


class DuplicateIdError(DataError):
    """Two rows with the same id: a join on id would get both, and night-to-night matching
    would lose them. Rows count from 0, as default ids do; the value and the file lines are
    filled in by whoever knows them (`explained`)."""

    def __init__(self, origin: str, column: str, rows: Tuple[int, int], value: object = None,
                 lines: Optional[Tuple[int, int]] = None) -> None:
        where = (f"lines {lines[0]} and {lines[1]} (rows {rows[0]} and {rows[1]})" if lines
                 else f"rows {rows[0]} and {rows[1]}")
        value_text = "" if value is None else f" {str(value)!r}"
        super().__init__(path=origin, reason=f"id{value_text} appears twice in id column {column!r}, at {where}; "
                                             f"expected a unique id in every row")
        self.origin, self.id_column, self.rows, self.value, self.lines = origin, column, rows, value, lines

    def explained(self, value: object = None, lines: Optional[Tuple[int, int]] = None) -> "DuplicateIdError":
        return DuplicateIdError(self.origin, str(self.id_column), self.rows, self.value if value is None else value,
                                self.lines if lines is None else lines)


def id_hashes(ids: Any) -> np.ndarray:
    """A 64-bit hash of each id's text, to find a repeated id with 8 bytes a row."""
    return np.frombuffer(b"".join(hashlib.blake2b(str(i).encode(), digest_size=8).digest() for i in ids),
                         dtype="<u8").astype(np.uint64)


def first_repeat(hashes: np.ndarray) -> Optional[Tuple[int, int]]:
    """(first row, row repeating it), counted from 0, of the earliest repeated value, or None."""
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    same = np.flatnonzero(ordered[1:] == ordered[:-1])
    if not same.size:
        return None
    k = int(same[np.argmin(order[same + 1])])  # the earliest second occurrence; its run starts at k
    return int(order[k]), int(order[k + 1])


@dataclass(frozen=True)
class Layout:
    """Which columns a table has: names of the features, the label and the id column."""

    features: tuple
    label_column: Optional[str]
    id_column: Optional[str]


class TableBuilder:
    """Takes checked blocks, keeps the statistics and digest; `finish` checks the spreads and
    gives (offset32, scale32, normalize). A `sink(raw32, ids, labels)` keeps the rows."""

    def __init__(self, layout: "Layout", normalize: Any, dataset_name: str, origin: str,
                 sink: Optional[Callable[[np.ndarray, Any, Any], None]] = None) -> None:
        self.layout = layout
        self.method, self.fixed = method_of(normalize, dataset_name)
        self.origin = origin
        self.stats = ColumnStats(len(layout.features))
        self.digest = RowsDigest()
        self.sink = sink
        self.rows = 0
        self.id_hashes: List[np.ndarray] = []  # per block, when there is an id column: a repeated id is refused

    def add(self, values: np.ndarray, ids: Optional[np.ndarray], labels: Optional[np.ndarray]) -> None:
        self.stats.add(values)
        raw32 = np.ascontiguousarray(values, dtype=np.float32)
        self.digest.add_values(raw32)
        self.digest.row_set.add(raw32, np.arange(self.rows, self.rows + len(values)) if ids is None else ids, labels)
        if self.layout.id_column is not None and ids is not None:
            self.id_hashes.append(id_hashes(ids))
        if self.sink is not None:
            self.sink(raw32, ids, labels)
        self.rows += len(values)

    def finish(self) -> Tuple[np.ndarray, np.ndarray, str]:
        """(offset32, scale32, normalize) after every block; DataError, starting with the origin,
        when the table is unusable."""
        try:
            if self.rows < 2:
                raise DataError(f"{self.rows} data row{'' if self.rows == 1 else 's'}; expected at least 2 rows")
            if self.id_hashes:
                repeat = first_repeat(np.concatenate(self.id_hashes))
                if repeat is not None:
                    raise DuplicateIdError(self.origin, str(self.layout.id_column), repeat)
            offset, scale = self.stats.affine(self.method, self.fixed)
            offset32, scale32 = check_spread(self.layout.features, self.stats.min.astype(np.float32),
                                             self.stats.max.astype(np.float32), offset, scale, self.method,
                                             self.origin)
        except DuplicateIdError:
            raise
        except DataError as exc:
            raise exc.within(path=self.origin) from None
        return offset32, scale32, self.method


class Table(Protocol):
    """The one interface of a table, held in memory (`MemoryTable`) or in the float32 cache on disk
    (cache.CachedTable): the same names, the same kinds. Attributes describe the table; methods
    read rows (a start row and a count, or sorted row indices, counted from 0 in the order the
    rows were read), whether from memory or from disk. Code outside reducer/tables/ uses this
    interface only and never asks where the rows are."""

    @property
    def rows(self) -> int: ...
    @property
    def features(self) -> Tuple[str, ...]: ...
    @property
    def offset(self) -> np.ndarray: ...  # float32, one per feature
    @property
    def scale(self) -> np.ndarray: ...  # float32, one per feature, never 0
    @property
    def normalize(self) -> str: ...  # "minmax", "zscore", "none" or "fixed"
    @property
    def label_column(self) -> Optional[str]: ...
    @property
    def id_column(self) -> Optional[str]: ...
    @property
    def sha256(self) -> str: ...  # of the rows (feature values, label, id), whatever their order
    @property
    def order_sha256(self) -> str: ...  # of the feature values, labels and ids in their order
    @property
    def source(self) -> Optional[str]: ...  # the file the rows came from, when the reader said
    @property
    def held(self) -> str: ...  # "memory" or "cache", as the manifest's `table.held`
    @property
    def where(self) -> str: ...  # where the rows are, for the log line
    @property
    def in_unit_range(self) -> bool: ...  # every normalised value in [0, 1]
    def cache_facts(self) -> Optional[Dict[str, Any]]: ...  # the cache's folder and reuse, or None
    def raw(self, start: int = 0, count: Optional[int] = None) -> np.ndarray: ...
    def labels(self, start: int = 0, count: Optional[int] = None) -> Optional[np.ndarray]: ...
    def ids(self, start: int = 0, count: Optional[int] = None) -> np.ndarray: ...
    def id_chunks(self, size: int = READ_ROWS) -> Iterator[np.ndarray]: ...
    def chunks(self, size: int = READ_ROWS) -> Iterator[Block]: ...
    def take(self, rows: np.ndarray) -> Tuple[np.ndarray, Optional[np.ndarray]]: ...
    def ids_at(self, rows: np.ndarray) -> np.ndarray: ...
    def normalised(self, raw: np.ndarray) -> np.ndarray: ...
    def normalised_rows(self) -> np.ndarray: ...
    # Every normalised row as it is already held (no read, no copy), or None when the rows are on
    # disk: the caller then reads them in pieces. How the rows are held stays the table's business.
    def resident_rows(self) -> Optional[np.ndarray]: ...


def span(start: int, count: Optional[int], rows: int) -> slice:
    """Rows start..start+count (all from start when count is None), clipped to the table."""
    end = rows if count is None else min(rows, start + max(0, count))
    return slice(min(start, rows), max(min(start, rows), end))


@dataclass(frozen=True)
class MemoryTable:
    """Every row in memory; answers the `Table` interface (as cache.CachedTable does from disk)."""

    values: np.ndarray  # float32, rows x features, as loaded
    x: np.ndarray  # float32, normalised: (values - offset) / scale
    offset: np.ndarray  # float32, one per feature
    scale: np.ndarray  # float32, one per feature, never 0
    features: Tuple[str, ...]
    id_values: np.ndarray
    label_values: Optional[np.ndarray]
    id_column: Optional[str]
    label_column: Optional[str]
    normalize: str  # "minmax", "zscore", "none" or "fixed"
    sha256: str  # of the rows (feature values, label, id), whatever their order
    source: Optional[str] = None  # the file the rows came from, when the reader said
    order_sha256: str = ""  # of the feature values, labels and ids in their order
    held = "memory"
    where = "in memory"

    @property
    def rows(self) -> int:
        return len(self.values)

    @property
    def in_unit_range(self) -> bool:
        """True when every normalised value lies in [0, 1]: a sigmoid output can reproduce it."""
        slack = 1e-6  # float32 rounding of (x - min) / (max - min) can land a hair outside [0, 1]
        return bool(self.x.size) and float(self.x.min()) >= -slack and float(self.x.max()) <= 1.0 + slack

    def cache_facts(self) -> Optional[Dict[str, Any]]:
        return None

    def raw(self, start: int = 0, count: Optional[int] = None) -> np.ndarray:
        """Rows start..start+count of the raw feature values, float32 (every row by default)."""
        return self.values[span(start, count, self.rows)]

    def labels(self, start: int = 0, count: Optional[int] = None) -> Optional[np.ndarray]:
        """Labels of rows start..start+count, or None without a label column."""
        return None if self.label_values is None else self.label_values[span(start, count, self.rows)]

    def ids(self, start: int = 0, count: Optional[int] = None) -> np.ndarray:
        """Ids of rows start..start+count: the id column's, else row numbers."""
        return self.id_values[span(start, count, self.rows)]

    def id_chunks(self, size: int = READ_ROWS) -> Iterator[np.ndarray]:
        for start in range(0, self.rows, size):
            yield self.ids(start, size)

    def take(self, rows: np.ndarray) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """(raw values, labels) of the row indices `rows`."""
        return self.values[rows], None if self.label_values is None else self.label_values[rows]

    def ids_at(self, rows: np.ndarray) -> np.ndarray:
        """The ids of the sorted row indices `rows`."""
        return self.id_values[rows]

    def chunks(self, size: int = READ_ROWS) -> Iterator[Block]:
        """(raw values, ids, labels) of `size` rows at a time, in order."""
        for start in range(0, self.rows, size):
            yield self.raw(start, size), self.ids(start, size), self.labels(start, size)

    def normalised(self, raw: np.ndarray) -> np.ndarray:
        return normalised(raw, self.offset, self.scale)

    def normalised_rows(self) -> np.ndarray:
        return self.x

    def resident_rows(self) -> Optional[np.ndarray]:
        """Every normalised row: held in memory, handed over as it is."""
        return self.x


def assemble(blocks: Iterable[Block], layout: Layout, normalize: Any, dataset_name: str, origin: str,
             source: Optional[str] = None) -> MemoryTable:
    """An in-memory `MemoryTable` from checked blocks: (values float64, ids or None, labels or None)."""
    raws: List[np.ndarray] = []
    ids: List[Any] = []
    labels: List[Any] = []

    def keep(raw32: np.ndarray, block_ids: Any, block_labels: Any) -> None:
        raws.append(raw32)
        ids.append(block_ids)
        labels.append(block_labels)

    builder = TableBuilder(layout, normalize, dataset_name, origin, sink=keep)
    for values, block_ids, block_labels in blocks:
        builder.add(values, block_ids, block_labels)
    try:
        offset32, scale32, method = builder.finish()
    except DuplicateIdError as exc:
        raise exc.explained(value=np.concatenate(ids)[exc.rows[1] - 1]) from None
    raw32 = np.concatenate(raws) if len(raws) != 1 else raws[0]
    label_array = None if layout.label_column is None else np.concatenate(labels)
    if layout.id_column is None:
        id_array = np.arange(len(raw32))
    else:
        id_array = np.concatenate(ids)
    in_order = builder.digest.hexdigest([label_array] if label_array is not None else None, [id_array])
    return MemoryTable(values=raw32, x=normalised(raw32, offset32, scale32), offset=offset32, scale=scale32,
                       features=layout.features, id_values=id_array, label_values=label_array,
                       id_column=layout.id_column, label_column=layout.label_column, normalize=method,
                       sha256=builder.digest.row_set.hexdigest(), source=source, order_sha256=in_order)


# ---------------------------------------------------------------- a plugin's DataFrame


def origin_of(frame: Any, dataset_name: str) -> str:
    """What a message about these rows starts with: the data file, else the dataset."""
    source = frame.attrs.get("source") if hasattr(frame, "attrs") else None
    return str(source) if source else f"dataset {dataset_name!r}"


def named_columns(frame: Any, dataset: Dataset, options: Mapping[str, Any],
                  doing: str = "load()") -> Tuple[Any, Any, Optional[List[Any]]]:
    """The frame's label, id and named feature columns (None where neither the job nor the
    dataset names one; features None when they name none): DataError for a name the columns
    lack or a column name that appears twice. Only the column names are looked at: `run` on the
    loaded rows and `reducer check` on a dataset's header (`Dataset.header`) ask here."""
    if frame.columns.nlevels != 1:
        raise PluginError(f"dataset {dataset.name!r}: {doing} returned {frame.columns.nlevels} levels of "
                          f"column names; expected one name per column")
    names = [str(c) for c in frame.columns]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DataError(f"column name(s) {', '.join(map(repr, twice))} appear more than once; "
                        f"expected unique column names")
    label = checks.find_column(frame.columns, options.get("label", dataset.label), "label")
    id_column = checks.find_column(frame.columns, options.get("id", dataset.id), "id")
    if "features" in options or dataset.features is not None:
        return label, id_column, [checks.find_column(frame.columns, name, "feature")
                                  for name in options.get("features", dataset.features)]
    return label, id_column, None


def frame_layout(frame: Any, dataset: Dataset, options: Mapping[str, Any]) -> Tuple[Any, Any, List[Any]]:
    """Which of the frame's columns are the label, the id and the features."""
    label, id_column, features = named_columns(frame, dataset, options)
    if features is None:
        features = [c for c in frame.columns if c not in (label, id_column)]
        text = [c for c in features if not checks.has_number(frame[c])]
        if text:
            log.info("%s: skipping text column(s) %s; name them in features to be told why",
                     origin_of(frame, dataset.name), checks.names(text))
            features = [c for c in features if c not in text]
    if not features:
        raise DataError(f"no numeric feature columns besides the label and id; the columns are: "
                        f"{checks.names(frame.columns)}")
    return label, id_column, features


def make_table(frame: Any, dataset: Dataset, options: Mapping[str, Any]) -> MemoryTable:
    """Check the rows a plugin's load() returned and normalise them: a `MemoryTable`.

    options: the job's [dataset] table; `label`, `id`, `features`, `normalize` there override
    the dataset's own choices. Problems with the rows raise DataError starting with the data
    file (or the dataset's name when the plugin did not say which file).
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise PluginError(f"dataset {dataset.name!r}: load() must return a pandas DataFrame, "
                          f"got {type(frame).__name__}")
    origin = origin_of(frame, dataset.name)
    try:
        if len(frame) < 2:
            raise DataError(f"{len(frame)} data row{'' if len(frame) == 1 else 's'}; expected at least 2 rows")
        label, id_column, features = frame_layout(frame, dataset, options)
        values = np.column_stack([checks.numeric_column(frame, column) for column in features])
        labels = checks.label_values(frame, label) if label is not None else None
        ids = checks.id_values(frame, id_column) if id_column is not None else None
    except DataError as exc:
        raise exc.within(path=origin) from None
    if ids is not None:
        repeat = first_repeat(id_hashes(ids))
        if repeat is not None:
            lines = frame.attrs.get("lines")
            raise DuplicateIdError(origin, str(id_column), repeat, ids[repeat[1]],
                                   None if lines is None else (int(lines[repeat[0]]), int(lines[repeat[1]])))
    layout = Layout(tuple(str(f) for f in features), None if label is None else str(label),
                    None if id_column is None else str(id_column))
    source = frame.attrs.get("source")
    return assemble([(values, ids, labels)], layout, options.get("normalize", dataset.normalize),
                    dataset.name, origin, None if source is None else str(source))
