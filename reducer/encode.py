"""`reducer encode`: place new rows with a saved encoder (the seed's "use it from another program").

Columns are matched by name, always: the names come from `Models/<job>.json`, written beside the
encoder, and without it encode refuses (a match by position silently gives wrong coordinates
when the columns come in another order). The output goes where `-o` says, without ever
replacing something that is not a regular file: see `open_output`.
"""

import contextlib
import errno
import json
import os
import stat
import sys
from pathlib import Path

import numpy as np

from reducer import files, publish
from reducer.errors import DataError, ReducerError
from reducer.tables.checks import find_column, numeric_column
from reducer.tables.csv_reader import input_problem, open_regular

STDOUT = "-"
# INPUT is read into memory whole (pandas), about 10 bytes per byte of text at the peak: a
# stated limit, refused with one line, instead of a machine brought down by its swap.
MAX_INPUT_BYTES = 1 << 30
MAX_INFO_BYTES = 1 << 20


def _one_line(text, limit=300):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."


def read_model_info(model_path):
    """What the JSON beside the encoder says: the feature columns, in the encoder's order, and
    the id and label columns of the job that trained it."""
    info_path = Path(model_path).with_suffix(".json")
    problem = input_problem(info_path, "the model's description (JSON)")
    if problem:
        raise ReducerError(f"{problem}; reducer encode needs it beside {model_path} to match INPUT's columns by "
                           f"name (it never matches them by position): run the job again to write it")
    try:
        with open_regular(info_path) as handle:
            info = json.loads(handle.read(MAX_INFO_BYTES).decode("utf-8"))
    except (OSError, ValueError, DataError) as exc:
        raise ReducerError(f"{info_path}: unreadable model description: {_one_line(exc)}") from None
    features = info.get("features") if isinstance(info, dict) else None
    if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features) or any(
            not isinstance(info.get(key), (str, type(None))) for key in ("id_column", "label_column")):
        raise ReducerError(f"{info_path}: not a model description reducer wrote; expected \"features\" (a list "
                           f"of column names), \"id_column\" and \"label_column\"")
    return info


def read_input(input_path):
    """INPUT.csv as a DataFrame of text; DataError naming the file otherwise."""
    import pandas as pd

    problem = input_problem(input_path, "a CSV file")
    if problem:
        raise DataError(problem)
    size = os.stat(input_path).st_size
    if size > MAX_INPUT_BYTES:
        raise DataError(f"{input_path}: {size / 2**30:.1f} GiB; reducer encode reads its input into memory and "
                        f"takes at most {MAX_INPUT_BYTES >> 30} GiB: split the file and encode each part")
    try:
        with open_regular(input_path) as handle:
            # Every cell as text, as `reducer run` reads a CSV: ids such as 007 and labels such as NA
            # are copied through as written; feature columns are checked and converted below.
            frame = pd.read_csv(handle, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:  # UnicodeDecodeError too
        raise DataError(f"{input_path}: cannot read CSV: {_one_line(exc)}") from None
    if frame.empty:
        raise DataError(f"{input_path}: no data rows; expected a header line and at least one row")
    frame.attrs.update(source=str(input_path), first_line=2)
    return frame


def check_output(output_path):
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


@contextlib.contextmanager
def _stream(output_path, how):
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


def encode_file(model_path, input_path, output_path, id_column=None, label_column=None):
    """Encode INPUT's rows with the model and write embedding.csv's columns to `output_path`
    (a path, or "-" for standard output). Returns the number of rows."""
    model_path, input_path = Path(model_path), Path(input_path)
    problem = input_problem(model_path, "a .keras model file")
    if problem:
        raise ReducerError(f"no such model file {model_path}" if problem.startswith("no such file") else problem)
    how = check_output(output_path)  # before any work: a refused -o costs nothing
    info = read_model_info(model_path)
    frame = read_input(input_path)
    try:
        id_column = find_column(frame.columns, id_column, "id") if id_column else (
            info.get("id_column") if info.get("id_column") in frame.columns else None)
        label_column = find_column(frame.columns, label_column, "label") if label_column else (
            info.get("label_column") if info.get("label_column") in frame.columns else None)
        features = info["features"]
        missing = [f for f in features if f not in frame.columns]
        if missing:
            raise DataError(f"missing feature column(s) {', '.join(missing)}; the model was trained on: "
                            f"{', '.join(features)}")
        raw = np.column_stack([numeric_column(frame, c) for c in features]).astype(np.float32)
    except DataError as exc:
        raise DataError(f"{input_path}: {exc}") from None

    from reducer.engine.tf_setup import configure, keras

    configure()
    try:
        encoder = keras.models.load_model(model_path)
        width = encoder.input_shape[-1]
    except Exception as exc:  # not a zip, not a Keras file, a model of another kind...
        raise ReducerError(f"{model_path}: not a model reducer can load: {type(exc).__name__}: "
                           f"{_one_line(exc, 200)}") from None
    if width != raw.shape[1]:
        raise DataError(f"{input_path}: {raw.shape[1]} feature columns, but {model_path} takes {width}")
    ids = frame[id_column].to_numpy() if id_column else np.arange(len(frame))
    labels = frame[label_column].to_numpy() if label_column else None
    rows = [(raw, ids, labels)]

    def write(target):
        publish.write_embedding(target, rows, lambda r: encoder.predict(r, batch_size=4096, verbose=0),
                                labels is not None)

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
    return len(frame)
