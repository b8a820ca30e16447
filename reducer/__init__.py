"""reducer: wide tables to 2-D/3-D maps with a Keras autoencoder.

For plugin authors: `hookimpl`, `Dataset`, `Option`, the error types and `DATA` (the built-in datasets'
sample files); the contract is documented in `reducer/datasets/hookspecs.py` and
`reducer/datasets/dataset.py`.

For programs that drive reducer from Python (an orchestrator, a notebook): `run_jobs` and
`check_jobs` take job files and give a `JobResult` per job, as `reducer run` and
`reducer check` do (the CLI is a thin layer over them). They are imported on first use, so
`import reducer` stays light.

For programs that place new rows on a published map: `Encoder("Models/<job>.onnx")` and its
`transform(DataFrame)`, run by onnxruntime without TensorFlow (what `reducer encode` uses).
"""

import importlib.util
from pathlib import Path

import pluggy

from reducer.datasets.dataset import Dataset, Option
from reducer.errors import DataError, JobError, LockedError, PluginError, ReducerError

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("reducer")

# The built-in datasets' sample files: the repository's Data/ folder, installed as the package
# reducer.sample_data (pyproject.toml maps it), so a wheel install has them too.
DATA = Path(importlib.util.find_spec("reducer.sample_data").submodule_search_locations[0])

_LIBRARY = {"run_jobs": "reducer.run.runner", "check_jobs": "reducer.run.runner",
            "JobResult": "reducer.run.results", "Encoder": "reducer.encoder"}


def __getattr__(name):
    if name in _LIBRARY:
        return getattr(importlib.import_module(_LIBRARY[name]), name)
    raise AttributeError(f"module 'reducer' has no attribute {name!r}")


__all__ = ["DATA", "DataError", "Dataset", "Encoder", "JobError", "JobResult", "LockedError", "Option", "PluginError",
           "ReducerError", "__version__", "check_jobs", "hookimpl", "run_jobs"]
