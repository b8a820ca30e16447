"""reducer: wide tables to 2-D/3-D maps with a Keras autoencoder.

For plugin authors: `hookimpl`, `Dataset`, `Option`, the error types and `DATA` (the built-in datasets'
sample files); the contract is documented in `reducer/datasets/hookspecs.py` and
`reducer/datasets/dataset.py`.

For programs that drive reducer from Python (an orchestrator, a notebook): `run_jobs` is the
whole of `reducer run` (plan, lock, train, publish, then outputs/index.html) and `check_jobs`
the whole of `reducer check`; both take job files and give a `JobResult` per job, in the order
given (the CLI only formats them). They are imported on first use, so `import reducer` stays
light and TensorFlow-free.

For programs that read what a run published: `read_manifest`, `read_status`, `read_history`
and `read_embedding` (reducer/published.py), which raise `PublishedRecordError` on a malformed
record (`read_history` takes outputs/<job>/ or its history/ folder, and raises `NotFoundError`
when there is no such folder). For programs that place new rows on a published map: `Encoder("Models/<job>.onnx")`
and its `transform(DataFrame)`, run by onnxruntime without TensorFlow. For notebooks and
scikit-learn pipelines: `Map(epochs=..., ...)`, an estimator whose `fit_transform(X)` trains a
job's model on an array or DataFrame (reducer/estimator.py).
"""

import importlib as _importlib
from pathlib import Path as _Path

import pluggy as _pluggy

from reducer.datasets.dataset import Dataset, Option
from reducer.errors import DataError, JobError, LockedError, NotFoundError, PluginError, PublishedRecordError, ReducerError

__version__ = "0.1.0"

hookimpl = _pluggy.HookimplMarker("reducer")

# The built-in datasets' sample files: the repository's Data/ folder, installed as the package
# reducer.sample_data (pyproject.toml maps it), so a wheel install has them too.
DATA = _Path(_importlib.import_module("reducer.sample_data").__path__[0])

# Imported on first use: name -> the module that defines it.
_LIBRARY = {"run_jobs": "reducer.run.runner", "check_jobs": "reducer.run.runner",
            "JobResult": "reducer.run.results", "Encoder": "reducer.encoder", "Map": "reducer.estimator",
            "Status": "reducer.published", "read_manifest": "reducer.published", "read_status": "reducer.published",
            "read_history": "reducer.published", "read_embedding": "reducer.published"}

__all__ = ["DATA", "DataError", "Dataset", "Encoder", "JobError", "JobResult", "LockedError", "Map", "NotFoundError", "Option",
           "PluginError", "PublishedRecordError", "ReducerError", "Status", "__version__", "check_jobs", "hookimpl",
           "read_embedding", "read_history", "read_manifest", "read_status", "run_jobs"]


def __getattr__(name: str) -> object:
    if name in _LIBRARY:
        return getattr(_importlib.import_module(_LIBRARY[name]), name)
    raise AttributeError(f"module 'reducer' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API (what __all__ lists), as `dir(reducer)` and tab completion show it."""
    return sorted(__all__)
