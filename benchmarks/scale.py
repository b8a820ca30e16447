"""Scale: a generated CSV of up to 1,000,000 rows x 100 columns (with an id and a label),
reduced end to end by `reducer run` with `streaming = true`, at several row counts.

    python benchmarks/scale.py                       # 100k, 300k and 1M rows, in a temp folder
    python benchmarks/scale.py --rows 20000 --keep   # a quick look; keeps the folder
    python benchmarks/scale.py --rows 1000000 --compare   # one table path (issue 10): see below
    python benchmarks/scale.py --tiny [--compare]    # a smoke test: 2,000 rows x 8 columns, 1 epoch

For each row count: wall and CPU seconds of the whole `reducer run` (a fresh process:
TensorFlow's import included; CPU time is the steadier number on a shared machine), rows per
second, its peak RSS (os.wait4's ru_maxrss of that process), the
manifest's seconds per stage, and a second run of the largest size that reuses the cache.
Prints a Markdown table. The data: 10 Gaussian clusters in 100-D, three decimals per value;
the smaller files are the first rows of the largest one.

--compare (issue 10) reduces the largest file with the same job twice over in one run of this
script: once with no `streaming` key (reducer decides where the table lives; the log line and
the manifest's `table` section say what it chose) and once with `streaming = true` (the float32
cache, forced); `--variants` adds `memory` (`streaming = false`). Every run is cold: the job's
float32 cache and the compiled-code cache (outputs/.cache/) are removed before it. `--rounds 2`
(the default) runs the variants in the order A B, then B A, so that drift in the machine's
load falls on both. It prints each run, the median wall time, CPU time and peak RSS of each
variant, and their ratios to the `streaming = true` job. --json PATH also writes the figures.
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
    process = subprocess.Popen([sys.executable, "-m", "reducer", "run", "--force", f"jobs/{job}.toml"], cwd=project,
                               stdout=log, stderr=subprocess.STDOUT, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    log.close()
    return time.time() - started, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, process.returncode


# --compare: the `streaming` line of each variant's job ("" leaves the key out: reducer decides).
VARIANTS = {"auto": "", "streaming": "streaming = true\n", "memory": "streaming = false\n"}
BASELINE = "streaming"


def write_job(project, job, data, args, streaming="streaming = true\n"):
    (project / "jobs" / f"{job}.toml").write_text(
        f'[dataset]\nname = "csv"\npath = "../Data/{data.name}"\nid = "id"\nlabel = "label"\n'
        f"{streaming}chunk_rows = {args.chunk_rows}\n"
        f"[training]\nepochs = {args.epochs}\nbatch_size = {args.batch_size}\nlog_every = 1\n")


def held_line(log_path, job):
    """The last log line in which the job says where its table is held, or None."""
    lines = [line for line in log_path.read_text(errors="replace").splitlines()
             if f"[{job}] " in line and " held " in line]
    return lines[-1].strip() if lines else None


def measure(project, job, rows, kind, env):
    """One `reducer run` of the job: its figures and what its manifest says."""
    seconds, cpu, rss, code = run(project, job, env)
    manifest_path = project / "outputs" / job / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if code == 0 else {}
    return {"rows": rows, "job": job, "run": kind, "returncode": code, "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu, 1),
            "rows_per_second": round(rows / seconds), "peak_rss_mib": round(rss / 2**20),
            "stages": manifest.get("seconds", {}),
            "table": manifest.get("table"), "cache_reused": (manifest.get("streaming") or {}).get("cache_reused"),
            "final_loss": manifest.get("training", {}).get("final_loss"),
            "trustworthiness_5": (manifest.get("quality") or {}).get("trustworthiness_5")}


def median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def compare(project, data, rows, args, env):
    """The same job with each of args.variants' `streaming` settings, every run cold, in the
    order A B, B A, ... over args.rounds rounds. Returns (runs, summary per variant)."""
    runs = []
    for round_ in range(args.rounds):
        order = args.variants if round_ % 2 == 0 else list(reversed(args.variants))
        for variant in order:
            job = f"{variant}_{rows}"
            write_job(project, job, data, args, VARIANTS[variant])
            shutil.rmtree(project / "outputs" / ".cache", ignore_errors=True)  # cold: no table, no compiled code
            result = measure(project, job, rows, f"round {round_ + 1}", env)
            result.update(variant=variant, held_log_line=held_line(project / f"{job}.log", job))
            runs.append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)
    summary = {}
    for variant in args.variants:
        mine = [r for r in runs if r["variant"] == variant]
        summary[variant] = {"runs": len(mine), "ok": all(r["returncode"] == 0 for r in mine),
                            "held": sorted({(r["table"] or {}).get("held", "?") for r in mine}),
                            "reason": (mine[-1]["table"] or {}).get("reason"),
                            "held_log_line": mine[-1]["held_log_line"],
                            "median_seconds": round(median([r["seconds"] for r in mine]), 1),
                            "median_cpu_seconds": round(median([r["cpu_seconds"] for r in mine]), 1),
                            "max_peak_rss_mib": max(r["peak_rss_mib"] for r in mine)}
    base = summary.get(BASELINE)
    for variant, figures in summary.items():
        if base:
            figures["wall_ratio_to_streaming"] = round(figures["median_seconds"] / base["median_seconds"], 3)
            figures["cpu_ratio_to_streaming"] = round(figures["median_cpu_seconds"] / base["median_cpu_seconds"], 3)
    return runs, summary


def print_compare(runs, summary, args, rows):
    print(f"\n{rows:,} rows x {args.columns} columns + id + label; {args.epochs} epochs, batch {args.batch_size}, "
          f"chunk_rows {args.chunk_rows}; every run cold (outputs/.cache/ removed before it)\n")
    print("| variant | run | table held | wall s | CPU s | peak RSS MiB | load s | train s | save s | exit |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in runs:
        stages = r["stages"]
        held = (r["table"] or {}).get("held", "?")
        print(f"| {r['variant']} | {r['run']} | {held} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | "
              f"{r['peak_rss_mib']:,} | {stages.get('load', 0):.1f} | {stages.get('train', 0):.1f} | "
              f"{stages.get('save', 0):.1f} | {r['returncode']} |")
    print("\n| variant | table held | median wall s | wall / streaming | median CPU s | CPU / streaming | "
          "max peak RSS MiB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for variant, f in summary.items():
        print(f"| {variant} | {', '.join(f['held'])} | {f['median_seconds']:.1f} | "
              f"{f.get('wall_ratio_to_streaming', float('nan')):.2f}x | {f['median_cpu_seconds']:.1f} | "
              f"{f.get('cpu_ratio_to_streaming', float('nan')):.2f}x | {f['max_peak_rss_mib']:,} |")
    print()
    for variant, f in summary.items():
        print(f"- {variant}: manifest table.reason: {f['reason']}")
        print(f"  log: {f['held_log_line']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--columns", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--folder", type=Path, help="work folder (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--compare", action="store_true",
                        help="the largest file with each of --variants, every run cold (issue 10)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=["auto", "streaming"])
    parser.add_argument("--rounds", type=int, default=2, help="--compare: rounds of the variants (A B, B A, ...)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--tiny", action="store_true",
                        help="a smoke test: --rows 2000 --columns 8 --epochs 1 --batch-size 256 --chunk-rows 500 "
                             "(--rounds 1 with --compare)")
    args = parser.parse_args()
    if args.tiny:
        args.rows, args.columns, args.epochs, args.batch_size, args.chunk_rows = [2000], 8, 1, 256, 500
        args.rounds = 1

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
    env.pop("REDUCER_XLA_CACHE_DIR", None)  # the compiled-code cache in outputs/.cache/, as the runs say
    if args.compare:
        runs, summary = compare(project, full, largest, args, env)
        print_compare(runs, summary, args, largest)
        if args.json:
            args.json.write_text(json.dumps({"rows": largest, "columns": args.columns, "epochs": args.epochs,
                                             "batch_size": args.batch_size, "chunk_rows": args.chunk_rows,
                                             "input_bytes": full.stat().st_size, "runs": runs,
                                             "summary": summary}, indent=1))
        if args.keep:
            print(f"\nkept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
        return 0 if all(r["returncode"] == 0 for r in runs) else 1

    results = []
    for rows in sorted(args.rows):
        data = full if rows == largest else project / "Data" / f"scale_{rows}.csv"
        if not data.exists():
            head(full, data, rows)
        job = f"scale_{rows}"
        write_job(project, job, data, args)
        shutil.rmtree(project / "outputs" / ".cache" / job, ignore_errors=True)
        for kind in ("cold", "cache reused") if rows == largest else ("cold",):
            result = measure(project, job, rows, kind, env)
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
    if args.json:
        args.json.write_text(json.dumps({"columns": args.columns, "epochs": args.epochs, "batch_size": args.batch_size,
                                         "chunk_rows": args.chunk_rows, "runs": results}, indent=1))
    if args.keep:
        print(f"\nkept {folder}", file=sys.stderr)
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return 0 if all(r["returncode"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
