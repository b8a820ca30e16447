"""reducer: wide tables to 2-D/3-D maps with a Keras autoencoder.

The public API for plugin authors lives here: `hookimpl`, `Dataset`, the error types and
`DATA` (the project's data folder). See `reducer/hookspecs.py` for the contract.
"""

from pathlib import Path

import pluggy

from .dataset import Dataset
from .errors import DataError, PluginError, ReducerError

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("reducer")

# The checkout's Data/ folder: built-in datasets default to files there.
DATA = Path(__file__).resolve().parent.parent / "Data"

__all__ = ["DATA", "DataError", "Dataset", "PluginError", "ReducerError", "__version__", "hookimpl"]
