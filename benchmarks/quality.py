"""Map quality: one table for UCI digits and iris. Rows: PCA, the seed preset (jobs/digits.toml,
jobs/iris.toml), the neighbour preset (jobs/digits_neighbors.toml, jobs/iris_neighbors.toml)
for each seed asked for, and umap-learn's UMAP and scikit-learn's t-SNE when installed
(`pip install -e '.[bench]'`; t-SNE comes with scikit-learn).

    python benchmarks/quality.py                  # seeds 1 2 3 for the neighbour preset
    python benchmarks/quality.py --seeds 1 --skip-seed-preset
    python benchmarks/quality.py --parametric     # also umap-learn's ParametricUMAP (slow)
    python benchmarks/quality.py --tiny           # a smoke test: iris, seed 1, 20 epochs, no t-SNE/UMAP
    python benchmarks/quality.py --defaults       # issue 14: reducer's default settings (reducer/defaults.py)
                                                  # against the seed, PCA, UMAP and t-SNE on every table
    python benchmarks/quality.py --defaults --tables iris wine digits breast_cancer --time

Columns: train seconds (reducer presets: the manifest's graph + train + encode, XLA compilation
included, TensorFlow's import not; others: the fit), the CPU seconds of the same stretch
where it is measured here, trustworthiness at k=5 and k=12 and kNN accuracy (k=10,
stratified 10-fold, fixed seed) as in every run's manifest (reducer/quality.py). The presets
run through the real pipeline (reducer.run.pipeline.run_job) into a temporary folder. The
neighbour preset's seed-1 run is repeated to check that it is bit-for-bit repeatable.
"""

import argparse
import dataclasses
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reducer import quality  # noqa: E402
from reducer.defaults import DEFAULT_NORMALIZE, neighbor_settings  # noqa: E402
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


def fresh(destination, label):
    """A Destination of its own for one run: nothing published before (no skipped or warm-started run)."""
    root = Path(destination.outputs_root).parent / label
    return Destination(root / "outputs", root / "Models")


def run_preset(job, dataset, source, destination, seed, label, epochs=None):
    """(manifest, train seconds, CPU seconds of that stretch, embedding.csv bytes) of one preset run."""
    training = dataclasses.replace(job.training, seed=seed, **({"epochs": epochs} if epochs else {}))
    job = dataclasses.replace(job, name=f"{job.name}_{label}_seed{seed}", training=training)
    destination = fresh(destination, job.name)
    cpu = time.process_time()
    manifest = run_job(job, dataset, source, destination)
    manifest = getattr(manifest, "manifest", manifest)  # an Outcome (status, manifest), or the manifest
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


# --defaults (issue 14): reducer's default map (reducer/defaults.py, settings from the table's size)
# against the seed's reconstruction job, PCA, UMAP and t-SNE, every map scored in the default job's
# own normalised space (the manifest's metrics, one quality.Reference per table).
SHIPPED = {"iris": "iris.toml", "wine": "csv_example.toml", "digits": "digits.toml"}
UNSEEN = ("breast_cancer",)  # scikit-learn's bundled copy, written to a CSV: kept out of the tuning
TABLES = (*SHIPPED, *UNSEEN)


def unseen_job(name, folder):
    """A job file for an unseen table (no [model]/[training]: the reconstruction defaults)."""
    import numpy as np
    import pandas as pd
    from sklearn import datasets

    if name != "breast_cancer":
        raise SystemExit(f"unknown table {name}")
    data = datasets.load_breast_cancer()
    frame = pd.DataFrame(data.data, columns=[c.replace(" ", "_") for c in data.feature_names])
    frame.insert(0, "sample_id", np.arange(len(frame)))
    frame["diagnosis"] = np.asarray(data.target_names)[data.target]
    csv = Path(folder) / f"{name}.csv"
    frame.to_csv(csv, index=False)
    job = Path(folder) / f"{name}.toml"
    job.write_text(f'[dataset]\nname = "csv"\npath = "{csv.name}"\nid = "sample_id"\nlabel = "diagnosis"\n')
    return job


def ready_path(path):
    found = plan([Path(path)])
    if found.failed:
        raise SystemExit(f"{path}: {found.failed[0].reason}")
    return found.ready[0]


def default_job(job, dataset, rows, columns, seed, epochs=None):
    """`job` with reducer's default settings for a table of rows x columns (reducer/defaults.py)."""
    settings = neighbor_settings(rows, columns)
    model = {**settings["model"], "hidden": tuple(settings["model"]["hidden"])}
    training = {**settings["training"], "seed": seed, **({"epochs": epochs} if epochs else {})}
    # The table as a new user's job names it: no normalisation of its own (csv_example.toml's
    # explicit "minmax" is the seed job's), so the default's DEFAULT_NORMALIZE applies.
    options = {k: v for k, v in job.dataset_options.items() if k != "normalize"}
    if DEFAULT_NORMALIZE and isinstance(dataset.normalize, str):
        options["normalize"] = DEFAULT_NORMALIZE  # a dataset's fixed (offset, scale) is kept
    return dataclasses.replace(job, dataset_options=options,
                               model=dataclasses.replace(job.model, **model),
                               training=dataclasses.replace(job.training, **training)), settings


def embedding_of(destination, name):
    import numpy as np

    path = destination.job_folder(name) / "embedding.csv"
    import pandas as pd

    frame = pd.read_csv(path)
    return np.asarray(frame[[c for c in frame.columns if c.startswith("component_")]], dtype=np.float64)


def run_and_score(job, dataset, source, destination, reference, label):
    """(scores on the common reference, train seconds, the manifest) of one pipeline run."""
    job = dataclasses.replace(job, name=f"{job.name}_{label}")
    destination = fresh(destination, job.name)
    result = run_job(job, dataset, source, destination)
    manifest = getattr(result, "manifest", result)
    seconds = sum(v for k, v in manifest["seconds"].items() if k in TRAIN_STAGES)
    return reference.scores(embedding_of(destination, job.name)), seconds, manifest


def end_to_end(job_files, rounds, folder):
    """Median wall seconds of `reducer run JOB` (a fresh process and outputs folder each time),
    the jobs taking turns, for each job file."""
    walls = {job: [] for job in job_files}
    for r in range(rounds):
        for job in job_files:
            out = Path(folder) / f"e2e_{r}_{Path(job).stem}"
            started = time.time()
            result = subprocess.run([sys.executable, "-m", "reducer", "run", str(job),
                                     "--outputs", str(out / "outputs"), "--models", str(out / "Models")],
                                    cwd=REPO, capture_output=True, text=True)
            walls[job].append(time.time() - started)
            if result.returncode != 0:
                raise SystemExit(f"reducer run {job} exited {result.returncode}: {result.stderr[-2000:]}")
    return {job: statistics.median(values) for job, values in walls.items()}, walls


def toml_job(path, dataset_lines, settings, seed):
    def value(v):
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(map(str, v)) + "]"
        return repr(v)

    lines = [f"name = \"{Path(path).stem}\"", "[dataset]", *dataset_lines, "[model]"]
    lines += [f"{k} = {value(v)}" for k, v in settings["model"].items()]
    lines += ["[training]"] + [f"{k} = {value(v)}" for k, v in {**settings["training"], "seed": seed}.items()]
    Path(path).write_text("\n".join(lines) + "\n")
    return path


def compare_defaults(args):
    from sklearn.manifold import TSNE

    try:
        import umap
    except ImportError:
        umap = None
    rows_out, notes, verdicts = [], [], []
    if args.epochs:
        notes.append(f"reducer runs with {args.epochs} epochs instead of their own (--epochs): not their numbers")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        destination = Destination(Path(folder) / "runs" / "outputs", Path(folder) / "runs" / "Models")
        for name in args.tables:
            seed_path = REPO / "jobs" / SHIPPED[name] if name in SHIPPED else unseen_job(name, folder)
            seed_job, dataset, source = ready_path(seed_path)
            table = load_table(seed_job, dataset, source)[0]
            rows, columns = table.x.shape
            job, settings = default_job(seed_job, dataset, rows, columns, 1, args.epochs)
            table = load_table(job, dataset, source)[0]  # the default job's normalisation
            x, labels, dims = table.x, table.labels, job.model.latent
            reference = quality.Reference(x, labels, dims)
            normalize = job.dataset_options.get("normalize", "the dataset's")
            notes.append(f"{name}: {rows} x {columns}, normalise {normalize}; defaults {settings}")
            found = {}

            def add(method, seed, seconds, cpu, scores):
                rows_out.append(Row(name, method, str(seed), seconds, cpu, scores))
                found.setdefault(method, []).append(scores)

            add("PCA", "-", 0.0, None, dict(reference.pca))
            for seed in args.seeds:
                job, _ = default_job(seed_job, dataset, rows, columns, seed, args.epochs)
                scores, seconds, _ = run_and_score(job, dataset, source, destination, reference, f"default{seed}")
                add("reducer default", seed, seconds, None, scores)
            if not args.skip_seed_preset:
                scores, seconds, _ = run_and_score(seed_job, dataset, source, destination, reference, "seed")
                add(f"reducer seed ({Path(seed_path).name})", seed_job.training.seed, seconds, None, scores)
            if not args.skip_others and umap is not None:
                if not notes or "warm-up" not in " ".join(notes):
                    _, warmup, _ = timed(lambda: umap.UMAP(random_state=0).fit_transform(x[:300]))
                    notes.append(f"umap-learn: a warm-up fit on 300 rows took {warmup:.1f} s (numba compilation)")
                for seed in args.seeds:
                    coordinates, seconds, cpu = timed(
                        lambda: umap.UMAP(n_components=dims, random_state=seed).fit_transform(x))
                    add(f"UMAP {umap.__version__}", seed, seconds, cpu, reference.scores(coordinates))
            elif umap is None:
                notes.append("umap-learn: not installed (pip install -e '.[bench]')")
            if not args.skip_others:
                coordinates, seconds, cpu = timed(
                    lambda: TSNE(n_components=dims, random_state=args.seeds[0]).fit_transform(x))
                add("t-SNE (scikit-learn)", args.seeds[0], seconds, cpu, reference.scores(coordinates))
            verdicts.append(verdict(name, found, umap))

        if args.time:
            seed = args.seeds[0]
            seed_job, dataset, source = ready_job("digits.toml")
            table = load_table(seed_job, dataset, source)[0]
            settings = neighbor_settings(*table.x.shape)
            default_file = toml_job(Path(folder) / "digits_default.toml",
                                    ['name = "uci_digits"', f'path = "{REPO / "Data" / "digits_uci_test_1797.txt"}"'],
                                    settings, seed)
            medians, walls = end_to_end([REPO / "jobs" / "digits.toml", default_file], args.time_rounds, folder)
            seed_wall, default_wall = medians[REPO / "jobs" / "digits.toml"], medians[default_file]
            notes.append(f"end to end, `reducer run` in a fresh process and outputs folder, {args.time_rounds} "
                         f"rounds taking turns: jobs/digits.toml (seed) median {seed_wall:.1f} s "
                         f"({', '.join(f'{w:.1f}' for w in walls[REPO / 'jobs' / 'digits.toml'])}); digits with "
                         f"the defaults median {default_wall:.1f} s "
                         f"({', '.join(f'{w:.1f}' for w in walls[default_file])})"
                         f": **{default_wall / seed_wall:.2f}x** the seed's (goal: at most 1.3x)")

    print(f"Measured {datetime.date.today().isoformat()}; `python benchmarks/quality.py {' '.join(sys.argv[1:])}`")
    print()
    print("| data | method | seed | train s | CPU s | trust. k=5 | trust. k=12 | kNN acc. |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows_out:
        print(row.line())
    print()
    for line in verdicts:
        print(f"- {line}")
    for note in notes:
        print(f"- {note}")
    print(f"- load average (1 min) at start {load_before:.1f}, at end {os.getloadavg()[0]:.1f}; "
          f"{os.cpu_count()} CPUs")


def verdict(name, found, umap):
    """One line: the defaults' worst seed against the goals of issue 14."""
    default = found.get("reducer default", [])
    if not default:
        return f"{name}: no reducer default runs"
    umap_rows = next((v for k, v in found.items() if k.startswith("UMAP")), [])

    def mean(rows, key):
        values = [r[key] for r in rows if r[key] is not None]
        return sum(values) / len(values) if values else None

    pca = found["PCA"][0]
    parts = []
    for key, slack, floor in (("trustworthiness_5", 0.005, 0.985), ("knn_accuracy", 0.015, 0.985)):
        if pca[key] is None:
            continue
        bar = max(pca[key], mean(umap_rows, key) or 0.0) - slack
        if name == "digits":
            bar = max(bar, floor)
        worst = min(r[key] for r in default)
        parts.append(f"{key} worst seed {worst:.4f} vs goal {bar:.4f} ({'met' if worst >= bar else 'NOT met'})")
    against = "max(PCA, mean UMAP over the seeds)" if umap_rows else "PCA (no UMAP)"
    return f"{name}: " + "; ".join(parts) + f" (goal: {against} less 0.005 / 0.015)"


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
    parser.add_argument("--defaults", action="store_true",
                        help="issue 14: reducer's default settings (reducer/defaults.py) against the seed's job, "
                             "PCA, UMAP and t-SNE, on --tables")
    parser.add_argument("--tables", nargs="+", choices=TABLES, default=list(TABLES),
                        help="with --defaults: the tables (shipped: iris, wine, digits; unseen: breast_cancer)")
    parser.add_argument("--time", action="store_true",
                        help="with --defaults: time `reducer run` end to end on digits, seed job against defaults")
    parser.add_argument("--time-rounds", type=int, default=3, help="with --time: rounds (default 3)")
    args = parser.parse_args(argv)
    if args.defaults:
        return compare_defaults(args)
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
