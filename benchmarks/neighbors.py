"""Nearest-neighbour search for the neighbour objective's graph (issue 22): scikit-learn's exact
search against reducer's and three approximate libraries on one table, each in a fresh process.

    python benchmarks/neighbors.py                          # 100,000 x 50, every method
    python benchmarks/neighbors.py --methods exact reducer reducer-exact   # the graph stage against exact
    python benchmarks/neighbors.py --table clusters --columns 100 --methods exact reducer  # a second table
    python benchmarks/neighbors.py --rows 20000 --methods exact hnswlib
    python benchmarks/neighbors.py --rows 1000000 --columns 100 --methods hnswlib --sample 1000
    python benchmarks/neighbors.py --tiny                   # a smoke test: 3,000 x 8, exact and reducer

The table (--table): `classification`, make_classification as `benchmarks/quality.py --large`
makes it (10 classes, 2 clusters each, 2/5 of the columns informative, 1/5 redundant sums of
them, the rest noise; --seed, 11 by default); `clusters`, benchmarks/scale.py's kind (10
Gaussian clusters, centres uniform in [-4, 4], unit noise in every column); `blobs`,
make_blobs (10 centres, cluster_std 2); z-scored as a default job z-scores it, float32. For each method:
wall and CPU seconds of the search alone (index built and every row queried for its
n_neighbors = 10 nearest, itself included, as the default job asks), the peak RSS of its
process (VmHWM) and, in brackets, that peak less the RSS before the search (the library's
import and the index), and recall@10: the share of each sampled row's 9 nearest other rows (exact, brute force on
the sample) that the method found. `reducer` is reducer's own search (engine/neighbors.py's
`nearest`, whatever it chooses for this size), then its graph stage's fuzzy weights and union
(`knn_graph`), timed apart; `reducer-exact` the same graph stage on the exact search (the
graph stage before issue 22). The `graph` columns are search and fuzzy graph together, and
"x exact" is exact's CPU s over each row's (the search alone for the libraries, the whole graph
stage for reducer's). Prints a Markdown table; --json PATH writes it.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

METHODS = ("exact", "reducer", "reducer-exact", "hnswlib", "faiss", "pynndescent")
TABLES = ("classification", "clusters", "blobs")
K = 10  # n_neighbors, the row itself included


def make_table(rows, columns, seed=11, kind="classification"):
    if kind == "classification":
        from sklearn.datasets import make_classification

        informative = max(5, columns * 2 // 5)
        x, _ = make_classification(n_samples=rows, n_features=columns, n_informative=informative,
                                   n_redundant=columns // 5, n_classes=10, n_clusters_per_class=2, class_sep=2.0,
                                   random_state=seed)
    elif kind == "clusters":
        rng = np.random.default_rng(seed)
        centres = rng.uniform(-4, 4, size=(10, columns))
        x = centres[rng.integers(0, 10, rows)] + rng.normal(size=(rows, columns))
    else:
        from sklearn.datasets import make_blobs

        x, _ = make_blobs(n_samples=rows, n_features=columns, centers=10, cluster_std=2.0, random_state=seed)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return np.ascontiguousarray(x, dtype=np.float32)


def rss_now():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss():
    """This process's peak RSS (VmHWM): os.wait4's ru_maxrss of a child counts the parent's RSS at
    the fork, which here holds the table and the recall's scratch."""
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) * 1024 for line in handle if line.startswith("VmHWM:"))


def clock():
    """(wall, CPU) seconds of this process."""
    times = os.times()
    return time.time(), times.user + times.system


APPROXIMATE_ROWS = None  # --approximate-rows: reducer's switch, in the child


def search(method, x, threads, timings):
    """indices (rows x K) of each row's K nearest rows, itself included where the method finds it;
    reducer's methods add their fuzzy graph's seconds to `timings`."""
    if method == "exact":
        from sklearn.neighbors import NearestNeighbors

        return NearestNeighbors(n_neighbors=K).fit(x).kneighbors(x)[1]
    if method in ("reducer", "reducer-exact"):
        from reducer.engine.neighbors import knn_graph, nearest

        approximate_rows = len(x) if method == "reducer-exact" else APPROXIMATE_ROWS
        indices, distances, found_by = nearest(x, K - 1, seed=0, **(
            {"approximate_rows": approximate_rows} if approximate_rows is not None else {}))
        search_done = clock()
        knn_graph(indices, distances, found_by)
        graph_done = clock()
        timings["fuzzy_seconds"] = graph_done[0] - search_done[0]
        timings["fuzzy_cpu_seconds"] = graph_done[1] - search_done[1]
        timings["found_by"] = found_by
        return np.concatenate([np.arange(len(x))[:, None], indices], axis=1)
    if method == "hnswlib":
        import hnswlib

        index = hnswlib.Index(space="l2", dim=x.shape[1])
        index.init_index(max_elements=len(x), ef_construction=100, M=16, random_seed=0)
        index.set_num_threads(1)
        index.add_items(x, np.arange(len(x)))
        index.set_ef(50)
        index.set_num_threads(threads)
        return index.knn_query(x, k=K)[0]
    if method == "faiss":
        import faiss

        faiss.omp_set_num_threads(1)
        index = faiss.IndexHNSWFlat(x.shape[1], 16)
        index.hnsw.efConstruction = 100
        index.add(x)
        index.hnsw.efSearch = 50
        faiss.omp_set_num_threads(threads)
        return index.search(x, K)[1]
    if method == "pynndescent":
        import pynndescent

        return pynndescent.NNDescent(x, n_neighbors=K, random_state=0, n_jobs=1).neighbor_graph[0]
    raise ValueError(method)


def one(args):
    """Child process: load the table, search, write the indices; print figures as JSON."""
    global APPROXIMATE_ROWS
    APPROXIMATE_ROWS = args.approximate_rows
    x = np.load(args.data)
    # Imports first, outside the figures (a job counts them apart: its `graph_import` seconds).
    if args.one.startswith("reducer"):  # first, as a job does: it sets OpenMP's waiting before faiss starts it
        import reducer.engine.neighbors  # noqa: F401

        import faiss  # noqa: F401
        import scipy.sparse  # noqa: F401
    if args.one == "exact":
        import sklearn.neighbors  # noqa: F401
    before = rss_now()
    started, cpu = clock()
    timings = {}
    indices = search(args.one, x, args.threads, timings)
    ended, ended_cpu = clock()
    figures = {"seconds": ended - started - timings.get("fuzzy_seconds", 0.0),
               "cpu_seconds": ended_cpu - cpu - timings.get("fuzzy_cpu_seconds", 0.0),
               "rss_before": before, "peak_rss": peak_rss(), **timings}
    np.save(args.out, np.asarray(indices, dtype=np.int64))
    print(json.dumps(figures))


def recall(indices, x, sample):
    """Mean share of each sampled row's K - 1 nearest other rows (exact) found in its list."""
    found = 0
    for start in range(0, len(sample), 256):
        rows = sample[start:start + 256]
        d2 = (x[rows] ** 2).sum(1)[:, None] - 2 * x[rows] @ x.T + (x ** 2).sum(1)[None, :]
        d2[np.arange(len(rows)), rows] = np.inf
        truth = np.argpartition(d2, K - 1, axis=1)[:, :K - 1]
        for row, true in zip(rows, truth):
            found += len(np.intersect1d(true, indices[row]))
    return found / (len(sample) * (K - 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--columns", type=int, default=50)
    parser.add_argument("--table", choices=TABLES, default="classification")
    parser.add_argument("--seed", type=int, default=11, help="the table generator's seed")
    parser.add_argument("--approximate-rows", type=int,
                        help="reducer's switch to approximate search (default: its own, 20,000 rows)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--sample", type=int, default=2000, help="rows whose recall is measured")
    parser.add_argument("--threads", type=int, default=1, help="query threads (building uses one)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--tiny", action="store_true", help="3,000 x 8, exact and reducer only: a smoke test")
    parser.add_argument("--one", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return one(args)
    if args.tiny:
        args.rows, args.columns, args.methods, args.sample = 3000, 8, ["exact", "reducer"], 300
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "x.npy"
        t = time.time()
        x = make_table(args.rows, args.columns, args.seed, args.table)
        np.save(data, x)
        print(f"{args.table} table {args.rows:,} x {args.columns} (seed {args.seed}) in {time.time() - t:.0f} s",
              file=sys.stderr, flush=True)
        sample = np.sort(np.random.default_rng(0).choice(args.rows, size=min(args.sample, args.rows), replace=False))
        results = []
        for method in args.methods:
            out = Path(folder) / f"{method}.npy"
            switch = [] if args.approximate_rows is None else ["--approximate-rows", str(args.approximate_rows)]
            process = subprocess.Popen([sys.executable, __file__, "--one", method, "--data", str(data), "--out",
                                        str(out), "--threads", str(args.threads), *switch], stdout=subprocess.PIPE)
            text = process.stdout.read()
            _, status, _ = os.wait4(process.pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                results.append({"method": method, "failed": True})
                continue
            figures = json.loads(text)
            peak = figures.pop("peak_rss")
            figures.update(method=method, peak_rss_mib=peak / 2**20,
                           search_rss_mib=(peak - figures.pop("rss_before")) / 2**20,
                           recall_at_10=recall(np.load(out), x, sample))
            results.append(figures)
            print(json.dumps(figures), file=sys.stderr, flush=True)
    print(f"\n{args.table} {args.rows:,} x {args.columns} (seed {args.seed}), n_neighbors {K}, recall on "
          f"{len(sample):,} rows, {args.threads} query thread(s) for the libraries; load average "
          f"{' / '.join(f'{v:.1f}' for v in os.getloadavg())} at the end\n")
    exact_cpu = next((r["cpu_seconds"] for r in results if r["method"] == "exact" and not r.get("failed")), None)
    print("| method | search: wall s | CPU s | graph: wall s | CPU s | x exact (CPU) | peak RSS MiB (search) "
          "| recall@10 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        if r.get("failed"):
            print(f"| {r['method']} | failed | | | | | | |")
            continue
        wall = r["seconds"] + r.get("fuzzy_seconds", 0.0)
        cpu = r["cpu_seconds"] + r.get("fuzzy_cpu_seconds", 0.0)
        graph = f"{wall:.1f} | {cpu:.1f}" if "fuzzy_seconds" in r else " | "
        ratio = f"{exact_cpu / cpu:.1f}" if exact_cpu and cpu else ""
        print(f"| {r['method']} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {graph} | {ratio} "
              f"| {r['peak_rss_mib']:,.0f} ({r['search_rss_mib']:,.0f}) | {r['recall_at_10']:.4f} |")
    if args.json:
        args.json.write_text(json.dumps({"table": args.table, "seed": args.seed, "rows": args.rows,
                                         "columns": args.columns, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
