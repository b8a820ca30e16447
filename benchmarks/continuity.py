"""Night after night (issue 12), measured in one run of this script:

1. The wine table with the neighbour objective: night 1, then night 2 with 17% of the rows
   replaced by new ones and the order shuffled, with the [continuity] defaults; against a cold
   run on night 2's data (a fresh outputs folder): median displacement, neighbour overlap,
   trustworthiness, and the warm start's wall time against the cold run's.
2. The seed's digits job (jobs/digits.toml), night 2 with 5% of the rows replaced in place.
3. The five shipped jobs run twice: the second night finds every job unchanged. Wall time and
   peak RSS of both nights, and whether the second imported TensorFlow at all.

    python benchmarks/continuity.py            # the figures in benchmarks/README.md
    python benchmarks/continuity.py --tiny     # a smoke test: few epochs, seconds
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
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "Data"


def run(project, *args):
    """`reducer ARGS` in `project`: (wall seconds, peak RSS MiB, stdout + stderr)."""
    started = time.time()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen([sys.executable, "-m", "reducer", *map(str, args)], cwd=project, stdout=log,
                                   stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        _, status, usage = os.wait4(process.pid, 0)
        log.seek(0)
        output = log.read()
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        sys.exit(f"reducer {' '.join(map(str, args))} failed:\n{output}")
    return time.time() - started, usage.ru_maxrss / 1024, output


def wine_job(project, epochs):
    (project / "jobs").mkdir(parents=True, exist_ok=True)
    (project / "jobs" / "wine.toml").write_text(f"""[dataset]
name = "csv"
path = "../Data/wine.csv"
id = "sample_id"
label = "cultivar"
normalize = "zscore"
[model]
objective = "neighbors"
[training]
epochs = {epochs}
batch_size = 32
negative_samples = 30
""")


def replace_rows(frame, fraction, seed, id_column=None, shuffle=False):
    """`fraction` of the rows replaced by perturbed copies of others (new ids when there is an
    id column), the order shuffled or kept."""
    rng = np.random.default_rng(seed)
    count = int(round(fraction * len(frame)))
    chosen = rng.choice(len(frame), count, replace=False)
    donors = frame.iloc[rng.choice(len(frame), count)].copy()
    numbers = [c for c in frame.columns if c != id_column and pd.api.types.is_numeric_dtype(frame[c])
               and c != frame.columns[-1]]
    noise = rng.normal(0, 0.03, donors[numbers].shape)
    donors[numbers] = (donors[numbers] * (1 + noise)).round(4)
    if id_column:
        donors[id_column] = [f"new-{i:03d}" for i in range(count)]
        out = pd.concat([frame.drop(index=frame.index[chosen]), donors])
    else:  # no id column: ids are row numbers, so rows are replaced where they stand
        out = frame.astype({c: float for c in numbers})
        out.iloc[chosen] = donors.to_numpy()
    return out.sample(frac=1, random_state=seed) if shuffle else out


def manifest(project, job):
    return json.loads((project / "outputs" / job / "manifest.json").read_text())


def wine(folder, epochs):
    project = folder / "wine"
    (project / "Data").mkdir(parents=True)
    shutil.copy(DATA / "wine.csv", project / "Data" / "wine.csv")
    wine_job(project, epochs)
    run(project, "run", "jobs/wine.toml")
    one = manifest(project, "wine")
    night_two = replace_rows(pd.read_csv(DATA / "wine.csv", dtype={"sample_id": str}), 0.17, 5, "sample_id",
                             shuffle=True)
    night_two.to_csv(project / "Data" / "wine.csv", index=False)
    warm_seconds, _, _ = run(project, "run", "jobs/wine.toml")
    two = manifest(project, "wine")
    cold = folder / "wine_cold"
    shutil.copytree(project / "Data", cold / "Data")
    wine_job(cold, epochs)
    cold_seconds, _, _ = run(cold, "run", "jobs/wine.toml")
    return {"night1_trustworthiness": one["quality"]["trustworthiness_5"],
            "drift": two["drift"], "warm_start": two["training"].get("warm_start"),
            "trustworthiness": two["quality"]["trustworthiness_5"],
            "cold_trustworthiness": manifest(cold, "wine")["quality"]["trustworthiness_5"],
            "warm_seconds": round(warm_seconds, 2), "cold_seconds": round(cold_seconds, 2),
            "warm_train_seconds": two["seconds"]["train"],
            "cold_train_seconds": manifest(cold, "wine")["seconds"]["train"]}


def digits(folder, epochs):
    project = folder / "digits"
    (project / "Data").mkdir(parents=True)
    (project / "jobs").mkdir()
    shutil.copy(DATA / "digits_uci_test_1797.txt", project / "Data")
    text = (REPO / "jobs" / "digits.toml").read_text()
    text = re.sub(r"(?m)^epochs = \d+", f"epochs = {epochs}", text)
    (project / "jobs" / "digits.toml").write_text(text)
    run(project, "run", "jobs/digits.toml")
    frame = pd.read_csv(DATA / "digits_uci_test_1797.txt", header=None)
    replace_rows(frame, 0.05, 7).round().clip(0, 16).astype(int).to_csv(
        project / "Data" / "digits_uci_test_1797.txt", header=False, index=False)
    seconds, _, _ = run(project, "run", "jobs/digits.toml")
    two = manifest(project, "digits")
    return {"drift": two["drift"], "trustworthiness": two["quality"]["trustworthiness_5"],
            "warm_start": two["training"].get("warm_start"), "seconds": round(seconds, 2)}


def shipped(folder, epochs):
    project = folder / "shipped"
    shutil.copytree(REPO / "Data", project / "Data", ignore=shutil.ignore_patterns("__init__.py"))
    (project / "jobs").mkdir()
    for job in sorted((REPO / "jobs").glob("*.toml")):
        text = job.read_text()
        if epochs:
            text = re.sub(r"(?m)^epochs = \d+", f"epochs = {epochs}", text)
            if not re.search(r"(?m)^epochs = ", text):
                text = text.replace("[training]", f"[training]\nepochs = {epochs}") if "[training]" in text \
                    else text + f"\n[training]\nepochs = {epochs}\n"
        (project / "jobs" / job.name).write_text(text)
    full = run(project, "run", "jobs/*.toml")
    unchanged = run(project, "run", "jobs/*.toml")
    imports = subprocess.run([sys.executable, "-X", "importtime", "-m", "reducer", "run", "jobs/*.toml"],
                             cwd=project, capture_output=True, text=True).stderr
    return {"full_seconds": round(full[0], 2), "full_rss_mib": round(full[1]),
            "unchanged_seconds": round(unchanged[0], 2), "unchanged_rss_mib": round(unchanged[1]),
            "unchanged_jobs": unchanged[2].count(": unchanged in "),
            "unchanged_imported_tensorflow": "| tensorflow" in imports}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a smoke test: few epochs")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = parser.parse_args()
    epochs = (8, 4, 2) if args.tiny else (200, 500, None)
    with tempfile.TemporaryDirectory(prefix="reducer-continuity-") as folder:
        folder = Path(folder)
        figures = {"wine": wine(folder, epochs[0]), "digits": digits(folder, epochs[1]),
                   "shipped": shipped(folder, epochs[2])}
    w, d, s = figures["wine"], figures["digits"], figures["shipped"]
    print("| table | median displacement | neighbour overlap | trustworthiness (cold run) | seconds (cold) |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| wine, neighbours, 17% replaced + shuffled | {w['drift']['median_displacement']:.3f} | "
          f"{w['drift']['neighbor_overlap']:.3f} | {w['trustworthiness']:.3f} ({w['cold_trustworthiness']:.3f}) | "
          f"{w['warm_seconds']:.1f} ({w['cold_seconds']:.1f}); training {w['warm_train_seconds']:.2f} s "
          f"({w['cold_train_seconds']:.2f} s) |")
    print(f"| digits, seed job, 5% replaced | {d['drift']['median_displacement']:.3f} | "
          f"{d['drift']['neighbor_overlap']:.3f} | {d['trustworthiness']:.3f} | {d['seconds']:.1f} |")
    print()
    print(f"five shipped jobs: first night {s['full_seconds']:.1f} s, peak RSS {s['full_rss_mib']} MiB; "
          f"unchanged night {s['unchanged_seconds']:.1f} s, peak RSS {s['unchanged_rss_mib']} MiB "
          f"({s['unchanged_jobs']} jobs unchanged; TensorFlow imported: {s['unchanged_imported_tensorflow']})")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
