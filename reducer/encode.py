"""`reducer encode`: place new rows with a saved encoder (the seed's "use it from another program")."""

import json
from pathlib import Path

import numpy as np

from reducer import publish
from reducer.tables.checks import numeric_column
from reducer.errors import DataError, ReducerError


def read_model_info(model_path):
    """The features the encoder was trained on, from the JSON written beside it (if any)."""
    info_path = Path(model_path).with_suffix(".json")
    if not info_path.is_file():
        return {}
    try:
        return json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReducerError(f"{info_path}: unreadable model description: {exc}") from None


def encode_file(model_path, input_path, output_path, id_column=None, label_column=None):
    import pandas as pd

    model_path, input_path, output_path = Path(model_path), Path(input_path), Path(output_path)
    if not model_path.is_file():
        raise ReducerError(f"{model_path}: no such model file")
    info = read_model_info(model_path)
    try:
        frame = pd.read_csv(input_path, encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{input_path}: no such file") from None
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{input_path}: cannot read CSV: {exc}") from None
    frame.attrs.update(source=str(input_path), first_line=2)
    id_column = id_column or (info.get("id_column") if info.get("id_column") in frame.columns else None)
    label_column = label_column or (info.get("label_column") if info.get("label_column") in frame.columns
                                    else None)
    features = info.get("features") or [c for c in frame.columns if c not in (id_column, label_column)]
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise DataError(f"{input_path}: missing feature column(s) {', '.join(missing)}; the model was "
                        f"trained on: {', '.join(features)}")
    raw = np.column_stack([numeric_column(frame, c) for c in features]).astype(np.float32)

    from reducer.engine.tf_setup import configure, keras

    configure()
    encoder = keras.models.load_model(model_path)
    if encoder.input_shape[-1] != raw.shape[1]:
        raise DataError(f"{input_path}: {raw.shape[1]} feature columns, but {model_path} takes "
                        f"{encoder.input_shape[-1]}")
    ids = frame[id_column].to_numpy() if id_column else np.arange(len(frame))
    labels = frame[label_column].to_numpy() if label_column else None
    output_path.parent.mkdir(parents=True, exist_ok=True)
    rows = [(raw, ids, labels)]
    publish.publish([(publish.stage(output_path, lambda p: publish.write_embedding(
        p, rows, lambda r: encoder.predict(r, batch_size=4096, verbose=0), labels is not None)), output_path)])
    return len(frame)
