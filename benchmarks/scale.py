"""Scale: a generated CSV of up to 1,000,000 rows x 100 columns (with an id and a label),
reduced end to end by `reducer run` with `streaming = true`, at several row counts.

    python benchmarks/scale.py                       # 100k, 300k and 1M rows, in a temp folder
    python benchmarks/scale.py --rows 20000 --keep   # a quick look; keeps the folder

For each row count: wall and CPU seconds of the whole `reducer run` (a fresh process:
TensorFlow's import included; CPU time is the steadier number on a shared machine), rows per
second, its peak RSS (os.wait4's ru_maxrss of that process), the
manifest's seconds per stage, and a second run of the largest size that reuses the cache.
Prints a Markdown table. The data: 10 Gaussian clusters in 100-D, three decimals per value;
the smaller files are the first rows of the largest one.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLUSTERS = 10


def generate(path, rows, columns, seed=0, chunk=20_000):
    """Write the CSV: id, f1..fN, label; values rounded to 0.001 in [-9.999, 9.999]."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-4, 4, size=(CLUSTERS, columns))
    pool = np.array([f"{i / 1000:.3f}" for i in range(-9999, 10000)], dtype=object)  # text of each value
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(",".join(["id", *(f"f{k + 1}" for k in range(columns)), "label"]) + "\n")
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            labels = rng.integers(0, CLUSTERS, n)
            values = centres[labels] + rng.normal(scale=1.0, size=(n, columns))
            codes = np.clip(np.rint(values * 1000), -9999, 9999).astype(np.int64) + 9999
            lines = [f"row-{start + i:07d},{','.join(cells)},cluster_{label}\n"
                     for i, (cells, label) in enumerate(zip(pool[codes].tolist(), labels.tolist()))]
            handle.writelines(lines)


def head(source, target, rows):
    with open(source, "rb") as src, open(target, "wb") as dst:
        for _ in range(rows + 1):
            dst.write(src.readline())


def run(project, job, env):
    """(wall seconds, CPU seconds, peak RSS bytes, returncode) of one `reducer run`."""
    started = time.time()
    log = open(project / f"{job}.log", "ab")
    process = subprocess.Popen([sys.executable, "-m", "reducer", "run", f"jobs/{job}.toml"], cwd=project,
                               stdout=log, stderr=subprocess.STDOUT, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    log.close()
    return time.time() - started, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, process.returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--columns", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--folder", type=Path, help="work folder (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()

    folder = args.folder or Path(tempfile.mkdtemp(prefix="reducer-scale-"))
    project = folder / "project"
    (project / "jobs").mkdir(parents=True, exist_ok=True)
    (project / "Data").mkdir(exist_ok=True)
    largest = max(args.rows)
    full = project / "Data" / f"scale_{largest}.csv"
    t = time.time()
    if not full.exists():
        generate(full, largest, args.columns)
    print(f"generated {full} ({full.stat().st_size / 1e6:.0f} MB) in {time.time() - t:.0f}s", file=sys.stderr)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("REDUCER_PLUGINS", None)
    results = []
    for rows in sorted(args.rows):
        data = full if rows == largest else project / "Data" / f"scale_{rows}.csv"
        if not data.exists():
            head(full, data, rows)
        job = f"scale_{rows}"
        (project / "jobs" / f"{job}.toml").write_text(
            f'[dataset]\nname = "csv"\npath = "../Data/{data.name}"\nid = "id"\nlabel = "label"\n'
            f"streaming = true\nchunk_rows = {args.chunk_rows}\n"
            f"[training]\nepochs = {args.epochs}\nbatch_size = {args.batch_size}\nlog_every = 1\n")
        shutil.rmtree(project / "outputs" / ".cache" / job, ignore_errors=True)
        for kind in ("cold", "cache reused") if rows == largest else ("cold",):
            seconds, cpu, rss, code = run(project, job, env)
            manifest_path = project / "outputs" / job / "manifest.json"
            manifest = json.loads(manifest_path.read_text()) if code == 0 else {}
            result = {"rows": rows, "run": kind, "returncode": code, "seconds": round(seconds, 1),
                      "cpu_seconds": round(cpu, 1),
                      "rows_per_second": round(rows / seconds), "peak_rss_mib": round(rss / 2**20),
                      "stages": manifest.get("seconds", {}),
                      "final_loss": manifest.get("training", {}).get("final_loss"),
                      "trustworthiness_5": (manifest.get("quality") or {}).get("trustworthiness_5")}
            results.append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)

    print(f"\n{args.columns} columns + id + label; {args.epochs} epochs, batch {args.batch_size}, "
          f"chunk_rows {args.chunk_rows}\n")
    print("| rows | run | wall s | rows/s | CPU s | CPU s per 100k rows | peak RSS MiB | CSV pass s | "
          "train s | save s | exit |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        stages = r["stages"]
        print(f"| {r['rows']:,} | {r['run']} | {r['seconds']:.1f} | {r['rows_per_second']:,} | "
              f"{r['cpu_seconds']:.1f} | {r['cpu_seconds'] / r['rows'] * 1e5:.1f} | {r['peak_rss_mib']:,} | "
              f"{stages.get('load', 0):.1f} | "
              f"{stages.get('train', 0):.1f} | {stages.get('save', 0):.1f} | {r['returncode']} |")
    if args.keep:
        print(f"\nkept {folder}", file=sys.stderr)
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return 0 if all(r["returncode"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
