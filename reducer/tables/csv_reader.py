"""The one CSV reader: a delimited text file read a block of rows at a time, every cell checked
by checks.py. It serves the csv dataset (plugins/csv_table.py) whether its table is then held
in memory or in the float32 cache on disk, so both give the same rows and the same messages.

Each block of about `chunk_rows` lines (fewer where they pass BLOCK_BYTES) is parsed by pandas'
C parser; a block in which anything looks wrong (a cell that is not a number, a blank, a short
or long row, bytes that are not in the encoding) is parsed again with Python's `csv` module,
which knows the line of every row, so the error names the row and the line however deep in the
file it is. A block never ends inside a quoted field. Only ASCII-compatible encodings (utf-8, latin-1, cp1252...):
blocks are cut at newline bytes.
"""

import codecs
import csv
import dataclasses
import errno
import io
import itertools
import logging
import os
import stat
import warnings
from pathlib import Path
from typing import Any, BinaryIO, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from reducer.tables import checks
from reducer.tables.checks import FLOAT32_MAX
from reducer.tables.table import Block
from reducer.errors import DataError, excerpt

log = logging.getLogger("reducer")

CHUNK_ROWS = 100_000
# A block also ends at this many bytes of text, however few its lines: a block is held as its
# lines, their join and pandas' float64 parse at once, and 100,000 lines of a 500-column file
# (450 MB of text) took the read to 2.1 GB; at this size a block of a 100-column file is still
# about 100,000 lines (benchmarks/README.md, issue 22).
BLOCK_BYTES = 64 * 2**20
TYPE_ROWS = 2000  # rows of the first block that decide which columns are text
COMMON_DELIMITERS = (",", ";", "\t", "|")
MAX_FIELD = 10 * 1024 * 1024  # csv's default limit (128 KiB) is too small for some real files
# The most bytes one record (a line, or the lines a quoted field spans) may take: a file with no
# line ends, or a quote never closed, is refused here instead of being read whole into memory.
MAX_RECORD_BYTES = 64 * 1024 * 1024


@dataclasses.dataclass
class _Layout:
    """What the header (or first row) says about the file, and which columns play which part."""

    path: Path
    codec: str
    encoding: str  # as the job wrote it, for messages
    delimiter: str
    header: bool
    columns: list
    features: List[Any] = dataclasses.field(default_factory=list)  # column positions, once chosen
    label: Optional[int] = None
    id: Optional[int] = None


def check_options(path: Union[str, Path], delimiter: str, encoding: str) -> str:
    """The codec for `encoding`, or a DataError when the reader cannot use the options."""
    if len(delimiter) != 1:
        raise DataError(path=path, reason=f"delimiter must be one character, got {delimiter!r}")
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise DataError(path=path, reason=f"unknown encoding {encoding!r} (the encoding option)") from None
    if 'a,\n"'.encode(codec, errors="replace") != b'a,\n"':
        raise DataError(path=path, reason=f"reducer reads encodings in which commas, quotes and line ends are "
                        f"single ASCII bytes (utf-8, latin-1, cp1252...), not {encoding!r}")
    return codec


def not_a_regular_file(path: Union[str, Path], folders: bool = False) -> Optional[str]:
    """None for a regular file (symbolic links followed), else what `path` is, to finish "PATH is
    ...": "a FIFO (named pipe)", "a character device", "a symbolic link loop", "unreadable
    (Permission denied)"; or "no such file". A FIFO would block a reader for good and a device
    such as /dev/zero never ends. folders=True accepts a folder too (a plugin may read one)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return "no such file"
        return "a symbolic link loop" if exc.errno == errno.ELOOP else f"unreadable ({exc.strerror or exc})"
    if stat.S_ISREG(mode) or (folders and stat.S_ISDIR(mode)):
        return None
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def input_problem(path: Union[str, Path], expected: str = "a regular file", folders: bool = False) -> Optional[str]:
    """"no such file PATH" or "PATH is a FIFO (named pipe); expected a regular file", or None."""
    kind = not_a_regular_file(path, folders)
    if kind is None:
        return None
    return f"no such file {path}" if kind == "no such file" else f"{path} is {kind}; expected {expected}"


def open_regular(path: Union[str, Path]) -> BinaryIO:
    """`path` opened for reading in binary, or a DataError naming it when it is not a regular file.
    Opened without blocking and checked on the descriptor, so a FIFO put there after a check
    cannot hang the reader either."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        problem = "a symbolic link loop" if exc.errno == errno.ELOOP else exc.strerror or exc
        raise DataError(path=path, reason=f"cannot read: {problem}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DataError(input_problem(path) or f"{path} is not a regular file; expected a regular file")
    return os.fdopen(fd, "rb")


def _too_long(layout: _Layout, line: int) -> DataError:
    return DataError(f"{layout.path}, line {line}: a record longer than {MAX_RECORD_BYTES >> 20} MiB (no line "
                     f"ends, or a quote that is never closed?); expected delimited text")


def _decode(layout: _Layout, data: bytes, first_line: int) -> str:
    try:
        return data.decode(layout.codec)
    except UnicodeDecodeError as exc:
        line = first_line + data.count(b"\n", 0, exc.start)
        raise DataError(path=layout.path, line=line, reason=f"not {layout.encoding} text "
                        f"(byte 0x{data[exc.start]:02x}); "
                        f"set the encoding option in [dataset], e.g. encoding = \"latin-1\"") from None


def _describe(delimiter: str) -> str:
    return "tab" if delimiter == "\t" else repr(delimiter)


def _toml(delimiter: str) -> str:
    """How to write `delimiter` in a job file."""
    return 'delimiter = "\\t"' if delimiter == "\t" else f'delimiter = "{delimiter}"'


def _read_record(handle: BinaryIO, layout: _Layout, line: int) -> Tuple[Optional[List[str]], int]:
    """(record, lines it spans) of the next non-blank record, or (None, lines read) at the end."""
    skipped = 0
    while True:
        data = handle.readline(MAX_RECORD_BYTES + 1)
        if not data:
            return None, skipped
        count = 1
        while data.count(b'"') % 2 and len(data) <= MAX_RECORD_BYTES:  # a quoted field spans lines
            more = handle.readline(MAX_RECORD_BYTES + 1)
            if not more:
                break
            data, count = data + more, count + 1
        if len(data) > MAX_RECORD_BYTES:
            raise _too_long(layout, line + skipped)
        text = _decode(layout, data, line + skipped)
        try:
            record = next(csv.reader(io.StringIO(text, newline=""), delimiter=layout.delimiter,
                                     skipinitialspace=True), [])
        except csv.Error as exc:
            raise DataError(path=layout.path, line=line + skipped, reason=f"cannot parse: {exc}") from None
        if record and any(cell.strip() for cell in record):
            return record, skipped + count
        skipped += count


def _check_header(layout: _Layout, line: int) -> None:
    columns = layout.columns
    if len(columns) == 1:
        counts = {d: columns[0].count(d) for d in COMMON_DELIMITERS if d != layout.delimiter}
        other = max(counts, key=lambda d: counts[d])
        if counts[other]:
            raise DataError(path=layout.path, line=line, reason=f"the header is one field {excerpt(columns[0])} when "
                            f"split on {_describe(layout.delimiter)}, but it contains {_describe(other)}; set "
                            f"{_toml(other)} in [dataset]")
    seen = set()
    for position, name in enumerate(columns):
        if not name:
            raise DataError(path=layout.path, line=line, reason=f"column {position + 1} of the header has no name")
        if name in seen:
            raise DataError(path=layout.path, line=line, reason=f"column {excerpt(name)} appears twice in the header")
        seen.add(name)


def _line_blocks(handle: BinaryIO, layout: _Layout, first_line: int, chunk_rows: int) -> Iterator[Tuple[int, bytes]]:
    """(first line number, bytes) of about `chunk_rows` lines each (fewer where they pass BLOCK_BYTES),
    never ending inside a quoted field. No line, nor the lines of one quoted field, may pass
    MAX_RECORD_BYTES."""
    line = first_line
    readline = handle.readline
    while True:
        lines: List[bytes] = []
        size = 0
        while len(lines) < chunk_rows and size < BLOCK_BYTES:
            text = readline(MAX_RECORD_BYTES + 1)
            if not text:
                break
            lines.append(text)
            size += len(text)
        if not lines:
            return
        longest = max(map(len, lines))
        if longest > MAX_RECORD_BYTES:
            raise _too_long(layout, line + next(k for k, text in enumerate(lines) if len(text) == longest))
        data = b"".join(lines)
        count, quotes, spanning = len(lines), data.count(b'"'), 0
        while quotes % 2:
            more = readline(MAX_RECORD_BYTES + 1)
            if not more:
                break
            spanning += len(more)
            if spanning > MAX_RECORD_BYTES:
                raise _too_long(layout, line + count)
            data, count, quotes = data + more, count + 1, quotes + more.count(b'"')
        yield line, data
        line += count


def _read_block(layout: _Layout, data: bytes, dtype: Any = None) -> Any:
    import pandas as pd

    with warnings.catch_warnings():
        # With index_col=False, pandas only warns when a block's first row has too many fields.
        warnings.simplefilter("error", pd.errors.ParserWarning)
        return pd.read_csv(io.BytesIO(data), sep=layout.delimiter, header=None, index_col=False,
                           names=range(len(layout.columns)), dtype=dtype, na_filter=False,
                           skipinitialspace=False, encoding=layout.codec, engine="c")


def _fast(layout: _Layout, data: bytes) -> Optional[Block]:
    """(features float64, ids, labels) of a block by pandas' C parser, or None if anything is off."""

    wanted = set(layout.features)
    try:
        frame = _read_block(layout, data, dtype={k: (np.float64 if k in wanted else object)
                                                 for k in range(len(layout.columns))})
    except (ValueError, UnicodeError, Warning):  # bad cells, too many fields, bad bytes: _exact says where
        return None
    last = len(layout.columns) - 1
    if last not in wanted and (frame[last] == "").any():  # a short row is padded with blanks
        return None
    x = frame[layout.features].to_numpy(dtype=np.float64)
    if not np.isfinite(x).all() or (np.abs(x) > FLOAT32_MAX).any():
        return None
    labels = None if layout.label is None else frame[layout.label].to_numpy(dtype=object)
    if labels is not None and (frame[layout.label].str.strip() == "").any():
        return None
    if layout.id is not None and layout.id not in wanted and (frame[layout.id].str.strip() == "").any():
        return None
    ids = None if layout.id is None else frame[layout.id].to_numpy(dtype=object)
    return x, ids, labels


def _exact(layout: _Layout, data: bytes, first_line: int, first_row: int) -> Block:
    """The rows of a block parsed with the `csv` module, every cell checked by checks.py, so a
    problem is named by column, row and line exactly as for a plugin's DataFrame. Returns what
    `_fast` returns."""
    import pandas as pd

    text = _decode(layout, data, first_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=layout.delimiter)
    records, lines, start = [], [], first_line
    try:
        for record in reader:
            line, start = start, first_line + reader.line_num
            if not record or all(not cell.strip() for cell in record):
                continue
            if len(record) != len(layout.columns):
                raise DataError(
                    f"{layout.path}, line {line}: {len(record)} field(s), expected {len(layout.columns)} "
                    f"as in {'the header' if layout.header else 'the first row'} (delimiter "
                    f"{_describe(layout.delimiter)}); a stray delimiter, a missing cell or an unquoted "
                    f"{_describe(layout.delimiter)} in a value?")
            records.append(record)
            lines.append(line)
    except csv.Error as exc:
        where = first_line + reader.line_num - 1
        raise DataError(path=layout.path, line=where, reason=f"cannot parse: {exc}") from None
    frame = pd.DataFrame(records, columns=layout.columns, dtype=object)
    frame.attrs.update(lines=np.asarray(lines, dtype=np.int64), first_row=first_row)
    try:
        x = np.empty((len(frame), len(layout.features)), dtype=np.float64)
        for k, position in enumerate(layout.features):
            x[:, k] = checks.numeric_column(frame, layout.columns[position])
        labels = None if layout.label is None else checks.label_values(frame, layout.columns[layout.label])
        ids = None if layout.id is None else checks.id_values(frame, layout.columns[layout.id])
    except DataError as exc:
        raise exc.within(path=layout.path) from None
    return x, ids, labels


def _choose_columns(layout: _Layout, wanted: Dict[str, Any], first_block: bytes) -> None:
    """Label, id and feature positions; without features, every column but the label and id
    that has a number in the first block (as table.frame_layout, judged on that block)."""
    try:
        def position(name: Any, role: str) -> Optional[int]:
            column = checks.find_column(layout.columns, name, role)
            return None if column is None else layout.columns.index(column)

        layout.label = position(wanted["label"], "label")
        layout.id = position(wanted["id"], "id")
        if wanted["features"] is not None:
            layout.features = [position(n, "feature") for n in wanted["features"]]
        else:
            candidates = [k for k in range(len(layout.columns)) if k not in (layout.label, layout.id)]
            frame = _typed_frame(layout, _head(first_block))
            text = [k for k in candidates if not checks.has_number(frame[k])]
            if text:
                log.info("%s: skipping text column(s) %s; name them in features to be told why", layout.path,
                         checks.names([layout.columns[k] for k in text]))
            layout.features = [k for k in candidates if k not in text]
        if not layout.features:
            raise DataError(f"no numeric feature columns besides the label and id; the columns are: "
                            f"{checks.names(layout.columns)}")
    except DataError as exc:
        raise exc.within(path=layout.path) from None


def _head(data: bytes, lines: int = TYPE_ROWS) -> bytes:
    """The first `lines` lines of a block, enough to tell text columns from numbers (parsing the
    whole block for it cost a fifth of an in-memory load); the whole block when the cut would
    fall inside a quoted field."""
    parts = data.split(b"\n", lines)
    if len(parts) <= lines:
        return data
    head = b"\n".join(parts[:lines]) + b"\n"
    return data if head.count(b'"') % 2 else head


def _typed_frame(layout: _Layout, data: bytes) -> Any:
    """The block with the column types pandas' C parser infers (numbers as numbers)."""
    import pandas as pd

    width = len(layout.columns)
    try:
        return _read_block(layout, data)
    except (ValueError, UnicodeError, Warning):  # a bad row (reported later, by line): every cell as text
        rows = [r for r in csv.reader(io.StringIO(data.decode(layout.codec, errors="replace"), newline=""),
                                      delimiter=layout.delimiter) if r]
        return pd.DataFrame([(r + [""] * width)[:width] for r in rows], columns=range(width), dtype=object)


class CsvChunks:
    """The checked rows of one CSV, block by block: use as a context manager, then iterate
    for (features as float64 rows x columns, ids or None, labels or None) per block.

    label, id, features: column names (None: no label, no id, every column but those with a
    number in the first block). After entering: `features`, `label_column`, `id_column`.
    """

    def __init__(self, path: Union[str, Path], delimiter: str = ",", header: bool = True, encoding: str = "utf-8",
                 label: Optional[str] = None, id: Optional[str] = None,
                 features: Optional[Sequence[str]] = None, chunk_rows: int = CHUNK_ROWS) -> None:
        path = Path(path)
        self.layout = _Layout(path=path, codec=check_options(path, delimiter, encoding), encoding=encoding,
                              delimiter=delimiter, header=header, columns=[])
        self.wanted: Dict[str, Any] = {"label": label, "id": id, "features": features}
        self.chunk_rows = chunk_rows
        self.handle: Any = None  # the open file, between __enter__ and __exit__

    def __enter__(self) -> "CsvChunks":
        layout = self.layout
        csv.field_size_limit(MAX_FIELD)
        self.handle = open_regular(layout.path)
        try:
            self._start()
        except BaseException:
            self.handle.close()
            raise
        return self

    def _start(self) -> None:
        layout, handle = self.layout, self.handle
        if layout.codec == "utf-8" and handle.read(3) != codecs.BOM_UTF8:
            handle.seek(0)  # a byte-order mark (Excel writes one) is skipped, anything else kept
        start = handle.tell()
        record, spans = _read_record(handle, layout, 1)
        if record is None:
            raise DataError(path=layout.path, reason="the file is empty; expected a header line and at least 2 rows")
        if layout.header:
            layout.columns = [cell.strip() for cell in record]
            _check_header(layout, spans)
            first_line = spans + 1
        else:
            layout.columns = [str(k) for k in range(len(record))]
            handle.seek(start)  # the first record is data
            first_line = 1
        self.blocks = _line_blocks(handle, layout, first_line, self.chunk_rows)
        first = next(self.blocks, None)
        if first is None:
            raise DataError(path=layout.path, reason="only a header line, no data rows; expected at least 2 rows")
        self.first: Tuple[int, bytes] = first
        _choose_columns(layout, self.wanted, first[1])
        self.features = tuple(layout.columns[k] for k in layout.features)
        self.label_column = None if layout.label is None else layout.columns[layout.label]
        self.id_column = None if layout.id is None else layout.columns[layout.id]

    def __exit__(self, *exc: object) -> None:
        self.handle.close()

    def lines_and_ids(self, rows: Iterable[int]) -> Dict[int, Tuple[int, Optional[str]]]:
        """{row: (line, id text)} of the data rows `rows` (counted from 1), by reading the file
        again from its start: for a message about those rows, not for the rows themselves."""
        layout, wanted, found = self.layout, set(rows), {}
        codec = "utf-8-sig" if layout.codec == "utf-8" else layout.codec
        with open(layout.path, encoding=codec, errors="replace", newline="") as handle:
            reader = csv.reader(handle, delimiter=layout.delimiter, skipinitialspace=True)
            start, row = 1, -2 if layout.header else -1
            for record in reader:
                line, start = start, reader.line_num + 1
                if not record or all(not cell.strip() for cell in record):
                    continue
                row += 1
                if row in wanted:
                    found[row] = (line, record[layout.id] if layout.id is not None and layout.id < len(record)
                                  else None)
                    if len(found) == len(wanted):
                        break
        return found

    def __iter__(self) -> Iterator[Block]:
        rows = 0
        for line, data in itertools.chain([self.first], self.blocks):
            parsed = _fast(self.layout, data)
            if parsed is None:
                parsed = _exact(self.layout, data, line, rows)
            rows += len(parsed[0])
            yield parsed


def read_blocks(options: Mapping[str, Any], chunk_rows: int = CHUNK_ROWS) -> "CsvChunks":
    """A `CsvChunks` for a job's [dataset] options (path, delimiter, header, encoding, label, id,
    features): what the csv dataset offers as its `Dataset.read_blocks`."""
    return CsvChunks(options["path"], options.get("delimiter", ","), options.get("header", True),
                     options.get("encoding", "utf-8"), options.get("label"), options.get("id"),
                     options.get("features"), chunk_rows)
