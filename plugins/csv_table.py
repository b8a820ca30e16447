"""The generic CSV dataset: any delimited text file with numeric feature columns.

Options (job [dataset] table): path (required), label, id, features, normalize (the common
options), delimiter (default ","), header (default true; false names columns 0, 1, 2...),
encoding (default utf-8; a byte-order mark is accepted), streaming (default false: true reads
a file larger than memory in chunks of chunk_rows lines, see reducer/streaming.py).

The file is read with Python's `csv` module rather than `pandas.read_csv` so that every row
keeps its line number (blank lines are skipped, quoted fields may span lines) and a row with
too many or too few fields is an error naming its line, never silently padded with blanks.
"""

import codecs
import csv
import io

import reducer

COMMON_DELIMITERS = (",", ";", "\t", "|")
MAX_FIELD = 10 * 1024 * 1024  # csv's default limit (128 KiB) is too small for some real files


def _describe(delimiter):
    return "tab" if delimiter == "\t" else repr(delimiter)


def _toml(delimiter):
    """How to write `delimiter` in a job file."""
    return 'delimiter = "\\t"' if delimiter == "\t" else f'delimiter = "{delimiter}"'


def _decode(path, data, codec, encoding):
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise reducer.DataError(
            f"{path}, line {line}: not {encoding} text (byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start}); set the encoding option in [dataset], e.g. encoding = \"latin-1\"") from None


def _other_delimiter(first_line, delimiter):
    """A delimiter the header line seems to use instead of the configured one, or None."""
    counts = {d: first_line.count(d) for d in COMMON_DELIMITERS if d != delimiter}
    best = max(counts, key=counts.get)
    return best if counts[best] else None


def read_rows(path, delimiter=",", header=True, encoding="utf-8"):
    """(columns, rows, line numbers) of a delimited text file, every cell a string."""
    if len(delimiter) != 1:
        raise reducer.DataError(f"{path}: delimiter must be one character, got {delimiter!r}")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise reducer.DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise reducer.DataError(f"{path}: unknown encoding {encoding!r} (the encoding option)") from None
    # utf-8-sig drops a byte-order mark (Excel writes one) so it never sticks to the first name.
    text = _decode(path, data, "utf-8-sig" if codec == "utf-8" else codec, encoding)
    if not text.strip():
        raise reducer.DataError(f"{path}: the file is empty; expected a header line and at least 2 rows")

    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True)
    columns, rows, lines = None, [], []
    start = 1
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if not record or all(not cell.strip() for cell in record):
                continue  # blank line
            if columns is None:
                if header:
                    columns = [cell.strip() for cell in record]
                    _check_header(path, columns, line, delimiter)
                    continue
                columns = [str(i) for i in range(len(record))]
            if len(record) != len(columns):
                raise reducer.DataError(
                    f"{path}, line {line}: {len(record)} field(s), expected {len(columns)} as in "
                    f"{'the header' if header else 'the first row'} (delimiter {_describe(delimiter)}); "
                    f"a stray delimiter, a missing cell or an unquoted {_describe(delimiter)} in a value?")
            rows.append(record)
            lines.append(line)
    except csv.Error as exc:
        raise reducer.DataError(f"{path}, line {reader.line_num}: cannot parse: {exc}") from None
    if header and not rows:
        raise reducer.DataError(f"{path}: only a header line, no data rows; expected at least 2 rows")
    return columns, rows, lines


def _check_header(path, columns, line, delimiter):
    if len(columns) == 1:
        other = _other_delimiter(columns[0], delimiter)
        if other:
            raise reducer.DataError(
                f"{path}, line {line}: the header is one field {columns[0][:60]!r} when split on "
                f"{_describe(delimiter)}, but it contains {_describe(other)}; set {_toml(other)} in [dataset]")
    seen = set()
    for name in columns:
        if not name:
            raise reducer.DataError(f"{path}, line {line}: column {columns.index(name) + 1} of the "
                                    f"header has no name")
        if name in seen:
            raise reducer.DataError(f"{path}, line {line}: column {name!r} appears twice in the header")
        seen.add(name)


def load_csv(options):
    import numpy as np
    import pandas as pd

    if "path" not in options:
        raise reducer.DataError("the csv dataset needs a path option")
    path = options["path"]
    csv.field_size_limit(MAX_FIELD)
    columns, rows, lines = read_rows(path, options.get("delimiter", ","), options.get("header", True),
                                     options.get("encoding", "utf-8"))
    frame = pd.DataFrame(rows, columns=columns, dtype=object)
    # Where each row came from, for messages: see reducer.data.where().
    frame.attrs.update(source=str(path), lines=np.asarray(lines, dtype=np.int64))
    return frame


@reducer.hookimpl
def register_datasets(register):
    register(reducer.Dataset(
        name="csv", description="any CSV file: set path, and label, id, features as needed",
        load=load_csv, normalize="minmax",
        # streaming, chunk_rows: a file larger than memory, read by reducer/csv_cache.py
        options={"path": str, "delimiter": str, "header": bool, "encoding": str, "streaming": bool,
                 "chunk_rows": int}))
