"""Nearest-neighbour search for the neighbour objective's graph (issue 22): scikit-learn's exact
search against three approximate libraries on one table, each in a fresh process.

    python benchmarks/neighbors.py                          # 100,000 x 50, every method
    python benchmarks/neighbors.py --rows 20000 --methods exact hnswlib
    python benchmarks/neighbors.py --rows 1000000 --columns 100 --methods hnswlib --sample 1000
    python benchmarks/neighbors.py --tiny                   # a smoke test: 3,000 x 8, exact and reducer

The table: make_classification as `benchmarks/quality.py --large` makes it (10 classes, 2
clusters each, fixed seed), z-scored as a default job z-scores it, float32. For each method:
wall and CPU seconds of the search alone (index built and every row queried for its
n_neighbors = 10 nearest, itself included, as the default job asks), the peak RSS of its
process (VmHWM) and, in brackets, that peak less the RSS before the search (the library's
import and the index), and recall@10: the share of each sampled row's 9 nearest other rows (exact, brute force on
the sample) that the method found. `reducer` is reducer's own search (engine/neighbors.py's
`nearest`, whatever it chooses for this size). Prints a Markdown table; --json PATH writes it.
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

METHODS = ("exact", "reducer", "hnswlib", "faiss", "pynndescent")
K = 10  # n_neighbors, the row itself included


def make_table(rows, columns, seed=11):
    from sklearn.datasets import make_classification

    informative = max(5, columns * 2 // 5)
    x, _ = make_classification(n_samples=rows, n_features=columns, n_informative=informative,
                               n_redundant=columns // 5, n_classes=10, n_clusters_per_class=2, class_sep=2.0,
                               random_state=seed)
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


def search(method, x, threads):
    """indices (rows x K) of each row's K nearest rows, itself included where the method finds it."""
    if method == "exact":
        from sklearn.neighbors import NearestNeighbors

        return NearestNeighbors(n_neighbors=K).fit(x).kneighbors(x)[1]
    if method == "reducer":
        from reducer.engine.neighbors import nearest

        indices, _, _ = nearest(x, K - 1, seed=0)
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
    x = np.load(args.data)
    before = rss_now()
    started, cpu = time.time(), time.process_time()
    indices = search(args.one, x, args.threads)
    figures = {"seconds": time.time() - started, "cpu_seconds": time.process_time() - cpu,
               "rss_before": before, "peak_rss": peak_rss()}
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
        x = make_table(args.rows, args.columns)
        np.save(data, x)
        print(f"table {args.rows:,} x {args.columns} in {time.time() - t:.0f} s", file=sys.stderr, flush=True)
        sample = np.sort(np.random.default_rng(0).choice(args.rows, size=min(args.sample, args.rows), replace=False))
        results = []
        for method in args.methods:
            out = Path(folder) / f"{method}.npy"
            process = subprocess.Popen([sys.executable, __file__, "--one", method, "--data", str(data), "--out",
                                        str(out), "--threads", str(args.threads)], stdout=subprocess.PIPE)
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
    print(f"\n{args.rows:,} x {args.columns}, n_neighbors {K}, recall on {len(sample):,} rows, "
          f"{args.threads} query thread(s); load average {os.getloadavg()[0]:.1f}\n")
    print("| method | wall s | CPU s | peak RSS MiB (search) | recall@10 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in results:
        if r.get("failed"):
            print(f"| {r['method']} | failed | | | |")
            continue
        print(f"| {r['method']} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {r['peak_rss_mib']:,.0f} "
              f"({r['search_rss_mib']:,.0f}) | {r['recall_at_10']:.4f} |")
    if args.json:
        args.json.write_text(json.dumps({"rows": args.rows, "columns": args.columns, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
