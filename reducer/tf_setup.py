"""The one place TensorFlow is imported and configured. Importing this module costs seconds:
only training and encoding paths do it."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no C++ start-up chatter in nightly logs
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

_configured = False


def configure(threads=None):
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
