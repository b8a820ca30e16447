"""A plugin that fails while being imported: reported by file name and skipped."""

import reducer

raise ImportError("needs the 'labsensors' package, which is not installed")


@reducer.hookimpl
def register_datasets(register):
    register(reducer.Dataset(name="lab_sensors", description="never registered", load=dict))
