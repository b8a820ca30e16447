"""Load: reducer's in-memory load stage against a bare `pandas.read_csv` of the same file, in one
process (issue 10: within 3x).

    python benchmarks/load.py                      # 200,000 rows x 20 columns, 5 repetitions
    python benchmarks/load.py --rows 50000 --repeats 3
    python benchmarks/load.py --tiny               # a smoke test: 2,000 rows x 5 columns, 2 repetitions

The CSV is scale.py's (id, f1..fN with three decimals, label; 10 Gaussian clusters), generated
in a temporary folder. A job reads it with the csv dataset, `streaming = false`. Each repetition
times, in an order that alternates between repetitions (so that drift in the machine's load
falls on every side):

- `pandas.read_csv(path)`: the bare parse, nothing checked, float64 columns;
- `reducer.tables.storage.open_table` with the in-memory decision: reducer's one CSV reader
  (pandas' C parser a block at a time, every cell checked), the statistics and the normalised
  float32 copy, the row digest;
- `reducer.run.pipeline.load_table`: the manifest's `load` stage: the above, plus the storage
  decision and the sha256 of the input file.

One untimed read of each comes first (the file in the page cache for all). Prints each time,
the median and best of each, and the ratios of the medians to pandas'; --json PATH also writes
them.
"""

import argparse
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas  # noqa: E402

from reducer.run.pipeline import load_table  # noqa: E402
from reducer.run.runner import plan  # noqa: E402
from reducer.tables import storage  # noqa: E402
from scale import generate  # noqa: E402


def make_job(project, data, chunk_rows):
    path = project / "jobs" / "load.toml"
    path.write_text(f'[dataset]\nname = "csv"\npath = "../Data/{data.name}"\nid = "id"\nlabel = "label"\n'
                    f"streaming = false\nchunk_rows = {chunk_rows}\n", encoding="utf-8")
    found = plan([path])
    if found.failed:
        raise SystemExit(f"{path}: {found.failed[0].reason}")
    return found.ready[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunk-rows", type=int, default=storage.CHUNK_ROWS)
    parser.add_argument("--folder", type=Path, help="work folder (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--tiny", action="store_true", help="a smoke test: --rows 2000 --columns 5 --repeats 2")
    args = parser.parse_args()
    if args.tiny:
        args.rows, args.columns, args.repeats = 2000, 5, 2

    folder = args.folder or Path(tempfile.mkdtemp(prefix="reducer-load-"))
    project = folder / "project"
    for name in ("jobs", "Data"):
        (project / name).mkdir(parents=True, exist_ok=True)
    data = project / "Data" / f"load_{args.rows}x{args.columns}.csv"
    if not data.exists():
        generate(data, args.rows, args.columns)
    job, dataset, source = make_job(project, data, args.chunk_rows)
    place = storage.choose(job, dataset)
    if not place.in_memory:
        raise SystemExit(f"expected an in-memory table, got: {place.reason}")

    def read_csv():
        frame = pandas.read_csv(data)
        return frame.shape

    def open_table():
        table = storage.open_table(job, dataset, source, storage.choose(job, dataset), None)
        return table.rows, len(table.features)

    def load_stage():
        table = load_table(job, dataset, source)[1]
        return table.rows, len(table.features)

    sides = {"pandas.read_csv": read_csv, "storage.open_table": open_table, "pipeline.load_table": load_stage}
    shapes = {name: side() for name, side in sides.items()}  # untimed: the page cache, first imports
    times = {name: [] for name in sides}
    names = list(sides)
    for repeat in range(args.repeats):
        for name in names if repeat % 2 == 0 else list(reversed(names)):
            gc.collect()
            started = time.perf_counter()
            sides[name]()
            times[name].append(time.perf_counter() - started)
        print(json.dumps({name: round(seconds[-1], 4) for name, seconds in times.items()}), file=sys.stderr,
              flush=True)

    base = statistics.median(times["pandas.read_csv"])
    summary = {name: {"median_seconds": statistics.median(seconds), "best_seconds": min(seconds),
                      "seconds": seconds, "ratio_to_read_csv": statistics.median(seconds) / base}
               for name, seconds in times.items()}
    size = data.stat().st_size
    print(f"\n{args.rows:,} rows x {args.columns} columns + id + label ({size / 1e6:.1f} MB), {args.repeats} "
          f"repetitions; reducer's table: {shapes['storage.open_table'][0]:,} rows x "
          f"{shapes['storage.open_table'][1]} features ({place.reason}); pandas: {shapes['pandas.read_csv']}\n")
    print("| what | median s | best s | median / read_csv | MB/s (median) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, figures in summary.items():
        print(f"| `{name}` | {figures['median_seconds']:.3f} | {figures['best_seconds']:.3f} | "
              f"{figures['ratio_to_read_csv']:.2f}x | {size / 1e6 / figures['median_seconds']:.0f} |")
    print(f"\nload average {' / '.join(f'{v:.1f}' for v in os.getloadavg())}, {os.cpu_count()} CPUs, "
          f"pandas {pandas.__version__}")
    if args.json:
        args.json.write_text(json.dumps({"rows": args.rows, "columns": args.columns, "input_bytes": size,
                                         "repeats": args.repeats, "summary": summary}, indent=1))
    if args.keep:
        print(f"\nkept {folder}", file=sys.stderr)
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
