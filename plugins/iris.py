"""Fisher's iris: 150 flowers, 4 measurements in cm, species as the label."""

import reducer


def load_iris(options, nrows=None):
    import pandas as pd

    path = options.get("path", reducer.DATA / "iris.csv")
    frame = pd.read_csv(path, encoding="utf-8-sig", nrows=nrows)
    frame.attrs.update(source=str(path), first_line=2)
    return frame


def iris_header(options):
    """The columns alone (the file's first line), for `reducer check`."""
    return load_iris(options, nrows=0)


@reducer.hookimpl
def register_datasets(register):
    register(reducer.Dataset(
        name="iris", description="Fisher's iris, 150 x 4 measurements, label species",
        load=load_iris, header=iris_header, label="species", normalize="minmax", options={"path": reducer.Option(
            str, description="a CSV file with iris' columns (default: the built-in copy)")}))
