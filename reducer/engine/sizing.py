"""How much memory the neighbour objective needs, decided before any graph is built.

Pure arithmetic on rows x columns and the job's settings: no TensorFlow, no numpy, so `reducer
check --data` and the run's planning can call it at no cost. It sizes what engine/neighbors.py
and engine/neighbor_train.py hold (their docstrings say how), and `sized_job` decides from it:
a job that names no objective gets the seed's reconstruction map when the neighbour map cannot
fit (with a warning on its summary line, in its report and in its manifest), a job that names
the neighbour objective a one-line refusal.

The peak of a run is the process (Python, TensorFlow, scikit-learn, faiss, the model) plus the
table as it is held, plus the larger of two stages:
- the graph's build: the approximate index (each row's values and its links) and the kNN
  lists, then the fuzzy union's sort (two entries per directed edge: key, order, weight);
- training: every normalised row once (a cached table is read into the array TensorFlow
  shares; an in-memory table's is copied once, aligned), the CSR graph and the step's tables
  of it (TensorFlow keeps its own copy), the code buffer and the hidden activations of the
  rows encoded at once while it is filled (every row up to BIG_ROWS rows, ENCODE_ROWS above);
  and beside it the quality metrics' sample (started after the first chunk of training, once the
  graph is built) and then the plot's.
Measured against the peak RSS of real runs in benchmarks/README.md ("Neighbours for big
tables"): within 20%.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Tuple

if TYPE_CHECKING:
    from reducer.config import Job

# The process before any table: Python, TensorFlow, Keras, scikit-learn, faiss, pandas imported,
# the model built and its loop compiled (measured: a 3,000 x 8 default job peaks at 1,011 MiB,
# of which 137 MiB are the quality metrics' distances below).
PROCESS_BYTES = 870 << 20
QUALITY_ROWS = 4000  # quality.MAX_ROWS: the metrics' sample, its pairwise distances and ranks
QUALITY_BYTES_PER_PAIR = 16  # measured: +244 MiB at 4,000 rows, +137 MiB at 3,000, while training runs
PLOT_ROWS = 50_000  # pipeline.PLOT_ROWS: the rows drawn, encoded and measured
PLOT_BYTES_PER_ROW = 1500  # matplotlib's points and the sample's coordinates, beside 3 copies of its values
SYMMETRIC_SHARE = 1.7  # edges of the fuzzy union per directed kNN edge (measured: 1.69 on 100k x 50, 1.88
# on the 100k x 100 clusters table, 1.95 on the 1M x 100 one)
CODE_COPIES = 4  # the code buffer, its update and the loop's carried copies
# What engine/neighbors.py does, kept here so that the estimate needs no numpy or faiss:
APPROXIMATE_ROWS = 20_000  # above this many rows, approximate search (faiss HNSW)
HNSW_M = 16  # links per row on the HNSW index's upper levels
HNSW_LINKS = 64  # links per row on its bottom level (every row is there)
HNSW_LINK_BYTES = HNSW_LINKS * 4 + 24  # per indexed row beyond its values: bottom-level links, upper levels
HNSW_VALUE_BYTES = 2  # the index holds each value as float16 ...
VALUE_LANES = 8  # ... in rows of a multiple of this many values (zeros added: faiss's SIMD lanes)
EXACT_WORKING_BYTES = 256 << 20  # the exact search's distances and their indices, a block of rows at a time
# What engine/neighbor_train.py does: above BIG_ROWS (defaults.BIG_ROWS) rows it fills its code
# buffer ENCODE_ROWS rows at a time, below it every row at once.
BIG_ROWS = 20_000
ENCODE_ROWS = 16_384
# The neighbour map is refused (or, for a job that names no objective, replaced by the
# reconstruction map) when its estimate is above this share of the memory available, or above
# NEIGHBORS_LIMIT_BYTES when that is set (a fixed ceiling, whatever the machine has).
AVAILABLE_SHARE = 0.8
NEIGHBORS_LIMIT_BYTES: Optional[int] = None
UNKNOWN_AVAILABLE = 4 << 30  # when the memory available cannot be read


def size_text(number: float) -> str:
    return f"{number / 1e6:,.1f} MB" if number < 1e9 else f"{number / 1e9:,.2f} GB"


@dataclass(frozen=True)
class Need:
    """The neighbour objective's memory, part by part (bytes)."""

    rows: int
    columns: int
    process: int  # the libraries and the model
    metrics: int  # the quality metrics' sample and the plot's: alive with training, not the graph's build
    table: int  # the table as held (in memory: raw and normalised values; cached: none)
    graph_build: int  # the search's index and lists, then the union's sort
    graph: int  # the CSR graph, kept to the end
    training: int  # the rows the loop shares, the step's graph tables, the codes
    approximate: bool

    @property
    def total(self) -> int:
        return self.process + self.table + max(self.graph_build, self.graph + self.training + self.metrics)

    def text(self) -> str:
        return (f"about {size_text(self.total)} at its peak for {self.rows:,} rows x {self.columns} columns "
                f"({'approximate' if self.approximate else 'exact'} neighbour search; libraries "
                f"{size_text(self.process)}, table {size_text(self.table)}, graph build "
                f"{size_text(self.graph_build)}, then graph {size_text(self.graph)} + training "
                f"{size_text(self.training)} + metrics and plot {size_text(self.metrics)})")


def edges(rows: int, n_neighbors: int) -> int:
    """The fuzzy union's edges, estimated: SYMMETRIC_SHARE x rows x (n_neighbors - 1)."""
    return int(rows * max(1, min(n_neighbors - 1, rows - 1)) * SYMMETRIC_SHARE)


def neighbors_need(rows: int, columns: int, n_neighbors: int, latent: int = 2, in_memory: bool = True,
                   hidden: Tuple[int, ...] = (96, 96)) -> Need:
    """What a neighbour job on a table of rows x columns holds (see the module's docstring).
    hidden: the encoder's hidden widths (each compiled call encodes the rows to fill its code
    buffer: two layers' activations of the rows encoded at once are alive together)."""
    k = max(1, min(n_neighbors - 1, rows - 1))
    values = rows * columns * 4
    edge_count = edges(rows, n_neighbors)
    lists = rows * k * (4 + 4)  # int32 neighbours, float32 distances (then weights)
    union_sort = 2 * rows * k * (8 + 8 + 4 + 1)  # int64 key, int64 order, float32 weight, keep flag
    approximate = rows > APPROXIMATE_ROWS
    if approximate:
        width = -(-columns // VALUE_LANES) * VALUE_LANES
        # the rows gathered (float32), the index's copy (float16) and links
        search = rows * (width * (4 + HNSW_VALUE_BYTES) + HNSW_LINK_BYTES) + lists
    else:  # the rows gathered (float32), a block's distances and indices, the lists in float64
        search = values + min(rows * rows * 12, EXACT_WORKING_BYTES) + rows * (k + 1) * 16
    graph = edge_count * (4 + 4) + (rows + 1) * 8
    step_tables = 2 * (edge_count * (4 + 4) + rows * (4 + 8))  # neighbours, shares; pointers, row bounds: numpy + TF
    widest = sorted(hidden, reverse=True)[:2] if hidden else [columns]
    encoding = (min(rows, ENCODE_ROWS) if rows > BIG_ROWS else rows) * sum(widest) * 4
    training = values + step_tables + rows * latent * 4 * CODE_COPIES + encoding
    sample = min(rows, QUALITY_ROWS)
    plotted = min(rows, PLOT_ROWS)
    metrics = sample * sample * QUALITY_BYTES_PER_PAIR + plotted * (columns * 4 * 3 + PLOT_BYTES_PER_ROW)
    return Need(rows=rows, columns=columns, process=PROCESS_BYTES, metrics=metrics,
                table=2 * values if in_memory else 0,
                graph_build=max(search, lists + union_sort), graph=graph, training=training, approximate=approximate)


def limit(available: Optional[int]) -> int:
    """The most the neighbour objective may need: AVAILABLE_SHARE of `available` (bytes, or None
    when unknown), never above NEIGHBORS_LIMIT_BYTES when that is set."""
    room = int((UNKNOWN_AVAILABLE if available is None else available) * AVAILABLE_SHARE)
    return room if NEIGHBORS_LIMIT_BYTES is None else min(room, NEIGHBORS_LIMIT_BYTES)


def available_memory() -> Optional[int]:
    """Bytes of memory available now (Linux's MemAvailable), or None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def sized_job(job: "Job", rows: int, columns: int, in_memory: bool = True, available: Optional[int] = None,
              kept: Optional[dict] = None) -> tuple:
    """(job, fallback, need): the job with the settings it leaves to the table filled in
    (Job.with_table_defaults; `kept`: the published run's sizing, continuity.sizing), and, for
    the neighbour objective, its memory `Need`. When that
    need is above `limit`: a job that names no objective gets the seed's reconstruction instead
    (`fallback` says why, else None), one that names it a JobError with one line."""
    from reducer.errors import JobError

    sized = job.with_table_defaults(rows, columns, kept=kept)
    if sized.model.objective != "neighbors":
        return sized, None, None
    need = neighbors_need(rows, columns, sized.model.n_neighbors, sized.model.latent, in_memory,
                          tuple(sized.model.hidden or ()))
    available = available_memory() if available is None else available
    most = limit(available)
    if need.total <= most:
        return sized, None, need
    ceiling = (f"{int(AVAILABLE_SHARE * 100)}% of the {size_text(available)} of memory available"
               if available is not None else f"{int(AVAILABLE_SHARE * 100)}% of an assumed {size_text(UNKNOWN_AVAILABLE)}")
    if NEIGHBORS_LIMIT_BYTES is not None and most == NEIGHBORS_LIMIT_BYTES:
        ceiling = f"the limit of {size_text(most)}"
    too_large = f"the neighbour map would need {need.text()}, above {ceiling}"
    if "model.objective" in job.table_sized:
        return job.with_table_defaults(rows, columns, neighbors_fit=False), too_large, need
    raise JobError(f"{job.path}: model.objective = \"neighbors\": {too_large}; use objective = "
                   f"\"reconstruction\" (trained from the cache in chunks) or fewer rows")


def what_it_will_do(job: "Job", need: Optional[Need], fallback: Optional[str], in_memory: bool) -> str:
    """One phrase for `reducer check --data`: the map the job will make and how."""
    if fallback:
        return f"a reconstruction map instead of the neighbour map (warning: {fallback})"
    if need is not None:
        return f"a neighbour map, {need.text()}"
    return f"a {job.model.objective} map{'' if in_memory else ', trained from the float32 cache in chunks'}"
