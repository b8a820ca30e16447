"""`reducer encode`: place new rows with a saved encoder (the seed's "use it from another program").

The rows are placed by `reducer.Encoder` (encoder.py): Models/<job>.onnx run by onnxruntime, no
TensorFlow. Columns are matched by name, always: the names come from `Models/<job>.json`,
written beside the encoder, and without it encode refuses (a match by position silently gives
wrong coordinates when the columns come in another order). INPUT is read and the output written
a block of rows at a time, by the same CSV reader and cell checks as `reducer run`, so memory
stays near one block whatever the file's size. The output goes where `-o` says, without ever
replacing something that is not a regular file: see `check_output`.
"""

import contextlib
import csv
import errno
import io
import os
import stat
import sys
from pathlib import Path
from typing import Any, Iterator, List, Optional, TextIO, Union

import numpy as np

from reducer import files, published
from reducer.encoder import Encoder
from reducer.errors import DataError, ReducerError
from reducer.tables.checks import find_column
from reducer.tables.csv_reader import CsvChunks, input_problem, open_regular
from reducer.tables.table import Block

STDOUT = "-"
# One call reads at most this much; a larger file is refused with one line (split it). Memory
# does not grow with the file (it is read in blocks): the limit keeps one call's time bounded.
MAX_INPUT_BYTES = 1 << 30
MAX_LINE_CHARACTERS = 16 << 20  # of the header line: no line read whole, however long
# Rows read, placed and written at a time: the CSV parser's memory grows with the cells of a
# block, so a block holds about BLOCK_CELLS cells (5,000 rows of 100 columns: ~150 MB at the peak).
BLOCK_CELLS = 500_000
BLOCK_ROWS = (1000, 100_000)  # the fewest and the most rows in a block


def block_rows(columns: int) -> int:
    """Rows per block for an input of `columns` columns."""
    return min(max(BLOCK_CELLS // max(columns, 1), BLOCK_ROWS[0]), BLOCK_ROWS[1])


def check_input(input_path: Path) -> None:
    """DataError unless INPUT is a regular file of at most MAX_INPUT_BYTES."""
    problem = input_problem(input_path, "a CSV file")
    if problem:
        raise DataError(problem)
    size = os.stat(input_path).st_size
    if size > MAX_INPUT_BYTES:
        raise DataError(path=input_path, reason=f"{size / 2**30:.1f} GiB; reducer encode takes at most "
                        f"{MAX_INPUT_BYTES >> 30} GiB in one call: split the file and encode each part")


def read_header(input_path: Path) -> List[str]:
    """INPUT's column names (as the CSV reader takes them: stripped, a byte-order mark skipped);
    DataError when there is no header or no data row."""

    def lines(text: TextIO) -> Iterator[str]:  # no line read whole into memory, however long (a file with no line ends)
        while line := text.readline(MAX_LINE_CHARACTERS):
            if len(line) == MAX_LINE_CHARACTERS and not line.endswith("\n"):
                raise DataError(path=input_path, reason=f"a line longer than {MAX_LINE_CHARACTERS:,} characters at the "
                                f"start; expected a CSV header line")
            yield line

    with open_regular(input_path) as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
        try:
            records = (r for r in csv.reader(lines(text), skipinitialspace=True) if any(c.strip() for c in r))
            header, first_row = next(records, None), next(records, None)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DataError(path=input_path, reason=f"cannot read the header line: {exc}") from None
    if header is None or first_row is None:
        raise DataError(path=input_path, reason="no data rows; expected a header line and at least one row")
    return [cell.strip() for cell in header]


def check_output(output_path: Union[str, Path]) -> str:
    """How `-o` will be written: "stdout", "replace" (a new file, or a regular one replaced by a
    rename, so that no reader sees it half-written), or "stream" (a character device such as
    /dev/null, or a FIFO: written through, never replaced). Anything else is refused: reducer
    never replaces a symbolic link, a folder, a block device or a socket, nor writes through a
    link (a cron job may be able to write much more than the link's owner)."""
    if str(output_path) == STDOUT:
        return "stdout"
    try:
        mode = os.lstat(output_path).st_mode
    except FileNotFoundError:
        return "replace"
    except OSError as exc:
        raise ReducerError(f"{output_path}: cannot write: {exc.strerror or exc}") from None
    if stat.S_ISREG(mode):
        return "replace"
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return "stream"
    kind = ("a symbolic link" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode)
            else "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a file")
    raise ReducerError(f"{output_path}: {kind}; reducer encode writes a regular file (replacing it whole), a "
                       f"character device or FIFO (written through), or standard output with -o -, and never "
                       f"replaces or follows anything else")


def check_not_overwriting(output_path: "str | os.PathLike[str]", how: str, protected: dict) -> None:
    """ReducerError when `-o` names (through any path or hard link) one of the `protected`
    files ({what: path}): the rows being read, or the model reading them."""
    if how != "replace":
        return
    try:
        written = os.stat(output_path)
    except OSError:
        return
    for what, path in protected.items():
        try:
            info = os.stat(path)
        except OSError:
            continue
        if (info.st_dev, info.st_ino) == (written.st_dev, written.st_ino):
            raise ReducerError(f"{output_path}: is {what} ({path}); reducer encode never writes over its own "
                               f"input or model: name another output file (nothing was written)")


@contextlib.contextmanager
def _stream(output_path: Union[str, Path], how: str) -> Iterator[int]:
    """A file descriptor for standard output or a device/FIFO, opened without creating,
    truncating or following anything; write_embedding's open() takes it over and closes it."""
    if how == "stdout":
        sys.stdout.flush()
        yield os.dup(sys.stdout.fileno())
        return
    try:
        fd = os.open(output_path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        reason = "a symbolic link" if exc.errno == errno.ELOOP else exc.strerror or exc
        raise ReducerError(f"{output_path}: cannot write: {reason}") from None
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):  # replaced since it was looked at
        os.close(fd)
        raise ReducerError(f"{output_path}: changed while reducer encode opened it; nothing written")
    yield fd


def encode_file(model_path: Union[str, Path], input_path: Union[str, Path], output_path: Union[str, Path],
                id_column: Optional[str] = None, label_column: Optional[str] = None) -> int:
    """Encode INPUT's rows with the model and write embedding.csv's columns to `output_path`
    (a path, or "-" for standard output). Returns the number of rows."""
    model_path, input_path = Path(model_path), Path(input_path)
    problem = input_problem(model_path, "a model file (.onnx or .keras)")
    if problem:
        raise ReducerError(f"no such model file {model_path}" if problem.startswith("no such file") else problem)
    how = check_output(output_path)  # before any work: a refused -o costs nothing
    check_input(input_path)
    check_not_overwriting(output_path, how, {"INPUT": input_path, "the model": model_path,
                                             **{f"the model's {suffix}": model_path.with_suffix(suffix)
                                                for suffix in (".keras", ".onnx", ".json")}})
    encoder = Encoder(model_path)
    columns = read_header(input_path)
    try:
        id_column = find_column(columns, id_column, "id") if id_column else (
            encoder.id_column if encoder.id_column in columns else None)
        label_column = find_column(columns, label_column, "label") if label_column else (
            encoder.label_column if encoder.label_column in columns else None)
        missing = [f for f in encoder.features if f not in columns]
        if missing:
            raise DataError(f"missing feature column(s) {', '.join(missing)}; the model was trained on: "
                            f"{', '.join(encoder.features)}")
    except DataError as exc:
        raise exc.within(path=input_path) from None
    placed = [0]

    def blocks() -> Iterator[Block]:
        with CsvChunks(input_path, label=label_column, id=id_column, features=list(encoder.features),
                       chunk_rows=block_rows(len(columns))) as chunks:
            for raw, ids, labels in chunks:
                start = placed[0]
                placed[0] += len(raw)
                yield raw, np.arange(start, placed[0]) if ids is None else ids, labels

    def place(raw: np.ndarray) -> np.ndarray:
        coordinates = encoder.transform_raw(raw)
        bad = np.flatnonzero(~np.isfinite(coordinates).all(axis=1))
        if bad.size:
            first = placed[0] - len(raw) + int(bad[0])  # counted from 0, as the default ids
            more = f" and {bad.size - 1} more" if bad.size > 1 else ""
            raise DataError(path=input_path, reason=f"row {first}{more} placed at NaN or infinite coordinates; "
                                                    f"values far beyond the model's training data?")
        return coordinates

    def write(target: Any) -> None:
        published.write_embedding(target, blocks(), place, label_column is not None)

    if how == "replace":
        output_path = Path(output_path)
        try:
            output_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReducerError(f"{output_path}: cannot write: {exc.strerror or exc}") from None
        files.publish([(files.stage(output_path, write), output_path)])
    else:
        with _stream(output_path, how) as fd:
            write(fd)
    return placed[0]
