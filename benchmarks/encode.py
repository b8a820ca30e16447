"""Encode: `reducer encode` with the ONNX encoder (issue 15), no TensorFlow.

    python benchmarks/encode.py                     # 10 rows x 5 repetitions, then 1,000,000 x 100
    python benchmarks/encode.py --rows 200000       # a smaller large file
    python benchmarks/encode.py --tiny              # a smoke test: 2,000 rows x 8 columns, 1 repetition

In a temporary folder: scale.py's CSV (id, f1..fN with three decimals, label; 10 Gaussian
clusters) of --rows rows, and a job trained by `reducer run` on its first 2,000 rows (2 epochs:
the encoder's size, not its quality, is what counts here), which publishes Models/big.onnx.
Then, each a fresh process whose wall time and peak RSS (os.wait4's ru_maxrss) are measured:

- small, --repeats times in an order that alternates (so drift in the machine's load falls on
  every side): `python -c "import tensorflow"`; `reducer encode --model Models/big.onnx` of the
  first 10 rows; the same with the .onnx hidden, so that reducer falls back to the Keras model
  (what `reducer encode` cost before the ONNX file);
- large, once: `reducer encode` of every row (-o to a file): rows per second and peak RSS.

It checks that the ONNX run imported no TensorFlow (`python -X importtime`), that both 10-row
outputs agree to 1e-5 and that the large output has one line per row. Prints a Markdown table;
--json PATH also writes the figures.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import generate, head  # noqa: E402

TRAIN_ROWS = 2000
SMALL_ROWS = 10


def measure(command, cwd, env, log):
    """(wall seconds, peak RSS MiB, exit code) of one command, its output appended to `log`."""
    started = time.perf_counter()
    with open(log, "ab") as handle:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
    return time.perf_counter() - started, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def reducer(*args):
    return [sys.executable, "-m", "reducer", *map(str, args)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the large file (default 1,000,000)")
    parser.add_argument("--columns", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5, help="repetitions of the small commands (default 5)")
    parser.add_argument("--folder", type=Path, help="work folder (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--tiny", action="store_true", help="a smoke test: --rows 2000 --columns 8 --repeats 1")
    args = parser.parse_args()
    if args.tiny:
        args.rows, args.columns, args.repeats = 2000, 8, 1

    folder = args.folder or Path(tempfile.mkdtemp(prefix="reducer-encode-"))
    project = folder / "project"
    for name in ("jobs", "Data"):
        (project / name).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("REDUCER_PLUGINS", None)
    log = folder / "commands.log"
    big = project / "Data" / f"encode_{args.rows}x{args.columns}.csv"
    if not big.exists():
        generate(big, args.rows, args.columns)
    head(big, project / "Data" / "train.csv", min(TRAIN_ROWS, args.rows))
    head(big, folder / "small.csv", SMALL_ROWS)
    (project / "jobs" / "big.toml").write_text(
        '[dataset]\nname = "csv"\npath = "../Data/train.csv"\nid = "id"\nlabel = "label"\n'
        "[training]\nepochs = 2\nbatch_size = 64\n[quality]\nenabled = false\n", encoding="utf-8")
    seconds, _, code = measure(reducer("run", "jobs/big.toml"), project, env, log)
    if code:
        raise SystemExit(f"reducer run failed ({code}); see {log}")
    onnx, hidden = project / "Models" / "big.onnx", project / "Models" / "big.onnx.hidden"

    imports = subprocess.run([sys.executable, "-X", "importtime", "-m", "reducer", "encode", "--model", onnx,
                              folder / "small.csv", "-o", os.devnull], env=env, capture_output=True, text=True)
    tensorflow_imported = any(line.rsplit("|", 1)[-1].strip().split(".")[0] in ("tensorflow", "keras")
                              for line in imports.stderr.splitlines() if line.startswith("import time:"))

    def import_tensorflow():
        return measure([sys.executable, "-c", "import tensorflow"], project, env, log)

    def encode_onnx():
        return measure(reducer("encode", "--model", onnx, folder / "small.csv", "-o", folder / "small_onnx.csv"),
                       project, env, log)

    def encode_keras():
        os.replace(onnx, hidden)
        try:
            return measure(reducer("encode", "--model", onnx.with_suffix(".keras"), folder / "small.csv", "-o",
                                   folder / "small_keras.csv"), project, env, log)
        finally:
            os.replace(hidden, onnx)

    sides = {'`python -c "import tensorflow"`': import_tensorflow,
             f"`reducer encode`, {SMALL_ROWS} rows (ONNX)": encode_onnx,
             f"`reducer encode`, {SMALL_ROWS} rows, Keras fallback (no .onnx)": encode_keras}
    names, runs = list(sides), {name: [] for name in sides}
    for repeat in range(args.repeats):
        for name in names if repeat % 2 == 0 else list(reversed(names)):
            wall, rss, code = sides[name]()
            if code:
                raise SystemExit(f"{name} exited {code}; see {log}")
            runs[name].append((wall, rss))
        print(json.dumps({name: round(r[-1][0], 3) for name, r in runs.items()}), file=sys.stderr, flush=True)
    small = {name: {"median_seconds": statistics.median(w for w, _ in r), "best_seconds": min(w for w, _ in r),
                    "peak_rss_mib": max(m for _, m in r), "seconds": [w for w, _ in r]} for name, r in runs.items()}
    base = small[names[0]]["median_seconds"]
    for figures in small.values():
        figures["ratio_to_tensorflow_import"] = figures["median_seconds"] / base
    onnx_out, keras_out = (np.loadtxt(folder / f"small_{kind}.csv", delimiter=",", skiprows=1, usecols=(2, 3))
                           for kind in ("onnx", "keras"))
    gap = float(np.max(np.abs(onnx_out - keras_out)))

    wall, rss, code = measure(reducer("encode", "--model", onnx, big, "-o", folder / "big_out.csv"), project, env, log)
    if code:
        raise SystemExit(f"reducer encode of {big} exited {code}; see {log}")
    with open(folder / "big_out.csv", "rb") as handle:
        lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
    large = {"rows": args.rows, "columns": args.columns, "input_bytes": big.stat().st_size, "seconds": wall,
             "rows_per_second": args.rows / wall, "peak_rss_mib": rss, "output_lines": lines}

    print(f"\nmodel: Models/big.onnx, {(project / 'Models' / 'big.onnx').stat().st_size:,} bytes ({args.columns} "
          f"columns, trained on {min(TRAIN_ROWS, args.rows):,} rows; `reducer run` {seconds:.1f} s); TensorFlow "
          f"imported by the ONNX run: {'yes' if tensorflow_imported else 'no'}; ONNX vs Keras on the {SMALL_ROWS} "
          f"rows: max difference {gap:.1e}\n")
    print(f"| command | median s | best s | median / TensorFlow import | peak RSS MiB (max of {args.repeats}) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, figures in small.items():
        print(f"| {name} | {figures['median_seconds']:.2f} | {figures['best_seconds']:.2f} | "
              f"{figures['ratio_to_tensorflow_import']:.3f}x | {figures['peak_rss_mib']:.0f} |")
    print("\n| large input | MB | wall s | rows/s | peak RSS MiB | output lines |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(f"| {args.rows:,} rows x {args.columns} columns | {large['input_bytes'] / 1e6:.1f} | {wall:.1f} | "
          f"{large['rows_per_second']:,.0f} | {rss:.0f} | {lines:,} |")
    print(f"\nload average {' / '.join(f'{v:.1f}' for v in os.getloadavg())}, {os.cpu_count()} CPUs")
    ok = not tensorflow_imported and gap <= 1e-5 and lines == args.rows + 1
    if args.json:
        args.json.write_text(json.dumps({"small": small, "large": large, "tensorflow_imported": tensorflow_imported,
                                         "onnx_keras_max_difference": gap, "ok": ok}, indent=1))
    if args.keep:
        print(f"\nkept {folder}", file=sys.stderr)
    else:
        shutil.rmtree(folder, ignore_errors=True)
    if not ok:
        print("FAILED: TensorFlow imported, outputs disagree or rows missing", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
