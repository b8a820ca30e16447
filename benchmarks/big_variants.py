"""Training variants of the neighbour map on one big table (issue 22): the default job's settings
with a few changed, one after another in one process, each trained on the same graph and scored
on the same fixed 4,000-row sample.

    python benchmarks/big_variants.py '{}' '{"learning_rate": 0.02}'     # 100,000 x 50 classification
    python benchmarks/big_variants.py --table clusters --rows 100000 --columns 100 '{"epochs": 20}'
    python benchmarks/big_variants.py --tiny                             # a smoke test: 3,000 x 8

Each argument is a JSON object of `[model]` / `[training]` keys (`learning_rate`, `epochs`,
`hidden`, `reconstruction_weight`, `batch_size`, `negative_samples`, ...) over
`defaults.neighbor_settings` for the table's size, or one of engine/neighbor_train.py's module
constants in capitals (`REPULSION_PER_WEIGHT`, `MAP_RADIUS`, `BETA_1`, `STEPS_PER_CALL`,
`REPULSION_FLOOR`, `ENCODE_ROWS`) or engine/init.py's (`SPECTRAL_ROWS`, `PRETRAIN_STEPS`, ...), set for that
variant only; a variant naming another `n_neighbors`, or `"exact_graph": true` (scikit-learn's
exact search whatever the size), trains on a graph of its own, built once per run with the same
seed. What a `reducer run` of a default job does around the training is left out on purpose
(the CSV, the job, the plot): the table is generated as big.py generates it, z-scored, its
graph built once (engine/neighbors.fuzzy_graph, n_neighbors 10, seed 1) and kept in --cache,
the encoder built and trained by engine/model.build and engine/neighbor_train.train (its start
layout as a cold job's, engine/init.py's constants settable like the others) with seed 1
(--seed: another training seed, the graph's stays 1), then scored by quality.Reference
(trustworthiness@5, kNN accuracy). Prints a Markdown table with the training's wall and CPU
seconds (this process, so compare within a run) and the map's root mean square radius. --umap
adds umap-learn on the same rows.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
SEED = 1
CONSTANTS = ("REPULSION_PER_WEIGHT", "MAP_RADIUS", "BETA_1", "RADIUS_WEIGHT", "STEPS_PER_CALL", "REPULSION_FLOOR",
             "ENCODE_ROWS")
INIT_CONSTANTS = ("SPECTRAL_ROWS", "PRETRAIN_ROWS", "PRETRAIN_STEPS", "START_RADIUS")  # engine/init.py's


def table(kind, rows, columns):
    """(z-scored float32 rows, labels), generated as big.py's tables are."""
    if kind == "classification":
        from sklearn.datasets import make_classification

        informative = max(5, columns * 2 // 5)
        x, y = make_classification(n_samples=rows, n_features=columns, n_informative=informative,
                                   n_redundant=columns // 5, n_classes=10, n_clusters_per_class=2, class_sep=2.0,
                                   random_state=11)
        x = np.round(x, 4)  # the CSV's four decimals
    else:
        import pandas as pd
        from scale import generate

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "clusters.csv"
            generate(path, rows, columns)
            frame = pd.read_csv(path)
        x = frame[[f"f{k + 1}" for k in range(columns)]].to_numpy(np.float64)
        y = frame["label"].to_numpy()
    return ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32), y


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="*", default=["{}"], help="JSON objects of settings ('{}': the defaults)")
    parser.add_argument("--table", choices=("classification", "clusters"), default="classification")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--columns", type=int, default=50)
    parser.add_argument("--cache", type=Path, help="folder keeping the table and its graph between runs")
    parser.add_argument("--seed", type=int, default=SEED, help="the training's seed (the graph keeps seed 1)")
    parser.add_argument("--umap", action="store_true", help="also umap-learn (random_state=0) on the same rows")
    parser.add_argument("--tiny", action="store_true", help="3,000 x 8, two variants of 2 epochs: a smoke test")
    args = parser.parse_args()
    if args.tiny:
        args.rows, args.columns = 3000, 8
        args.variants = ['{"epochs": 2}', '{"epochs": 2, "REPULSION_PER_WEIGHT": 5.0}']

    from reducer.engine.tf_setup import configure

    configure()
    from reducer.config import ModelConfig, TrainingConfig
    from reducer.defaults import neighbor_settings
    from reducer.engine import model as model_lib
    from reducer.engine import init, neighbor_train, neighbors
    from reducer.quality import Reference

    name = f"{args.table}_{args.rows}x{args.columns}"
    cached = args.cache / f"{name}.npz" if args.cache else None
    started = time.time()
    if cached and cached.exists():
        saved = np.load(cached, allow_pickle=True)
        x, y = saved["x"], saved["y"]
        graph = neighbors.Graph(saved["indptr"], saved["indices"], saved["weights"], int(saved["k"]), str(saved["method"]))
    else:
        x, y = table(args.table, args.rows, args.columns)
        graph = neighbors.fuzzy_graph(x, neighbor_settings(args.rows, args.columns)["model"]["n_neighbors"], seed=SEED)
        if cached:
            cached.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cached, x=x, y=y, indptr=graph.indptr, indices=graph.indices, weights=graph.weights, k=graph.k,
                     method=graph.method)
    print(f"[variants] table and graph in {time.time() - started:.1f} s: {graph.details()}", file=sys.stderr, flush=True)
    reference = Reference(x.astype(np.float64), y, dims=2)
    default_graph = graph
    # A variant naming another n_neighbors, or "exact_graph": true (exact search), gets its own graph.
    graphs = {(graph.k + 1, graph.method == "exact"): graph}
    defaults = {constant: getattr(neighbor_train, constant) for constant in CONSTANTS}
    init_defaults = {constant: getattr(init, constant) for constant in INIT_CONSTANTS}
    results = []
    for text in args.variants:
        variant = json.loads(text)
        settings = neighbor_settings(args.rows, args.columns)
        model, training = dict(settings["model"]), dict(settings["training"])
        for key, value in defaults.items():
            setattr(neighbor_train, key, variant.get(key, value))
        for key, value in init_defaults.items():
            setattr(init, key, variant.get(key, value))
        for key, value in variant.items():
            if key not in CONSTANTS + INIT_CONSTANTS + ("exact_graph",):
                (model if key in model else training)[key] = value
        model_config = ModelConfig(**{**model, "hidden": tuple(model["hidden"])})
        training_config = TrainingConfig(**training, seed=args.seed)
        which = (model_config.n_neighbors, bool(variant.get("exact_graph")))
        if which not in graphs:
            graphs[which] = neighbors.fuzzy_graph(x, model_config.n_neighbors, seed=SEED,
                                                  approximate_rows=len(x) if which[1] else neighbors.APPROXIMATE_ROWS)
        graph = graphs[which]
        encoder, decoder, _ = model_lib.build(args.columns, model_config, args.seed, "linear")
        wall, cpu = time.time(), time.process_time()
        history = neighbor_train.train(encoder, decoder, x, graph, model_config, training_config, start_layout=True)
        wall, cpu = time.time() - wall, time.process_time() - cpu
        print(f"[variants] {text}: start {history.start}", file=sys.stderr, flush=True)
        codes = model_lib.apply(encoder, x)
        scores = reference.scores(codes[reference.chosen].astype(np.float64))
        results.append((text, wall, cpu, scores, float(np.sqrt((codes ** 2).sum(axis=1).mean()))))
        print(f"[variants] {text}: {scores['trustworthiness_5']:.4f} / {scores['knn_accuracy']:.4f}", file=sys.stderr,
              flush=True)
    for key, value in defaults.items():
        setattr(neighbor_train, key, value)
    for key, value in init_defaults.items():
        setattr(init, key, value)
    if args.umap:
        import umap

        wall, cpu = time.time(), time.process_time()
        codes = umap.UMAP(random_state=0).fit_transform(x)
        wall, cpu = time.time() - wall, time.process_time() - cpu
        scores = reference.scores(codes[reference.chosen].astype(np.float64))
        centred = codes - codes.mean(axis=0)
        results.append((f"umap-learn {umap.__version__}", wall, cpu, scores,
                        float(np.sqrt((centred ** 2).sum(axis=1).mean()))))
    print(f"\n{args.rows:,} x {args.columns} ({args.table}), graph {default_graph.method}, "
          f"{default_graph.edges:,} edges (n_neighbors {default_graph.k + 1}); "
          f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs\n")
    print("| variant | train wall s | train CPU s | trust. k=5 | kNN acc. | map RMS radius |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for text, wall, cpu, scores, radius in results:
        print(f"| `{text}` | {wall:.1f} | {cpu:.1f} | {scores['trustworthiness_5']:.4f} | "
              f"{scores['knn_accuracy']:.4f} | {radius:.2f} |")
    print(f"| PCA | | | {reference.pca['trustworthiness_5']:.4f} | {reference.pca['knn_accuracy']:.4f} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
