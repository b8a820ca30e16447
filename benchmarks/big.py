"""Big tables on the default path (issue 22): a default job (dataset, path, id and label only)
through `reducer run`, side by side with umap-learn on the same rows, in one run of this script.

    python benchmarks/big.py                         # 100,000 x 50 clustered CSV, reducer then UMAP
    python benchmarks/big.py --rows 1000000 --columns 100 --table clusters --skip-umap
    python benchmarks/big.py --table blobs --seed 5    # a held-out shape: 20 overlapping round groups
    python benchmarks/big.py --tiny                  # a smoke test: 3,000 x 8, no UMAP

Tables: `classification` is `benchmarks/quality.py --large`'s make_classification CSV (10
classes, 2 clusters each, fixed seed, four decimals); `clusters` is benchmarks/scale.py's (10
Gaussian clusters, three decimals), the 1,000,000 x 100 CSV of issue 22. Each side runs in a
fresh process started by /usr/bin/time (its "maximum resident set size" is the peak RSS of that
process alone: os.wait4 from this script would also count this script's own memory, which a
child's ru_maxrss inherits at the fork):
- reducer: `python -m reducer run JOB`, the job naming only its dataset, path, id and label;
- umap-learn: import, read the CSV (pandas), z-score it as the default job does, UMAP(random_state
  = 0, its defaults otherwise) fit_transform, write the map's CSV.
Both maps are scored on the same fixed 4,000-row sample of the z-scored rows with reducer's
metrics (quality.Reference: trustworthiness@5, kNN accuracy). Prints a Markdown table and the
ratios; --json PATH writes everything. The machine's load average is printed: on a shared
machine only the ratios of one run mean much.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

UMAP_SCRIPT = """
import sys, time
started = time.time()
import numpy as np, pandas as pd, umap
frame = pd.read_csv(sys.argv[1])
x = frame.drop(columns=["id", "label"]).to_numpy(dtype=np.float64)
x = ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32)
fit = time.time()
coordinates = umap.UMAP(random_state=0).fit_transform(x)
fit = time.time() - fit
pd.DataFrame({"id": frame["id"], "x": coordinates[:, 0], "y": coordinates[:, 1]}).to_csv(sys.argv[2], index=False)
print(f"fit_seconds={fit:.2f} umap={umap.__version__}")
"""


def timed_run(command, log_path, cwd=REPO):
    """(wall s, CPU s, peak RSS MiB, exit code) of a command run under /usr/bin/time."""
    started = time.time()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(["/usr/bin/time", "-f", "TIME %e %U %S %M", *command], cwd=cwd, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        code = process.wait()
    wall = time.time() - started
    text = Path(log_path).read_text(errors="replace")
    found = re.findall(r"TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)", text)
    if not found:
        return wall, float("nan"), float("nan"), code
    _, user, system, peak = found[-1]
    return wall, float(user) + float(system), int(peak) / 1024, code


def make_table(kind, path, rows, columns, seed=11):
    if kind == "classification":
        from quality import make_large_csv

        return make_large_csv(path, rows, columns, seed=seed)["generator"]
    if kind == "blobs":  # a held-out shape: 20 round groups that overlap, no redundant columns
        import pandas as pd
        from sklearn.datasets import make_blobs

        x, y = make_blobs(n_samples=rows, n_features=columns, centers=20, cluster_std=10.0, random_state=seed)
        frame = pd.DataFrame(x, columns=[f"f{k + 1}" for k in range(columns)])
        frame.insert(0, "id", np.arange(rows))
        frame["label"] = [f"group_{c}" for c in y]
        frame.to_csv(path, index=False, float_format="%.4f")
        return (f"sklearn.datasets.make_blobs(n_samples={rows}, n_features={columns}, centers=20, "
                f"cluster_std=10.0, random_state={seed})")
    from scale import generate

    generate(path, rows, columns)
    return f"benchmarks/scale.py generate(rows={rows}, columns={columns}, seed=0)"


def zscored(csv, columns):
    import pandas as pd

    frame = pd.read_csv(csv)
    x = frame[[f"f{k + 1}" for k in range(columns)]].to_numpy(dtype=np.float64)
    return ((x - x.mean(axis=0)) / x.std(axis=0)), frame["label"].to_numpy(), frame["id"].to_numpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--columns", type=int, default=50)
    parser.add_argument("--table", choices=("classification", "clusters", "blobs"), default="classification")
    parser.add_argument("--seed", type=int, default=11, help="the classification/blobs generator's seed")
    parser.add_argument("--skip-umap", action="store_true")
    parser.add_argument("--folder", type=Path, help="work folder (default: a new temporary folder, removed)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--tiny", action="store_true", help="3,000 x 8, no UMAP: a smoke test")
    args = parser.parse_args()
    if args.tiny:
        args.rows, args.columns, args.skip_umap = 3000, 8, True
    folder = args.folder or Path(tempfile.mkdtemp(prefix="reducer-big-"))
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / f"{args.table}_{args.rows}x{args.columns}_{args.seed}.csv"
    generator = None
    if not csv.exists():
        generator = make_table(args.table, csv, args.rows, args.columns, args.seed)
    load = os.getloadavg()[0]
    result = {"rows": args.rows, "columns": args.columns, "table": args.table, "generator": generator,
              "csv_mb": round(csv.stat().st_size / 1e6, 1), "load_average_start": load}
    job = folder / "jobs" / "big.toml"
    job.parent.mkdir(exist_ok=True)
    job.write_text(f'[dataset]\nname = "csv"\npath = "{csv}"\nid = "id"\nlabel = "label"\n')
    shutil.rmtree(folder / "outputs", ignore_errors=True)
    print(f"[big] reducer run on {args.rows:,} x {args.columns}", file=sys.stderr, flush=True)
    wall, cpu, peak, code = timed_run([sys.executable, "-m", "reducer", "run", str(job), "--outputs",
                                       str(folder / "outputs"), "--models", str(folder / "Models")],
                                      folder / "reducer.log")
    if code != 0:
        raise SystemExit(f"reducer run exited {code}:\n{(folder / 'reducer.log').read_text()[-3000:]}")
    manifest = json.loads((folder / "outputs" / "big" / "manifest.json").read_text())
    result["reducer"] = {"wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "peak_rss_mib": round(peak),
                         "stages": {k: round(v, 1) for k, v in manifest["seconds"].items()},
                         "objective": manifest["job"]["model"]["objective"], "table": manifest["table"],
                         "graph": manifest["training"].get("graph"), "epochs": manifest["training"]["epochs"],
                         "fallback": manifest["training"].get("objective_fallback"),
                         "cost_per_100k_rows_cpu_s": round(cpu / args.rows * 1e5, 2)}
    estimate = [line for line in (folder / "reducer.log").read_text().splitlines() if "neighbour map: about" in line]
    result["reducer"]["estimate_line"] = estimate[-1].split("] ", 1)[-1] if estimate else None
    maps = {"reducer": folder / "outputs" / "big" / "embedding.csv"}
    if not args.skip_umap:
        print("[big] umap-learn on the same rows", file=sys.stderr, flush=True)
        script = folder / "umap_fit.py"
        script.write_text(UMAP_SCRIPT)
        wall, cpu, peak, code = timed_run([sys.executable, str(script), str(csv), str(folder / "umap.csv")],
                                          folder / "umap.log")
        if code != 0:
            raise SystemExit(f"umap-learn exited {code}:\n{(folder / 'umap.log').read_text()[-3000:]}")
        fit = re.search(r"fit_seconds=([\d.]+) umap=(\S+)", (folder / "umap.log").read_text())
        result["umap"] = {"wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "peak_rss_mib": round(peak),
                          "fit_seconds": float(fit.group(1)), "version": fit.group(2)}
        maps["umap"] = folder / "umap.csv"
    result["load_average_end"] = os.getloadavg()[0]

    import pandas as pd

    from reducer.quality import Reference

    x, labels, ids = zscored(csv, args.columns)
    reference = Reference(x, labels, dims=2)
    for name, path in maps.items():
        frame = pd.read_csv(path)
        coordinates = frame[[c for c in frame.columns if c.startswith("component_") or c in ("x", "y")]].to_numpy(
            dtype=np.float64)
        assert (frame.iloc[:, 0].astype(str).to_numpy() == ids.astype(str)).all(), f"{name}: rows out of order"
        scores = reference.scores(coordinates[reference.chosen])
        result[name].update(trustworthiness_5=round(scores["trustworthiness_5"], 4),
                            knn_accuracy=round(scores["knn_accuracy"], 4))
    result["pca"] = {k: round(reference.pca[k], 4) for k in ("trustworthiness_5", "knn_accuracy")}

    print(f"\n{args.rows:,} x {args.columns} ({args.table}, {result['csv_mb']} MB); load average "
          f"{load:.1f} -> {result['load_average_end']:.1f}, {os.cpu_count()} CPUs\n")
    print("| run | objective | wall s | CPU s | peak RSS MiB | trust. k=5 | kNN acc. |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name in maps:
        r = result[name]
        print(f"| {name} | {r.get('objective', 'UMAP ' + r.get('version', ''))} | {r['wall_seconds']:.1f} | "
              f"{r['cpu_seconds']:.1f} | {r['peak_rss_mib']:,} | {r['trustworthiness_5']:.4f} | "
              f"{r['knn_accuracy']:.4f} |")
    print(f"| PCA | - | | | | {result['pca']['trustworthiness_5']:.4f} | {result['pca']['knn_accuracy']:.4f} |")
    r = result["reducer"]
    print(f"\nreducer stages (s): {r['stages']}\ngraph: {r['graph']}\nestimate: {r['estimate_line']}")
    if "umap" in result:
        u = result["umap"]
        result["ratios"] = {"wall": round(r["wall_seconds"] / u["wall_seconds"], 3),
                            "cpu": round(r["cpu_seconds"] / u["cpu_seconds"], 3),
                            "trustworthiness_5": round(r["trustworthiness_5"] - u["trustworthiness_5"], 4),
                            "knn_accuracy": round(r["knn_accuracy"] - u["knn_accuracy"], 4)}
        print(f"reducer / umap-learn: wall {result['ratios']['wall']:.2f}x, CPU {result['ratios']['cpu']:.2f}x; "
              f"trustworthiness@5 {result['ratios']['trustworthiness_5']:+.4f}, kNN accuracy "
              f"{result['ratios']['knn_accuracy']:+.4f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if not args.folder:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
