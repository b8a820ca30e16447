"""The saved encoder as ONNX: the same arithmetic as the Keras model, written as an ONNX graph
that onnxruntime (Python, Java, C#, JavaScript, C...) runs without TensorFlow.

The graph is built directly from the weights of the layers reducer itself writes (a
`Normalization`, the `encoder` model's robust input (two Normalization layers around a tanh
Activation) and Dense layers, the optional linear `align` layer:
engine/model.py's `raw_row_encoder`), one ONNX node per operation Keras performs, in the same
order and in float32. Keras' own `model.export(format="onnx")` and tf2onnx convert a traced
TensorFlow graph instead: they need tf2onnx at every run, take seconds, and give a graph of
TensorFlow's ops (a chain of Identity and Reshape nodes around each layer) that depends on
their versions. Anything else in the model is refused with ExportError, never approximated,
and `write` checks the file against the Keras model on real rows before it is published.

Imports Keras (through tf_setup), so import this module lazily, where TensorFlow is loaded.
"""

import json
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Union

import numpy as np

from reducer.engine.tf_setup import keras

# ONNX opset 17 / IR version 8: what every onnxruntime since 1.13 (2022) and its ports read,
# and every operator used here is in it. Gelu is written with Erf (the Gelu op is opset 20).
OPSET = 17
IR_VERSION = 8
INPUT_NAME = "raw_rows"
OUTPUT_NAME = "coordinates"
# How far the ONNX file may be from the Keras model on the rows it is checked on, relative to
# the map's largest coordinate (at least 1): float32 arithmetic in another order, nothing more.
TOLERANCE = 1e-5


class ExportError(Exception):
    """The model holds something this exporter does not write (a bug: reducer builds the model)."""


def _elementwise(op: str, **attributes: Any) -> Callable[["_Graph", str], str]:
    return lambda graph, x: graph.node(op, [x], **attributes)


def _gelu(graph: "_Graph", x: str) -> str:
    # Keras' gelu (approximate=False): x * (1 + erf(x / sqrt(2))) / 2, in TensorFlow's order.
    half = graph.node("Mul", [x, graph.constant("half", np.float32(0.5))])
    scaled = graph.node("Div", [x, graph.constant("sqrt2", np.float32(np.sqrt(2.0)))])
    one_plus = graph.node("Add", [graph.constant("one", np.float32(1.0)), graph.node("Erf", [scaled])])
    return graph.node("Mul", [half, one_plus])


ACTIVATIONS = {
    "linear": lambda graph, x: x,
    "sigmoid": _elementwise("Sigmoid"),
    "relu": _elementwise("Relu"),
    "tanh": _elementwise("Tanh"),
    "elu": _elementwise("Elu", alpha=1.0),
    # TensorFlow's constants, rounded to float32 as onnxruntime keeps them
    "selu": _elementwise("Selu", alpha=1.6732632423543772, gamma=1.0507009873554805),
    "softplus": _elementwise("Softplus"),
    "gelu": _gelu,
}


class _Graph:
    """The nodes and weights of a graph under construction, with readable unique names."""

    def __init__(self) -> None:
        from onnx import helper

        self.helper = helper
        self.nodes: List[Any] = []
        self.initializers: List[Any] = []
        self.names: Set[str] = set()

    def _name(self, base: str) -> str:
        name, k = base, 1
        while name in self.names:
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name

    def constant(self, name: str, value: Any) -> str:
        from onnx import numpy_helper

        name = self._name(name)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def node(self, op: str, inputs: List[str], name: Optional[str] = None, output: Optional[str] = None,
             **attributes: Any) -> str:
        output = output or self._name(f"{name or op.lower()}_out")
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=self._name(name or op.lower()),
                                                **attributes))
        return output


def _layers(model: Any) -> Iterator[Any]:
    """The model's layers in order, nested models opened up; ExportError for anything not a chain."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def _normalise(graph: _Graph, x: str, layer: Any) -> str:
    if layer.invert:
        raise ExportError(f"layer {layer.name!r}: an inverted Normalization")
    # The tensors Keras computes with (float32), and its formula: (x - mean) / max(sqrt(var), eps)
    mean = np.asarray(keras.ops.convert_to_numpy(layer.mean), np.float32).reshape(-1)
    variance = np.asarray(keras.ops.convert_to_numpy(layer.variance), np.float32).reshape(-1)
    spread = np.maximum(np.sqrt(variance), np.float32(keras.backend.epsilon())).astype(np.float32)
    centred = graph.node("Sub", [x, graph.constant(f"{layer.name}_mean", mean)], name=f"{layer.name}_sub")
    return graph.node("Div", [centred, graph.constant(f"{layer.name}_spread", spread)], name=f"{layer.name}_div")


def _activation(graph: _Graph, x: str, layer: Any) -> str:
    """`layer`'s activation (a Dense or an Activation layer) applied to x."""
    activation = keras.activations.serialize(layer.activation)
    activation = activation if isinstance(activation, str) else getattr(layer.activation, "__name__", "?")
    if activation not in ACTIVATIONS:
        raise ExportError(f"layer {layer.name!r}: activation {activation!r} has no ONNX form here")
    return ACTIVATIONS[activation](graph, x)


def _dense(graph: _Graph, x: str, layer: Any) -> str:
    weights = layer.get_weights()
    kernel = graph.constant(f"{layer.name}_kernel", weights[0])
    h = graph.node("MatMul", [x, kernel], name=f"{layer.name}_matmul")
    if layer.use_bias:
        h = graph.node("Add", [h, graph.constant(f"{layer.name}_bias", weights[1])], name=f"{layer.name}_bias_add")
    return _activation(graph, h, layer)


def to_onnx(model: Any, metadata: Optional[Dict[str, Any]] = None) -> Any:
    """An onnx.ModelProto computing `model` (a reducer encoder taking raw rows): input
    "raw_rows" float32 [rows, columns], output "coordinates" float32 [rows, latent].
    metadata: text key -> value, each written as JSON text in the file's
    metadata_props for programs in any language (reducer writes the feature names there)."""
    from onnx import TensorProto, checker, helper

    graph = _Graph()
    columns = int(model.input_shape[-1])
    x = INPUT_NAME
    graph.names.add(x)
    for layer in _layers(model):
        if isinstance(layer, keras.layers.Normalization):
            x = _normalise(graph, x, layer)
        elif isinstance(layer, keras.layers.Dense):
            x = _dense(graph, x, layer)
        elif isinstance(layer, keras.layers.Activation):
            x = _activation(graph, x, layer)
        else:
            raise ExportError(f"layer {layer.name!r} ({type(layer).__name__}) has no ONNX form here")
    latent = int(model.output_shape[-1])
    graph.node("Identity", [x], name="output", output=OUTPUT_NAME)
    onnx_graph = helper.make_graph(
        graph.nodes, model.name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["rows", columns])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["rows", latent])],
        graph.initializers)
    proto = helper.make_model(onnx_graph, producer_name="reducer", ir_version=IR_VERSION,
                              opset_imports=[helper.make_opsetid("", OPSET)],
                              doc_string="raw rows in the feature order of metadata 'features' -> map coordinates")
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    checker.check_model(proto, full_check=True)
    return proto


def disagreement(proto: Any, model: Any, rows: np.ndarray) -> Optional[float]:
    """The largest difference between onnxruntime's coordinates and the Keras model's for `rows`,
    relative to the largest coordinate (at least 1); None when onnxruntime is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    rows = np.asarray(rows, np.float32)
    got = session.run([OUTPUT_NAME], {INPUT_NAME: rows})[0]
    expected = np.asarray(model(rows, training=False))
    return float(np.max(np.abs(got - expected), initial=0.0) / max(1.0, float(np.max(np.abs(expected), initial=0.0))))


def write(path: Union[str, Path], model: Any, check_rows: np.ndarray,
          metadata: Optional[Dict[str, Any]] = None) -> None:
    """Write `model` as ONNX to `path`, after checking it against the Keras model on
    `check_rows` (raw rows, a few hundred are plenty): ExportError if they disagree."""
    proto = to_onnx(model, metadata)
    gap = disagreement(proto, model, check_rows)
    if gap is not None and gap > TOLERANCE:
        raise ExportError(f"the ONNX encoder differs from the Keras model by {gap:.3g} (relative) on the "
                          f"table's first rows; nothing published")
    with open(path, "wb") as handle:
        handle.write(proto.SerializeToString())
