"""The generic CSV dataset: any delimited text file with numeric feature columns.

Options (job [dataset] table): path (required), label, id, features, normalize (the common
options), delimiter (default ","), header (default true; false names columns 0, 1, 2...),
encoding (default utf-8; a byte-order mark is accepted).
"""

import reducer


def load_csv(options):
    import pandas as pd

    if "path" not in options:
        raise reducer.DataError("the csv dataset needs a path option")
    path = options["path"]
    header = options.get("header", True)
    encoding = options.get("encoding", "utf-8")
    try:
        # dtype=str keeps every cell as written, so reducer can name the exact bad cell later.
        frame = pd.read_csv(path, sep=options.get("delimiter", ","), header=0 if header else None,
                            encoding="utf-8-sig" if encoding.lower().replace("-", "") == "utf8" else encoding,
                            dtype=str, keep_default_na=False, skipinitialspace=True)
    except UnicodeDecodeError as exc:
        raise reducer.DataError(f"{path}: not {encoding} text (byte {exc.start}); set the encoding "
                                f"option, e.g. encoding = \"latin-1\"") from None
    except pd.errors.EmptyDataError:
        raise reducer.DataError(f"{path}: the file is empty") from None
    except pd.errors.ParserError as exc:
        raise reducer.DataError(f"{path}: {exc}; check the delimiter option "
                                f"(now {options.get('delimiter', ',')!r})") from None
    if not header:
        frame.columns = [str(c) for c in frame.columns]
    frame.attrs.update(source=str(path), first_line=2 if header else 1)
    return frame


@reducer.hookimpl
def register_datasets(register):
    register(reducer.Dataset(
        name="csv", description="any CSV file: set path, and label, id, features as needed",
        load=load_csv, normalize="minmax",
        options={"path": str, "delimiter": str, "header": bool, "encoding": str}))
