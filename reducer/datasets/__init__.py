"""Datasets: the plugin contract (`dataset.py`, `hookspecs.py`) and the registry that finds them."""
