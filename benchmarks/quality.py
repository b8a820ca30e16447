"""Map quality: one table for UCI digits and iris. Rows: PCA, the seed preset (jobs/digits.toml,
jobs/iris.toml), the neighbour preset (jobs/digits_neighbors.toml, jobs/iris_neighbors.toml)
for each seed asked for, and umap-learn's UMAP and scikit-learn's t-SNE when installed
(`pip install -e '.[bench]'`; t-SNE comes with scikit-learn).

    python benchmarks/quality.py                  # seeds 1 2 3 for the neighbour preset
    python benchmarks/quality.py --seeds 1 --skip-seed-preset
    python benchmarks/quality.py --parametric     # also umap-learn's ParametricUMAP (slow)
    python benchmarks/quality.py --tiny           # a smoke test: iris, seed 1, 20 epochs, no t-SNE/UMAP

Columns: train seconds (reducer presets: the manifest's graph + train + encode, XLA compilation
included, TensorFlow's import not; others: the fit), the CPU seconds of the same stretch
where it is measured here, trustworthiness at k=5 and k=12 and kNN accuracy (k=10,
stratified 10-fold, fixed seed) as in every run's manifest (reducer/quality.py). The presets
run through the real pipeline (reducer.run.pipeline.run_job) into a temporary folder. The
neighbour preset's seed-1 run is repeated to check that it is bit-for-bit repeatable.
"""

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reducer import quality  # noqa: E402
from reducer.publish import Destination  # noqa: E402
from reducer.run.pipeline import load_table, run_job  # noqa: E402
from reducer.run.runner import plan  # noqa: E402

DATASETS = {"digits": ("digits.toml", "digits_neighbors.toml"), "iris": ("iris.toml", "iris_neighbors.toml")}


@dataclasses.dataclass
class Row:
    dataset: str
    method: str
    seed: str
    seconds: float
    cpu: object  # float or None
    scores: dict

    def line(self):
        cpu = "" if self.cpu is None else f"{self.cpu:.1f}"
        s = self.scores
        knn = "" if s["knn_accuracy"] is None else f"{s['knn_accuracy']:.4f}"
        return (f"| {self.dataset} | {self.method} | {self.seed} | {self.seconds:.2f} | {cpu} | "
                f"{s['trustworthiness_5']:.4f} | {s['trustworthiness_12']:.4f} | {knn} |")


def ready_job(file_name):
    found = plan([REPO / "jobs" / file_name])
    if found.failed:
        raise SystemExit(f"{file_name}: {found.failed[0].reason}")
    return found.ready[0]


TRAIN_STAGES = ("graph", "train", "encode")  # the preset's "train s": kNN graph, model, training, encoding
OTHER_STAGES = ("load", "tensorflow_import", "graph_import", "quality", "save", "plot")


def run_preset(job, dataset, source, destination, seed, label, epochs=None):
    """(manifest, train seconds, CPU seconds of that stretch, embedding.csv bytes) of one preset run."""
    training = dataclasses.replace(job.training, seed=seed, **({"epochs": epochs} if epochs else {}))
    job = dataclasses.replace(job, name=f"{job.name}_{label}_seed{seed}", training=training)
    cpu = time.process_time()
    manifest = run_job(job, dataset, source, destination)
    cpu = time.process_time() - cpu
    # The run's CPU time less its stages other than graph + training (load, imports, metrics, files).
    others = sum(v for k, v in manifest["seconds"].items() if k in OTHER_STAGES)
    seconds = sum(v for k, v in manifest["seconds"].items() if k in TRAIN_STAGES)
    embedding = (destination.job_folder(job.name) / "embedding.csv").read_bytes()
    return manifest, seconds, max(cpu - others, 0.0), embedding


def timed(fit):
    wall, cpu = time.time(), time.process_time()
    result = fit()
    return result, time.time() - wall, time.process_time() - cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--epochs", type=int, help="override the presets' epochs (a quick look; not the presets)")
    parser.add_argument("--skip-seed-preset", action="store_true", help="leave out the slow seed preset")
    parser.add_argument("--skip-others", action="store_true", help="leave out t-SNE and umap-learn")
    parser.add_argument("--no-repeat", action="store_true",
                        help="do not run the first neighbour preset twice to compare its embedding.csv")
    parser.add_argument("--parametric", action="store_true", help="add umap-learn's ParametricUMAP")
    parser.add_argument("--tiny", action="store_true",
                        help="a smoke test: --datasets iris --seeds 1 --epochs 20 --skip-others --no-repeat")
    args = parser.parse_args(argv)
    if args.tiny:
        args.datasets, args.seeds, args.epochs, args.skip_others, args.no_repeat = ["iris"], [1], 20, True, True

    import sklearn.decomposition  # noqa: F401  (imports are not fit time)
    import sklearn.manifold  # noqa: F401

    rows, notes = [], []
    if args.epochs:
        notes.append(f"presets run with {args.epochs} epochs instead of their own (--epochs): not their numbers")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        destination = Destination(Path(folder) / "outputs", Path(folder) / "Models")
        for name in args.datasets:
            seed_file, neighbour_file = DATASETS[name]
            job, dataset, source = ready_job(neighbour_file)
            table = load_table(job, dataset, source)[0]
            x, labels, dims = table.x, table.labels, job.model.latent
            # The metrics every manifest records, on the same fixed-seed sample (all rows here).
            reference = quality.Reference(x, labels, dims)

            def scores(coordinates):
                return reference.evaluate(coordinates)

            (coordinates, _), seconds, cpu = timed(lambda: quality.pca(x, dims))
            rows.append(Row(name, "PCA", "-", seconds, cpu, scores(coordinates)))

            if not args.skip_seed_preset:
                seed_job, seed_dataset, seed_source = ready_job(seed_file)
                manifest, seconds, cpu, _ = run_preset(seed_job, seed_dataset, seed_source, destination,
                                                       seed_job.training.seed, "bench", args.epochs)
                rows.append(Row(name, f"seed preset ({seed_file})", str(seed_job.training.seed),
                                seconds, cpu, manifest["quality"]))

            first = None
            for seed in args.seeds:
                manifest, seconds, cpu, embedding = run_preset(job, dataset, source, destination, seed, "bench",
                                                               args.epochs)
                first = first or (seed, embedding)
                rows.append(Row(name, f"neighbour preset ({neighbour_file})", str(seed),
                                seconds, cpu, manifest["quality"]))
            if not args.no_repeat:
                seed, embedding = first
                repeat = run_preset(job, dataset, source, destination, seed, "again", args.epochs)[3]
                notes.append(f"{name}: neighbour preset seed {seed} run twice: embedding.csv "
                             f"{'identical' if repeat == embedding else 'DIFFERENT'}")
            if args.skip_others:
                continue

            from sklearn.manifold import TSNE

            coordinates, seconds, cpu = timed(lambda: TSNE(n_components=dims, random_state=0).fit_transform(x))
            rows.append(Row(name, "scikit-learn t-SNE", "0", seconds, cpu, scores(coordinates)))

            try:
                import umap
            except ImportError:
                notes.append("umap-learn: not installed (pip install -e '.[bench]')")
            else:
                if name == "digits":  # numba compiles UMAP on its first fit: time a warm one
                    _, warmup, _ = timed(lambda: umap.UMAP(random_state=0).fit_transform(x[:300]))
                    notes.append(f"umap-learn: first (warm-up) fit on 300 rows took {warmup:.1f} s of "
                                 "numba compilation; the UMAP rows are warm fits")
                coordinates, seconds, cpu = timed(
                    lambda: umap.UMAP(n_components=dims, random_state=0).fit_transform(x))
                rows.append(Row(name, f"umap-learn UMAP {umap.__version__}", "0", seconds, cpu,
                                scores(coordinates)))
                if args.parametric:
                    from umap.parametric_umap import ParametricUMAP

                    parametric = ParametricUMAP(n_components=dims, random_state=0, verbose=False,
                                                keras_fit_kwargs={"verbose": 0})
                    coordinates, seconds, cpu = timed(lambda: parametric.fit_transform(x))
                    rows.append(Row(name, "umap-learn ParametricUMAP", "0", seconds, cpu, scores(coordinates)))

    print("| data | method | seed | train s | CPU s | trust. k=5 | trust. k=12 | kNN acc. |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(row.line())
    print()
    for note in notes:
        print(f"- {note}")
    print(f"- load average (1 min) at start {load_before:.1f}, at end {os.getloadavg()[0]:.1f}; "
          f"{os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
