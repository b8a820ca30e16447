"""Opening a job's table: the one entry point for `reducer run` and `reducer check --data`.

A dataset whose plugin offers `read_blocks` (the csv dataset does) can be held in memory or
in the float32 cache on disk (cache.py); reducer decides from the input file's size and the
memory it would need, unless the job says `streaming = true` or `false`. Any other dataset
loads a DataFrame, which is checked and held in memory. The decision and its reason are one
log line and go into the manifest.
"""

import contextlib
import dataclasses
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple, Union

import numpy as np

from reducer import gate, published
from reducer.config import Job
from reducer.datasets import calls
from reducer.datasets.dataset import Dataset
from reducer.datasets.code import code_digest
from reducer.engine.sizing import available_memory, size_text, sized_job, what_it_will_do
from reducer.errors import DataError, JobError, PluginError, ReducerError
from reducer.tables import blocks, cache, checks, table as tables

# A table is held in memory when it would need at most this much, and at most a quarter of
# the memory available now; above, it goes to the float32 cache, whose memory stays near a few
# blocks. Held in memory, a CSV needs about 4 bytes per byte of text: float64 blocks while
# parsing, then the float32 values and their normalised copy.
MEMORY_LIMIT_BYTES = 1 << 30
MEMORY_SHARE = 4
BYTES_PER_INPUT_BYTE = 4
# A reader that gives its row count instead: float64 blocks while reading, then the float32
# values and their normalised copy.
BYTES_PER_VALUE = 16
CHUNK_ROWS = 100_000  # rows per block read (`chunk_rows`)


@dataclasses.dataclass(frozen=True)
class Storage:
    in_memory: bool
    reason: str
    measured: bool = True  # False: nothing measured yet (no input file); a reader's size hint may decide

    def section(self) -> Dict[str, str]:
        """The manifest's `table` section."""
        return {"held": "memory" if self.in_memory else "cache", "reason": self.reason}


def size_hint(reader: Any) -> Tuple[Optional[int], Optional[int]]:
    """(rows, bytes) the dataset's block reader says it holds (its `rows` and `bytes`
    attributes, on the context manager or what entering it gave), each None when not said."""
    found = []
    for name in ("rows", "bytes"):
        value = getattr(reader, name, None)
        if value is None and getattr(reader, "manager", None) is not None:
            value = getattr(reader.manager, name, None)
        found.append(int(value) if isinstance(value, (int, float)) and not isinstance(value, bool)
                     and value >= 0 else None)
    return found[0], found[1]


def choose(job: Job, dataset: Dataset, available: Optional[int] = None,
           hint: Optional[Tuple[Optional[int], Optional[int]]] = None, columns: Optional[int] = None) -> Storage:
    """Where the job's table will live, and why, in one line. `hint`: (rows, bytes) from the
    dataset's reader (size_hint), for a dataset with no input file to measure; `columns`: its
    feature count."""
    if dataset.read_blocks is None:
        return Storage(True, f"dataset {dataset.name!r} loads its rows into memory")
    forced = job.dataset_options.get("streaming")
    if forced is not None:
        return Storage(not forced, f"the job says streaming = {'true' if forced else 'false'}")
    path = job.dataset_options.get("path")
    try:
        size = Path(path).stat().st_size if path else None
    except OSError:
        size = None
    rows, size_bytes = hint or (None, None)
    if size is not None:
        need = size * BYTES_PER_INPUT_BYTE
        comparison = f"input {size_text(size)} would need about {size_text(need)} in memory"
    elif rows is not None and columns:
        need = rows * columns * BYTES_PER_VALUE
        comparison = (f"dataset {dataset.name!r} says {rows:,} rows x {columns} columns, which would need about "
                      f"{size_text(need)} in memory")
    elif size_bytes is not None:
        need = size_bytes * BYTES_PER_INPUT_BYTE
        comparison = (f"dataset {dataset.name!r} says {size_text(size_bytes)} of input, which would need about "
                      f"{size_text(need)} in memory")
    else:
        return Storage(True, "no input file to measure, and the dataset's reader gives no size", measured=False)
    available = available_memory() if available is None else available
    limit = MEMORY_LIMIT_BYTES if available is None else min(MEMORY_LIMIT_BYTES, available // MEMORY_SHARE)
    if need <= limit:
        return Storage(True, f"{comparison}, within the limit of {size_text(limit)}")
    return Storage(False, f"{comparison}, above the limit of {size_text(limit)}: at most 1 GiB and a quarter "
                          f"of the {size_text(available or 0)} available")


def chunk_rows(job: Job) -> int:
    return job.dataset_options.get("chunk_rows", CHUNK_ROWS)


def reading_options(job: Job, dataset: Dataset) -> Dict[str, Any]:
    """The job's [dataset] options with the label, id and features the table will use (the
    job's choice, else the dataset's): what `Dataset.read_blocks` is given."""
    options = dict(job.dataset_options)
    for key, default in (("label", dataset.label), ("id", dataset.id), ("features", dataset.features)):
        options.setdefault(key, default)
    return options


def load_rows(job: Job, dataset: Dataset, source: calls.Source = None) -> Any:
    """The DataFrame the dataset's plugin loads; its failures name the dataset and plugin."""
    return calls.load(dataset, job.dataset_options, source)


class Reader:
    """The dataset's block reader for one job, as every caller here uses it: the plugin's
    context manager (Dataset.read_blocks), entered once however many `with` it goes through;
    the layout it announces and every block it yields checked (tables/blocks.py, messages naming
    the job file, the dataset, the block and the row); its code's bugs PluginErrors
    (datasets/calls.py). What else the plugin's reader offers (the CSV reader's
    `lines_and_ids`) is reached through it."""

    def __init__(self, job: Job, dataset: Dataset, source: calls.Source, rows_per_block: int) -> None:
        self.dataset, self.source = dataset, source
        self.job_path, self.place = job.path, f"dataset {dataset.name!r}"  # where block messages say they are
        self.manager = calls.open_blocks(dataset, reading_options(job, dataset), rows_per_block, source)
        self.opened: Any = None
        self.layout = tables.Layout((), None, None)
        self.depth = 0

    def __enter__(self) -> "Reader":
        if self.depth == 0:
            opened = calls.enter(self.dataset, self.manager, self.source)
            try:
                try:
                    self.layout = blocks.layout_of(opened, self.job_path, self.place)
                except ReducerError:
                    raise
                except Exception as exc:  # a property of the plugin's reader that raised
                    raise calls.failure(self.dataset, self.source, "open its rows", exc) from exc
            except BaseException:
                self.manager.__exit__(*sys.exc_info())
                raise
            self.opened = opened
        self.depth += 1
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        self.depth -= 1
        return self.manager.__exit__(*exc_info) if self.depth == 0 else False

    @property
    def features(self) -> Tuple[str, ...]:
        return self.layout.features

    @property
    def label_column(self) -> Optional[str]:
        return self.layout.label_column

    @property
    def id_column(self) -> Optional[str]:
        return self.layout.id_column

    def __iter__(self) -> Any:
        return blocks.checked(calls.blocks(self.dataset, self.opened, self.source), self.layout, self.job_path,
                              self.place)

    def __getattr__(self, name: str) -> Any:
        opened = self.__dict__.get("opened")
        if opened is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(opened, name)


def _blocks(job: Job, dataset: Dataset, source: calls.Source) -> Reader:
    """The dataset's block reader for this job (a context manager, not yet entered)."""
    return Reader(job, dataset, source, chunk_rows(job))


def _origin(job: Job, dataset: Dataset) -> str:
    return str(job.dataset_options.get("path") or f"dataset {dataset.name!r}")


def _explained(exc: tables.DuplicateIdError, blocks: Any) -> tables.DuplicateIdError:
    """A repeated id's error with the file's lines and the id, when the reader can tell them."""
    lines_and_ids = getattr(blocks, "lines_and_ids", None)
    if lines_and_ids is None:
        return exc
    found = lines_and_ids(exc.rows)
    if len(found) != 2:
        return exc
    (first, _), (second, value) = found[exc.rows[0]], found[exc.rows[1]]
    return exc.explained(value=value, lines=(first, second))


def open_job_table(job: Job, dataset: Dataset, source: calls.Source, cache_folder: Optional[Path],
                   input_sha256: Optional[str] = None) -> Tuple[tables.Table, Storage]:
    """(table, storage) for `reducer run`: where the table lives (`choose`: the job's word, the
    input file's size, else the size the dataset's reader says once opened) and the table
    there (open_table). Every error names the job file."""
    with naming(job):
        place = choose(job, dataset)
        if place.measured or dataset.read_blocks is None:
            return open_table(job, dataset, source, place, cache_folder, input_sha256), place
        with calls.reading(dataset, source), _blocks(job, dataset, source) as reader:
            place = choose(job, dataset, hint=size_hint(reader), columns=len(reader.features))
            return open_table(job, dataset, source, place, cache_folder, input_sha256, reader), place


@contextlib.contextmanager
def naming(job: Job) -> Iterator[None]:
    """Errors raised within start with the job file (a block's message already does)."""
    try:
        yield
    except DataError as exc:  # its fields kept: the job file is one of them
        if exc.job is not None or str(exc).startswith(str(job.path)):
            raise
        raise exc.within(job=job.path) from None
    except ReducerError as exc:
        text = str(exc)
        if text.startswith(str(job.path)):
            raise
        kind = next((k for k in (JobError, PluginError) if isinstance(exc, k)), ReducerError)
        raise kind(f"{job.path}: {text}") from None


def open_table(job: Job, dataset: Dataset, source: calls.Source, storage: Storage, cache_folder: Optional[Path],
               input_sha256: Optional[str] = None, reader: Optional[Reader] = None) -> tables.Table:
    """The job's checked, normalised table: a table.MemoryTable in memory, or a cache.CachedTable
    (built in `cache_folder`, or reused from it while `input_sha256` and the options match).
    `reader`: the job's Reader when it is open already."""
    options = reading_options(job, dataset)
    if dataset.read_blocks is None:
        return tables.make_table(load_rows(job, dataset, source), dataset, job.dataset_options)
    if not storage.in_memory and cache_folder is None:
        raise JobError(f"{job.path}: a table held out of core needs an outputs folder for its cache")
    with calls.reading(dataset, source):
        opened = reader if reader is not None else _blocks(job, dataset, source)
        try:
            if storage.in_memory:
                with opened:
                    return tables.assemble(opened, opened.layout, options.get("normalize", dataset.normalize),
                                           dataset.name, _origin(job, dataset))
            assert cache_folder is not None  # refused above, before anything was opened
            key = cache.cache_key(input_sha256, options, options.get("normalize", dataset.normalize),
                                  code_digest(source))
            return cache.open_table(opened, key, cache_folder, dataset.name, _origin(job, dataset))
        except tables.DuplicateIdError as exc:
            raise _explained(exc, opened) from None


HEADER_ROWS = 2000  # rows `check_header` reads after the header: as many as decide which columns are text


def check_header(job: Job, dataset: Dataset,
                 source: calls.Source) -> Optional[Tuple[Tuple[str, ...], Optional[str], Optional[str]]]:
    """What `reducer check` learns from the input's first lines (its header, and the first rows
    that tell text columns from numbers), without reading every row: the label, id and features
    the job or dataset names must be there, and the cells of the first block (HEADER_ROWS rows)
    must pass the checks run gives them (a feature column named that holds text, a blank label).
    Raises what run would raise when it reads those rows (a DataError naming the job file, the
    data file, the column and the line); returns (features, label column, id column),
    or None for a dataset whose columns are known only once loaded (no read_blocks, no header).
    A dataset without read_blocks but with a header (Dataset.header) is checked on that header's
    column names: the same names, the same lines as `run`'s (tables.named_columns)."""
    if dataset.read_blocks is None:
        if dataset.header is None:
            return None
        with naming(job):
            frame = calls.header(dataset, job.dataset_options, source)
            try:
                label, id_column, features = tables.named_columns(frame, dataset, job.dataset_options, "header()")
            except DataError as exc:
                raise exc.within(path=tables.origin_of(frame, dataset.name)) from None
            for name in job.dataset_options.get("keep") or []:
                _kept_column(frame, dataset, name)
        if features is None:  # every other column: which of them hold numbers, only the rows tell
            features = [c for c in frame.columns if c not in (label, id_column)]
        return (tuple(str(f) for f in features), None if label is None else str(label),
                None if id_column is None else str(id_column))
    with naming(job), calls.reading(dataset, source), Reader(job, dataset, source, HEADER_ROWS) as reader:
        found = tuple(reader.features), reader.label_column, reader.id_column
        for _, _, labels in reader:  # the rows read already: their cells checked as run checks them
            check_labels(job, dataset, labels, reader.label_column)
            break
    kept_columns(job, dataset, source, header_only=True)  # the kept columns are there
    return found


def sized_for(job: Job, table: tables.Table, kept: Optional[Dict[str, Any]] = None) -> tuple:
    """sizing.sized_job for the job's opened table: (job, fallback, need), counting the table's
    own memory when it holds its rows there (a table in the cache keeps them on disk); kept:
    the published run's sizing (continuity.sizing)."""
    return sized_job(job, table.rows, len(table.features), in_memory=table.held == "memory", kept=kept)


def validate(job: Job, dataset: Dataset, source: calls.Source) -> Tuple[int, int, str]:
    """Read and check every row as `reducer run` would, keep none of them: (rows, columns, what
    the job will make: sizing.what_it_will_do).
    Raises what run would raise (DataError, PluginError, JobError)."""
    with naming(job):
        place = choose(job, dataset)
        if dataset.read_blocks is None:
            table = tables.make_table(load_rows(job, dataset, source), dataset, job.dataset_options)
            rows, columns = table.rows, len(table.features)
            check_labels(job, dataset, table.labels(), table.label_column)
            check_gate(job, dataset, table.take(published.sample_rows(rows))[1], table.label_column)
        else:
            with calls.reading(dataset, source), _blocks(job, dataset, source) as reader:
                if not place.measured:
                    place = choose(job, dataset, hint=size_hint(reader), columns=len(reader.features))
                layout = reader.layout
                builder = tables.TableBuilder(layout, job.dataset_options.get("normalize", dataset.normalize),
                                              dataset.name, _origin(job, dataset))
                # Every label only when the gate's thresholds depend on their kind: the rows
                # the run measures are known once the rows are counted.
                kept_labels: Optional[list] = [] if gate.needs_label_kind(job.quality) else None
                for values, ids, labels in reader:
                    builder.add(values, ids, labels)
                    check_labels(job, dataset, labels, layout.label_column)
                    if kept_labels is not None and labels is not None:
                        kept_labels.append(labels)
                try:
                    builder.finish()
                except tables.DuplicateIdError as exc:
                    raise _explained(exc, reader) from None
                rows, columns = builder.rows, len(layout.features)
                all_labels = np.concatenate(kept_labels) if kept_labels else None
                check_gate(job, dataset, None if all_labels is None else all_labels[published.sample_rows(rows)],
                           layout.label_column)
        # What run would refuse, or do instead, once the rows are counted.
        sized, fallback, need = sized_job(job, rows, columns, in_memory=place.in_memory)
        kept_columns(job, dataset, source)
        return rows, columns, what_it_will_do(sized, need, fallback, place.in_memory)


def _kept_column(frame: Any, dataset: Dataset, name: str) -> Any:
    """The frame's column a [dataset] keep names: a DataError naming the origin and the key when
    it has none (run on the loaded rows, check on a dataset's header say the same line)."""
    try:
        return checks.find_column(frame.columns, name, "kept")
    except DataError as exc:
        raise exc.within(path=tables.origin_of(frame, dataset.name), place="dataset.keep") from None


def kept_columns(job: Job, dataset: Dataset, source: calls.Source, table: Optional[tables.Table] = None,
                 header_only: bool = False) -> Dict[str, np.ndarray]:
    """[dataset] keep: {column: its values as text, one per row in the table's order}, read
    through the dataset's own reader, so every dataset has them (the contract provides them, no
    plugin does anything): a dataset with read_blocks is read once more per kept column, with
    that column as its label (so a kept column needs a value in every row, as a label does);
    any other dataset's load() gives its DataFrame once more. A column the input lacks: the
    reader's DataError naming it. `header_only` (reducer check): the first block is read, to
    find the columns, and {} returned."""
    keep = job.dataset_options.get("keep") or []
    if not keep:
        return {}
    kept: Dict[str, np.ndarray] = {}
    with naming(job):
        if dataset.read_blocks is None:
            frame = load_rows(job, dataset, source)
            for name in keep:
                column = _kept_column(frame, dataset, name)
                kept[name] = np.array([str(v) for v in frame[column].to_numpy()], dtype=object)
            return {} if header_only else kept
        for name in keep:
            options = {**job.dataset_options, "label": name, "id": None}
            features = table.features if table is not None else reading_options(job, dataset)["features"]
            if features is not None:  # one feature parsed beside the kept column (never itself): the least work
                others = [feature for feature in features if feature != name]
                options["features"] = others[:1] if others else None
            reading = dataclasses.replace(job, dataset_options=options)
            parts = []
            try:
                with calls.reading(dataset, source), \
                        Reader(reading, dataset, source, HEADER_ROWS if header_only else chunk_rows(job)) as reader:
                    for _, _, labels in reader:
                        parts.append(np.array([str(v) for v in labels], dtype=object))
                        if header_only:
                            break
            except DataError as exc:  # the reader speaks of a label: say which key asked for it, and its part
                said = exc.replaced(role="kept") if exc.role == "label" and str(exc.column) == name else exc
                hint = "; a kept column is read as a label, so it needs a value in every row" \
                    if " is blank in " in str(exc) else ""
                raise DataError(f"dataset.keep {name!r}: {said}{hint}") from None
            kept[name] = np.concatenate(parts) if parts else np.array([], dtype=object)
            if table is not None and len(kept[name]) != table.rows:  # a reader that changed between passes
                raise DataError(f"dataset.keep: column {name!r} read {len(kept[name]):,} rows, the table "
                                f"{table.rows:,}; expected the same rows")
    return {} if header_only else kept


def declared_label_type(job: Job, dataset: Dataset) -> Optional[str]:
    """"class", "value", or None (inferred from the labels): the job's word, else the dataset's."""
    return job.dataset_options.get("label_type", dataset.label_type)


def check_labels(job: Job, dataset: Dataset, labels: Optional[np.ndarray], column: Optional[str]) -> None:
    """The labels as the job declares them: numbers when `label_type = "value"` (a DataError
    naming the job file otherwise). Run checks its sample's labels, `check --data` every row."""
    if declared_label_type(job, dataset) == "value":
        checks.value_labels(labels, column, job.path)


def check_gate(job: Job, dataset: Dataset, sample_labels: Optional[np.ndarray], column: Optional[str]) -> None:
    """A JobError naming the job file when a [quality] threshold can never be checked on the
    labels of the rows the metrics measure (published.sample_rows): what the labels tell that
    `check` without the rows could not (a numeric label with many values is a value, not a
    class). Run asks on its sample before training, `check --data` on the same rows."""
    cannot = gate.cannot_apply_to(job.quality, sample_labels, column, declared_label_type(job, dataset))
    if cannot:
        raise JobError(f"{job.path}: {cannot}")


def cache_folder(outputs_root: Union[str, Path], job_name: str) -> Path:
    return Path(outputs_root) / ".cache" / job_name
