"""Sample data for the built-in datasets (this folder is reducer.sample_data once installed)."""
