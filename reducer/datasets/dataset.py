"""`Dataset`: what a plugin registers. Part of the public plugin contract."""

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, Union

NORMALIZE_METHODS = ("minmax", "zscore", "none")


@dataclass(frozen=True)
class Option:
    """One option a dataset accepts in a job's [dataset] table (`Dataset.options`).

    type: a type or a tuple of types (``int``, ``float``, ``str``, ``bool``, ``list``,
        ``(int, str)``); a whole number is accepted where ``float`` is declared, and the plugin
        gets it as a float.
    default: the value the plugin gets when the job leaves the option out; None for no default
        (the option is then absent from the options the plugin gets).
    required: the job must give it (`reducer check` refuses a job without it); not with a default.
    choices: the values allowed, or None for any of the type.
    min, max: the range allowed for a number (inclusive), or None.
    description: one line for `reducer datasets` and for the message when it is missing.

    Example: ``reducer.Option(int, default=200, min=2, description="how many rows to make")``.
    """

    type: Any = str
    default: Any = None
    required: bool = False
    choices: Optional[Sequence[Any]] = None
    min: Optional[float] = None
    max: Optional[float] = None
    description: str = ""


# Options every dataset accepts in a job's [dataset] table; they override the dataset's defaults.
COMMON_OPTIONS: Mapping[str, Option] = {
    "label": Option(str, description="the column of labels that colour the map (default: the dataset's)"),
    "id": Option(str, description="the column of row ids (default: the dataset's, else row numbers)"),
    "features": Option(list, description="the numeric columns to reduce (default: the dataset's, else all)"),
    "normalize": Option(str, choices=NORMALIZE_METHODS, description="how columns are scaled before training"),
    "label_type": Option(str, choices=("class", "value"), description="whether labels are classes or values"),
    "keep": Option(list, description="columns carried verbatim into embedding.csv after label, shown on the map"),
}
# Options every dataset with `read_blocks` accepts: where its table lives, and the block size.
BLOCK_OPTIONS: Mapping[str, Option] = {
    "streaming": Option(bool, description="true: the float32 cache on disk; false: memory (default: size decides)"),
    "chunk_rows": Option(int, min=1,
                         description="rows per block read, at most (default 100000; a CSV block ends at 64 MiB too)"),
}

Affine = tuple  # (offset, scale): scalars or one number per feature column


@dataclass(frozen=True)
class Dataset:
    """A named source of rows. Checked when registered (reducer.datasets.registry.malformed): a
    Dataset that breaks this contract is reported with its plugin and skipped.

    name: how job files refer to it (`[dataset] name = "..."`); unique across plugins.
    description: one line for `reducer datasets`.
    load: ``load(options) -> pandas.DataFrame`` with one row per item. ``options`` is the job's
        [dataset] table as a dict, minus `name`, with `path` (and any key ending in `_path`)
        already resolved against the job file's folder. Raise ``reducer.DataError`` (or any
        exception: it is reported with the dataset's name) when the data cannot be read.
    label: the column holding class labels used to colour the plot, or None.
    label_type: "class" (categories: kNN accuracy, a legend) or "value" (a measurement: kNN
        R^2, a colour bar), or None to infer it: a numeric label with more than 10 distinct
        values is a value. Jobs may set it too (`label_type` in [dataset]).
    id: the column holding row identifiers, or None (row numbers 0, 1, 2... are used).
    features: the numeric columns to reduce, or None for every column except label and id.
    normalize: "minmax" (each column to [0, 1]), "zscore", "none", or a fixed affine map
        ``(offset, scale)`` applied as ``(x - offset) / scale``: finite numbers, scale non-zero,
        or lists of one per feature, which then need `features` naming those columns in order.
        The map is stored inside the saved encoder, so the encoder takes raw rows. "minmax"
        becomes "zscore" for a job with the neighbour objective (the default) that names no
        `normalize` (config.Job.for_dataset); "zscore", "none" and a fixed map are kept.
    options: extra job options the loader understands, name -> `reducer.Option` (type, default,
        required, choices or range, description), or, the short form, a type or tuple of types
        (``int``, ``(int, float)``; not ``"int"`` nor ``list[str]``). `reducer check` refuses an
        unknown option, a missing required one and a value out of its type, choices or range, in
        one line; `validate`, `load` and `read_blocks` get the options with the defaults filled
        in. `reducer datasets` lists them. Jobs may also set `label`, `id`, `features`,
        `normalize` and `label_type`, which override the fields here.
    validate: optional ``validate(options) -> None``, called by `reducer check` and before
        `reducer run` loads anything, with the options as `load` gets them; raise
        ``reducer.DataError`` with a one-line message for a value the loader would refuse.
    read_blocks: optional, for tables larger than memory. ``read_blocks(options, chunk_rows)``
        returns a context manager; entered, it has ``features`` (names), ``label_column`` and
        ``id_column`` (names or None) and iterates over blocks ``(values, ids, labels)`` of about
        ``chunk_rows`` rows: values rows x features (a numpy array or plain lists of numbers;
        ints are fine), ids and labels one per row (a list or array), or None when there is no
        such column. reducer checks every block (its width, that its cells are finite numbers
        within float32's range, that ids and labels have one per row) and reports a bad one in
        one line naming the job file, the dataset, the block and the row; an exception the
        plugin raises while reading fails its job with the plugin's file and line. ``options``
        are the job's, with the defaults and `label`, `id` and `features` filled in from this
        Dataset's. A dataset that offers it is held in memory or in a float32 cache on disk, as
        its size requires: the `path` file's size, else the size the reader says, as a
        ``rows`` (row count) or ``bytes`` attribute of the context manager or of what entering
        it gives (else memory); jobs may say `streaming = true` or `false`, and `chunk_rows`.
        The cache is reused while the `path` file, the options and the plugin's code are
        unchanged; without a `path` file the rows are read again every night. `load` is then
        used by nothing in reducer but stays required, for programs that want a DataFrame. The
        csv dataset is the example (``plugins/csv_table.py``, reading with
        ``reducer.tables.csv_reader``).
    header: optional, for a dataset without `read_blocks` that can tell its columns cheaply (a
        file's first line, a fixed list): ``header(options) -> pandas.DataFrame`` with the
        columns `load` would return and no rows needed (``pd.read_csv(path, nrows=0)``), its
        ``attrs["source"]`` set as `load` sets it. `reducer check` (without --data) then refuses
        a `label`, `id` or `features` column it lacks with the line `run` would print, without
        loading the rows. Without it (and without `read_blocks`), `reducer check` cannot see the
        columns: only `reducer check --data` and `run` do. The built-in iris and uci_digits
        datasets offer it.
    """

    name: str
    description: str
    load: Callable[[dict], Any]
    label: Union[str, None] = None
    id: Union[str, None] = None
    features: Union[Sequence[str], None] = None
    normalize: Union[str, Affine] = "minmax"
    options: Mapping[str, Any] = field(default_factory=dict)
    validate: Optional[Callable[[dict], None]] = None
    read_blocks: Optional[Callable[[dict, int], Any]] = None
    label_type: Optional[str] = None
    header: Optional[Callable[[dict], Any]] = None
