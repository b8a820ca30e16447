"""The built-in datasets, registered like any other plugin (see reducer/datasets/registry.py)."""
