"""The one place TensorFlow is imported and configured. Importing this module costs seconds:
only training and encoding paths do it."""

import gc
import logging
import os
import sys
from typing import Any, Dict, Optional, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no C++ start-up chatter in nightly logs
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# oneDNN's kernels run only on some CPUs, and choose differently by batch shape: with them the
# same row is placed one float32 step apart alone and in a batch, and two machines of one
# project disagree. Off, every CPU runs the same Eigen kernels (and the log loses a line).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def _import_without_sklearn() -> Tuple[Any, Any]:
    """Import TensorFlow and Keras without scikit-learn. Keras imports it (and SciPy) only for
    its scikit-learn wrappers, which reducer does not use: ~1.5 s and ~60 MiB per process when
    scikit-learn is installed. A later `import sklearn` (a plugin's) works as usual."""
    hidden = "sklearn" not in sys.modules
    if hidden:
        sys.modules["sklearn"] = None  # type: ignore[assignment]  # makes `import sklearn` raise ImportError
    try:
        import keras
        import tensorflow as tf
    finally:
        if hidden and sys.modules.get("sklearn", 0) is None:
            del sys.modules["sklearn"]
    return keras, tf


def _import_quickly() -> Tuple[Any, Any]:
    """Importing TensorFlow creates millions of objects, and the cyclic garbage collector keeps
    rescanning them while the import runs: ~25% of its 4-6 s here. Nothing it creates is garbage,
    so collection is paused during the import, and afterwards everything imported is moved out
    of the collector's sight (gc.freeze) so that later collections, during tracing for example,
    do not walk TensorFlow's modules again."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return _import_without_sklearn()
    finally:
        if paused:
            gc.enable()
        gc.freeze()


keras, tf = _import_quickly()

# XLA CPU options for the training loop's tiny matmuls (see train.py and benchmarks/README.md):
# without them each matmul is a call into Eigen or YNNPACK costing ~1.5 us of set-up, with them
# XLA emits its own small-matmul kernels. Single-threaded Eigen is what reducer's one-thread
# default does anyway. XLA reads XLA_FLAGS at its first compilation, so setting it here, after
# the import, still counts; an unknown flag aborts the process, hence the version check (the
# YNNPACK flag is known to exist in TensorFlow 2.21; extend the range once a version is tested).
_XLA_FLAGS = {"xla_cpu_multi_thread_eigen": "false"}
if tuple(int(p) for p in tf.__version__.split(".")[:2]) == (2, 21):
    _XLA_FLAGS["xla_cpu_experimental_ynn_fusion_type"] = ""


def _add_xla_flags(flags: Dict[str, str]) -> None:
    current = os.environ.get("XLA_FLAGS", "")
    extra = [f"--{name}={value}" for name, value in flags.items() if f"--{name}" not in current]
    if extra:
        os.environ["XLA_FLAGS"] = " ".join([current, *extra]).strip()


if os.environ.get("REDUCER_XLA_DEFAULTS", "1") != "0":
    _add_xla_flags(_XLA_FLAGS)


class _NoRetracingWarning(logging.Filter):
    """Each job builds its training functions afresh (closures over its own model and rows), and
    TensorFlow counts every job's first call as a retracing of one function: from the fifth job
    of a night it logs "WARNING:tensorflow:5 out of the last 5 calls to <function ...> triggered
    tf.function retracing ...", a line with no time or job that asks the reader to fix nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


tf.get_logger().addFilter(_NoRetracingWarning())

_configured = False


def configure(threads: Optional[int] = None) -> None:
    """Thread counts must be set before TensorFlow runs its first op; later calls are ignored.

    Tiny matrices lose to thread hand-offs, so the default is one thread per op.
    """
    global _configured
    if _configured:
        return
    threads = int(os.environ.get("REDUCER_THREADS", threads or 1))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # the runtime was already started by someone else
        pass
    _configured = True


__all__ = ["configure", "keras", "tf"]
