"""The generic CSV dataset: any delimited text file with numeric feature columns.

Options (job [dataset] table): path (required), label, id, features, normalize (the common
options), delimiter (default ","), header (default true; false names columns 0, 1, 2...),
encoding (default utf-8; a byte-order mark is accepted), and, as every dataset that offers
`read_blocks`, streaming and chunk_rows.

The file is read by reducer's one CSV reader (reducer/tables/csv_reader.py): pandas' C parser a
block at a time, every cell checked, every problem named by its line; the table is then held in
memory or in the float32 cache on disk, as its size requires.
"""

import reducer


def validate_csv(options):
    """What `reducer check` can tell about the options before reading the file."""
    from reducer.tables.csv_reader import check_options

    check_options(options["path"], options.get("delimiter", ","), options.get("encoding", "utf-8"))


def read_blocks(options, chunk_rows):
    from reducer.tables.csv_reader import read_blocks as read_csv_blocks

    if "path" not in options:
        raise reducer.DataError("the csv dataset needs a path option")
    return read_csv_blocks(options, chunk_rows)


def load_csv(options):
    """The checked rows as a DataFrame (features, then id and label when the job names them)."""
    import numpy as np
    import pandas as pd

    with read_blocks(options, 100_000) as blocks:
        parts = list(blocks)
        columns = {name: np.concatenate([p[0][:, k] for p in parts]) for k, name in enumerate(blocks.features)}
        for column, index in ((blocks.id_column, 1), (blocks.label_column, 2)):
            if column is not None:
                columns[column] = np.concatenate([p[index] for p in parts])
    frame = pd.DataFrame(columns)
    frame.attrs.update(source=str(options["path"]))
    return frame


@reducer.hookimpl
def register_datasets(register):
    register(reducer.Dataset(
        name="csv", description="any CSV file: set path, and label, id, features as needed",
        load=load_csv, read_blocks=read_blocks, validate=validate_csv, normalize="minmax",
        options={
            "path": reducer.Option(str, required=True, description="the CSV file, relative to the job file"),
            "delimiter": reducer.Option(str, default=",", description="the character between fields"),
            "header": reducer.Option(bool, default=True,
                                     description="whether the first line names the columns (false: 0, 1, 2...)"),
            "encoding": reducer.Option(str, default="utf-8", description="the text encoding (a byte-order mark is fine)"),
        }))
