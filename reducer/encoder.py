"""Placing rows on a published map without TensorFlow: `reducer.Encoder`.

Every published model is also `Models/<job>.onnx` (engine/onnx_export.py writes it): the same
normalisation, layers and alignment as `Models/<job>.keras`, run here by onnxruntime, whose
import takes a fraction of a second where TensorFlow's takes seconds. Columns are matched by
name, with the names `Models/<job>.json` gives (never by position).

Without the .onnx file (a model published by an older reducer) or without onnxruntime, the
Keras model is used instead, with one warning line: the same coordinates, TensorFlow's import
time. This module itself never imports TensorFlow; only that fallback does.
"""

import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Dict, Sequence, Union

import numpy as np

from reducer.errors import DataError, ReducerError
from reducer.tables.checks import FLOAT32_MAX
from reducer.tables.csv_reader import input_problem, open_regular

log = logging.getLogger("reducer")

MAX_INFO_BYTES = 1 << 20
MAX_MODEL_BYTES = 256 << 20  # an encoder of a few dense layers is kilobytes
BATCH_ROWS = 65536  # rows per onnxruntime call: bounds its intermediate arrays
Runner = Callable[[np.ndarray], np.ndarray]  # float32 rows in features order -> coordinates
INPUT_NAME, OUTPUT_NAME = "raw_rows", "coordinates"  # as engine/onnx_export.py names them


def _one_line(text: object, limit: int = 300) -> str:
    words = " ".join(str(text).split())
    return words if len(words) <= limit else words[:limit] + "..."


def read_model_info(model_path: Path) -> Dict[str, Any]:
    """What the JSON beside the encoder says: the feature columns, in the encoder's order, and
    the id and label columns of the job that trained it."""
    info_path = Path(model_path).with_suffix(".json")
    problem = input_problem(info_path, "the model's description (JSON)")
    if problem:
        raise ReducerError(f"{problem}; reducer needs it beside {model_path} to match the input's columns by "
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


def _onnx_runner(path: Path, features: Sequence[str]) -> Runner:
    """A function raw rows (float32) -> coordinates, run by onnxruntime on one thread."""
    import onnxruntime

    try:
        with open_regular(path) as handle:
            data = handle.read(MAX_MODEL_BYTES + 1)
    except (DataError, OSError) as exc:
        raise ReducerError(f"{path}: cannot read: {_one_line(exc)}") from None
    if len(data) > MAX_MODEL_BYTES:
        raise ReducerError(f"{path}: larger than {MAX_MODEL_BYTES >> 20} MiB; not an encoder reducer wrote")
    try:
        options = onnxruntime.SessionOptions()
        # Tiny matrices: threads would only add hand-offs (and a thread pool per process).
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = False  # blocks of varying size: an arena keeps the largest
        options.log_severity_level = 3  # errors only: nothing in the caller's log on success
        session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own types: not ONNX, an operator it lacks...
        raise ReducerError(f"{path}: not a model reducer can load: {type(exc).__name__}: "
                           f"{_one_line(exc, 200)}") from None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    try:
        named = json.loads(session.get_modelmeta().custom_metadata_map.get("features", "null"))
    except ValueError:
        named = "unreadable"
    if ([i.name for i in inputs] != [INPUT_NAME] or [o.name for o in outputs] != [OUTPUT_NAME]
            or inputs[0].shape[-1] != len(features)):
        raise ReducerError(f"{path}: not an encoder reducer wrote for {len(features)} columns (input "
                           f"{[(i.name, i.shape) for i in inputs]}); run the job again to write it")
    if named is not None and named != list(features):
        raise ReducerError(f"{path} and its .json name different columns (a publication interrupted half "
                           f"way, or files copied from two runs?); run the job again")
    return lambda rows: session.run([OUTPUT_NAME], {INPUT_NAME: rows})[0]


def _keras_runner(path: Path, width: int) -> Runner:
    """The fallback: the Keras model, with TensorFlow's import."""
    from reducer.engine import model as model_lib
    from reducer.engine.tf_setup import configure, keras

    configure()
    try:
        model = keras.models.load_model(path)
        columns = model.input_shape[-1]
    except Exception as exc:  # not a zip, not a Keras file, a model of another kind...
        raise ReducerError(f"{path}: not a model reducer can load: {type(exc).__name__}: "
                           f"{_one_line(exc, 200)}") from None
    if columns != width:
        raise ReducerError(f"{path} takes {columns} columns, but its .json names {width}")
    return lambda rows: model_lib.apply(model, rows)


class Encoder:
    """A published encoder: `Encoder("Models/wine.onnx").transform(frame)` gives the map
    coordinates of the DataFrame's rows, as `reducer run` placed its own rows.

    model: `Models/<job>.onnx`, or `.keras` or `.json` of the same job (the others are found
    beside it). The `.json` is required: it names the feature columns, which `transform`
    takes by name. Attributes: `features`, `id_column`, `label_column` (of the job), `latent`,
    and `backend` ("onnxruntime", or "keras" when the fallback was taken).
    """

    def __init__(self, model: Union[str, Path]) -> None:
        model = Path(model)
        info = read_model_info(model)
        self.features = tuple(info["features"])
        self.id_column, self.label_column = info.get("id_column"), info.get("label_column")
        self.path = model.with_suffix(".onnx")
        why_not = None
        if not os.path.lexists(self.path):
            why_not = f"{self.path} does not exist (a model published before reducer wrote ONNX files?)"
        else:
            try:
                import onnxruntime  # noqa: F401
            except ImportError:
                why_not = "onnxruntime is not installed (pip install onnxruntime)"
        if why_not is None:
            self.backend, self._run = "onnxruntime", _onnx_runner(self.path, self.features)
        else:
            self.path = model.with_suffix(".keras")
            problem = input_problem(self.path, "a .keras model file")
            if problem:
                raise ReducerError(f"{why_not}, and {problem}")
            log.warning("%s; placing rows with %s instead, which imports TensorFlow (seconds); running the job "
                        "again writes the ONNX file", why_not, self.path)
            self.backend, self._run = "keras", _keras_runner(self.path, len(self.features))
        self.latent = int(self._run(np.zeros((1, len(self.features)), np.float32)).shape[1])

    def __repr__(self) -> str:
        return f"Encoder({str(self.path)!r}, {len(self.features)} columns -> {self.latent}, {self.backend})"

    def transform(self, rows: Any) -> np.ndarray:
        """Coordinates (float32, rows x latent) of `rows`: a DataFrame holding at least the
        feature columns (any order, other columns ignored; numbers, or text of numbers), or a
        2-D array whose columns are already `features`, in that order. A missing column, a
        cell that is not a finite number: DataError naming the column and row."""
        if hasattr(rows, "columns"):
            raw = self.select(rows)
        else:
            raw = np.asarray(rows, dtype=np.float64)
            if raw.ndim != 2 or raw.shape[1] != len(self.features):
                raise DataError(f"expected rows x {len(self.features)} values (columns {', '.join(self.features)}), "
                                f"got shape {raw.shape}; a DataFrame is matched by column names")
            bad = np.flatnonzero(~(np.abs(raw) <= FLOAT32_MAX).all(axis=1))  # NaN fails <= too
            if bad.size:
                raise DataError(f"row {bad[0]} holds NaN, an infinite value or one beyond float32; expected "
                                f"finite numbers")
        return self.transform_raw(raw.astype(np.float32))

    def select(self, frame: Any) -> np.ndarray:
        """The feature columns of a DataFrame by name, checked, as float64 (rows x features)."""
        from reducer.tables.checks import numeric_column

        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise DataError(f"missing feature column(s) {', '.join(missing)}; the model was trained on: "
                            f"{', '.join(self.features)}")
        if not len(frame):
            return np.empty((0, len(self.features)))
        return np.column_stack([numeric_column(frame, name) for name in self.features])

    def transform_raw(self, raw: np.ndarray) -> np.ndarray:
        """Coordinates of float32 rows already in `features` order, unchecked, in batches."""
        raw = np.ascontiguousarray(raw, dtype=np.float32)
        if not len(raw):
            return np.empty((0, self.latent), np.float32)
        parts = [self._run(raw[start:start + BATCH_ROWS]) for start in range(0, len(raw), BATCH_ROWS)]
        return np.asarray(np.concatenate(parts), dtype=np.float32)
