"""Night after night: an unchanged job is not trained again (and TensorFlow is not even
imported), tonight's map is aligned to last night's and the transform is in the saved encoder,
the drift is measured, a map that misses its gate is rejected, and every attempt leaves a
status record that `reducer history` tells."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import DATA, STARTING_ENVIRONMENT, Project
from reducer import continuity


def wine_project(root, extra=""):
    project = Project(root)
    project.copy_data("wine.csv")
    project.job("wine", f"""
        [dataset]
        name = "csv"
        path = "../Data/wine.csv"
        id = "sample_id"
        label = "cultivar"
        normalize = "zscore"
        [model]
        objective = "neighbors"
        [training]
        epochs = 60
        batch_size = 32
        negative_samples = 30
        log_every = 30
        {extra}
        """)
    return project


def night_two(project, fraction=0.17, seed=5):
    """17% of the rows replaced by new ones (new ids), the order shuffled."""
    rng = np.random.default_rng(seed)
    frame = pd.read_csv(DATA / "wine.csv", dtype={"sample_id": str})
    drop = rng.choice(len(frame), int(round(fraction * len(frame))), replace=False)
    donors = frame.iloc[rng.choice(len(frame), len(drop))].copy()
    numbers = [c for c in frame.columns if c not in ("sample_id", "cultivar")]
    donors[numbers] = donors[numbers] * (1 + rng.normal(0, 0.03, donors[numbers].shape))
    donors["sample_id"] = [f"new-{i:03d}" for i in range(len(drop))]
    pd.concat([frame.drop(index=drop), donors]).sample(frac=1, random_state=seed).to_csv(
        project.root / "Data" / "wine.csv", index=False)


def manifest(project):
    return json.loads((project.outputs / "wine" / "manifest.json").read_text())


def status(project):
    return json.loads((project.outputs / "wine" / "status.json").read_text())


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """Night 1 of the wine job, run once for the module and kept aside: (its folder, the kept
    copy, the run). A published run belongs where it ran (its fingerprint holds the data's
    absolute path), so `first_night` puts a fresh copy back in that same folder for each test;
    the tests of a module run one after another in one process."""
    root = tmp_path_factory.mktemp("continuity")
    project = wine_project(root / "project")
    first = project.run("run", "jobs/wine.toml")
    assert first.returncode == 0, first.stderr
    shutil.copytree(project.root, root / "kept", symlinks=True)
    return project.root, root / "kept", first


def first_night(published):
    """The project as night 1 left it, in the folder it ran in (the previous test's copy gone)."""
    folder, kept, _ = published
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(kept, folder, symlinks=True)
    return Project(folder)


@pytest.fixture(scope="module")
def nights(published, tmp_path_factory):
    """Night 1 published; a second run of the same input; night 2 with 17% of rows replaced.
    Run in night 1's folder, then moved out of the way of `first_night` (its links are relative)."""
    project = first_night(published)
    one = manifest(project)
    files_one = {p.name: p.read_bytes() for p in (project.outputs / "wine").iterdir() if p.is_file()}
    # The same input again, with TensorFlow made impossible to import: skipping must not need it.
    blocker = project.root / "no_tensorflow"
    (blocker / "tensorflow").mkdir(parents=True)
    (blocker / "tensorflow" / "__init__.py").write_text("raise ImportError('TensorFlow was imported')\n")
    same = project.run("run", "jobs/wine.toml", env={"PYTHONPATH": str(blocker)})
    files_same = {p.name: p.read_bytes() for p in (project.outputs / "wine").iterdir() if p.is_file()}
    status_same = status(project)
    night_two(project)
    second = project.run("run", "jobs/wine.toml")
    assert second.returncode == 0, second.stderr
    moved = Project(shutil.move(project.root, tmp_path_factory.mktemp("continuity") / "nights"))
    return moved, one, files_one, same, files_same, status_same, second


def test_an_unchanged_job_is_skipped_without_tensorflow(nights):
    project, one, files_one, same, files_same, status_same, _ = nights
    assert same.returncode == 0, same.stderr
    assert "  wine: unchanged in " in same.stdout and "published files untouched" in same.stdout
    assert {k: v for k, v in files_same.items() if k != "status.json"} == \
        {k: v for k, v in files_one.items() if k != "status.json"}
    assert status_same["status"] == "unchanged" and status_same["reason"]
    assert status_same["published_at"] == one["run"]["finished_at"]
    assert one["fingerprint"]["rows_sha256"] == one["dataset"]["rows_sha256"]


def test_force_and_skip_unchanged_false_train_again(published, tmp_path):
    project = wine_project(tmp_path / "project", extra="[continuity]\nskip_unchanged = false\nwarm_start = false")
    assert project.run("run", "jobs/wine.toml").returncode == 0
    again = project.run("run", "jobs/wine.toml")
    assert again.returncode == 0 and "  wine: ok in " in again.stdout and "epoch =   60" in again.stderr
    assert "[wine] training: [continuity] skip_unchanged = false" in again.stderr
    other, first = first_night(published), published[2]
    assert first.returncode == 0 and "[wine] training: no published run yet" in first.stderr
    forced = other.run("run", "--force", "jobs/wine.toml")
    assert "  wine: ok in " in forced.stdout, forced.stderr
    assert "[wine] training: --force given" in forced.stderr and "[wine] warm start from" in forced.stderr
    assert "[wine] aligned onto the published map: 178 shared rows, median displacement 0." in forced.stderr


def test_a_setting_a_later_reducer_added_is_no_change_of_settings(tmp_path):
    """A run published before robust_input existed records no such key: the job's settings are
    the same to it (a warm night, not a cold one on every job the first night after an
    upgrade), while a recorded setting that differs still is a change."""
    from types import SimpleNamespace

    from reducer.config import read_job

    project = wine_project(tmp_path / "project")
    job = read_job(project.root / "jobs" / "wine.toml").with_table_defaults(178, 13)
    recorded = json.loads(json.dumps(job.resolved(), default=str))
    assert recorded["model"]["robust_input"] is True
    older = {**recorded, "model": {k: v for k, v in recorded["model"].items() if k != "robust_input"}}
    assert not continuity.settings_changed(SimpleNamespace(manifest=SimpleNamespace(job=older)), job)
    assert not continuity.settings_changed(SimpleNamespace(manifest=SimpleNamespace(job=recorded)), job)
    other = {**recorded, "model": {**recorded["model"], "robust_input": False}}
    assert continuity.settings_changed(SimpleNamespace(manifest=SimpleNamespace(job=other)), job)


def test_new_settings_train_cold_and_the_log_says_why(published, tmp_path):
    """A warm start is held to last night's map: after the user changed the settings it would all
    but ignore them. New [model] / [training] settings train cold; log_every is not one."""
    project = first_night(published)
    job = project.root / "jobs" / "wine.toml"
    job.write_text(job.read_text().replace("log_every = 30", "log_every = 20"))
    chatty = project.run("run", "jobs/wine.toml")
    assert "[wine] training: the job file changed since the published run" in chatty.stderr
    assert "[wine] warm start from" in chatty.stderr
    job.write_text(job.read_text().replace("epochs = 60", "epochs = 40"))
    changed = project.run("run", "jobs/wine.toml")
    assert changed.returncode == 0, changed.stderr
    reason = "the job's [model] or [training] settings changed since the published run"
    assert f"[wine] training: {reason}" in changed.stderr and f"[wine] cold start: {reason}" in changed.stderr
    trained = manifest(project)["training"]
    assert trained.get("warm_start") is None and len(trained["loss_per_epoch"]) == 40


def test_night_two_is_aligned_warm_started_and_its_drift_measured(nights):
    project, one, _, _, _, _, second = nights
    two = manifest(project)
    drift = two["drift"]
    assert (drift["shared_rows"], drift["added_rows"], drift["removed_rows"]) == (148, 30, 30)
    assert drift["median_displacement"] <= 0.05 and drift["neighbor_overlap"] >= 0.8, drift
    assert np.asarray(drift["transform"]["matrix"]).shape == (2, 2)
    assert two["training"]["warm_start"]["from"] and "warm start from the published run" in second.stderr
    assert f"drift {drift['median_displacement']:.3f} (148 rows shared)" in second.stdout
    assert two["quality"]["trustworthiness_5"] >= one["quality"]["trustworthiness_5"] - 0.02
    assert one["drift"] is None  # a first night has nothing to drift from
    assert "matched by row number" not in second.stdout  # ids: rows are matched by their id


def test_an_aligned_night_measures_its_decoder_on_the_map_it_was_trained_on(published, tmp_path):
    """A night trained cold with another seed is a new map, turned onto last night's (Procrustes)
    before it is published; its decoder learnt the map before that turn. Fed the turned map it read
    an error several times PCA's; measured on its own map the error is of the size a first night's is."""
    project = first_night(published)
    one = manifest(project)
    job = project.root / "jobs" / "wine.toml"
    job.write_text(job.read_text().replace("[training]\n", "[training]\nseed = 7\n"))
    again = project.run("run", "jobs/wine.toml")
    assert again.returncode == 0, again.stderr
    two = manifest(project)
    turn = np.asarray(two["drift"]["transform"]["matrix"])
    assert not np.allclose(turn / np.linalg.norm(turn[0]), np.eye(2), atol=0.05)  # really turned
    first, second = one["quality"]["reconstruction_mse"], two["quality"]["reconstruction_mse"]
    # Here the turn is 7 degrees and a scale of 0.89: fed the turned map, the decoder read 1.43x
    # the first night's error; on its own map 1.11x.
    assert second < 1.25 * first and second < two["quality"]["pca"]["reconstruction_mse"], (first, second)


def test_rows_inserted_before_the_end_of_a_table_without_ids_are_warned_of(tmp_path):
    """Without an id column rows are matched with last night's by row number: 20 rows inserted at
    the top pair every row with another's place. The summary line says so and names the fix."""
    project = wine_project(tmp_path / "project")
    job = (project.root / "jobs" / "wine.toml").read_text().replace('id = "sample_id"\n', "")
    (project.root / "jobs" / "wine.toml").write_text(job)
    first = project.run("run", "jobs/wine.toml")
    assert first.returncode == 0, first.stderr
    frame = pd.read_csv(DATA / "wine.csv", dtype={"sample_id": str})
    numbers = [c for c in frame.columns if c not in ("sample_id", "cultivar")]
    extra = frame.iloc[::9].copy()
    extra[numbers] = extra[numbers] * 1.01
    pd.concat([extra, frame]).to_csv(project.root / "Data" / "wine.csv", index=False)
    second = project.run("run", "jobs/wine.toml")
    assert second.returncode == 0, second.stderr
    line, = [s for s in second.stdout.splitlines() if s.startswith("  wine: ok in ")]
    assert "warning: only" in line and "no id column: rows are matched by row number" in line, line
    assert "set dataset.id" in line
    assert any("matched by row number" in w for w in manifest(project)["warnings"])


def test_drift_counts_shared_added_and_removed_rows_over_the_whole_table_not_its_sample(tmp_path):
    """A large table's map is measured on its plot sample, but its rows are counted over all of
    them: 50,000 rows published, 10,000 appended, measured on a sample of 2,000, are 50,000
    shared, 10,000 added and none removed (it said 41,672 / 18,328 / 8,328)."""
    rng = np.random.default_rng(0)
    last = pd.DataFrame({"id": [f"r{k}" for k in range(50_000)]})
    last["component_1"], last["component_2"] = rng.normal(size=50_000), rng.normal(size=50_000)
    last.to_csv(tmp_path / "embedding.csv", index=False)
    previous = continuity.Previous(tmp_path, manifest=None)
    tonight = np.array([f"r{k}" for k in range(60_000)], dtype=object)
    sample = np.sort(rng.choice(60_000, 2_000, replace=False))
    lookup = dict(zip(last["id"], last[["component_1", "component_2"]].to_numpy()))
    coordinates = np.array([lookup.get(i, (0.0, 0.0)) for i in tonight[sample]])
    section = continuity.drift(tonight[sample], coordinates, previous, all_ids=tonight)
    assert (section["shared_rows"], section["added_rows"], section["removed_rows"]) == (50_000, 10_000, 0)
    alone = continuity.drift(tonight[sample], coordinates, previous)  # a sample that is the whole table
    assert alone["shared_rows"] == int(np.sum(sample < 50_000)) and alone["added_rows"] == 2_000 - alone["shared_rows"]


def test_the_row_number_warning_needs_no_ids_and_few_neighbours_kept():
    assert continuity.row_number_warning({"neighbor_overlap": 0.07}, None).startswith("only 7% of map neighbours")
    assert continuity.row_number_warning({"neighbor_overlap": 0.07}, "sample_id") is None
    assert continuity.row_number_warning({"neighbor_overlap": 0.9}, None) is None
    assert continuity.row_number_warning({"neighbor_overlap": None}, None) is None


def test_a_warm_night_trains_longer_holding_last_nights_rows_and_repeats_to_the_byte(published, tmp_path):
    """The neighbour objective's warm night (issue 21): half the job's epochs at its
    learning rate, the rows present last night held near their places by an anchor, so
    the map stays put; new rows are placed by the trained encoder. The same published run and
    the same rows give the same bytes."""
    project = first_night(published)
    twin = Project(tmp_path / "twin")
    shutil.rmtree(twin.root)
    shutil.copytree(project.root, twin.root, symlinks=True)
    warm = {}
    for copy in (project, twin):
        night_two(copy)
        result = copy.run("run", "jobs/wine.toml")
        assert result.returncode == 0, result.stderr
        assert ("[wine] warm start from the published run's weights (..v-" in result.stderr
                and "): 30 epochs at learning rate 0.01, the 148 rows of the published map held near their "
                    "places" in result.stderr)
        warm[copy] = manifest(copy)
    two = warm[project]
    assert two["training"]["warm_start"]["anchor"] == {"strength": 100.0, "rows_held": 148}
    assert two["training"]["warm_start"]["epochs"] == 30 and len(two["training"]["loss_per_epoch"]) == 30
    assert two["drift"]["median_displacement"] <= 0.03 and two["drift"]["neighbor_overlap"] >= 0.85
    assert two["training"] == warm[twin]["training"] and two["drift"] == warm[twin]["drift"]
    assert (project.outputs / "wine" / "embedding.csv").read_bytes() == \
        (twin.outputs / "wine" / "embedding.csv").read_bytes()


def test_the_alignment_is_inside_the_saved_encoder(nights):
    """A plain Keras load, no reducer, no custom objects, gives the published (aligned) map."""
    project = nights[0]
    script = (
        "import keras, pandas as pd, numpy as np, sys\n"
        "encoder = keras.models.load_model('Models/wine.keras')\n"
        "assert encoder.get_layer('align') is not None\n"
        "rows = pd.read_csv('Data/wine.csv')\n"
        "features = [c for c in rows.columns if c not in ('sample_id', 'cultivar')]\n"
        "got = encoder.predict(rows[features].to_numpy('float32'), verbose=0)\n"
        "published = pd.read_csv('outputs/wine/embedding.csv')[['component_1', 'component_2']].to_numpy()\n"
        "print(float(np.abs(got - published).max()))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=project.root, capture_output=True, text=True,
                          env=STARTING_ENVIRONMENT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.strip().splitlines()[-1]) < 1e-5


def test_procrustes_recovers_a_rotation_reflection_scale_and_shift():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 2))
    angle = 0.7
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) @ np.diag([1, -1])
    y = 2.5 * x @ rotation + np.array([3.0, -1.0])
    matrix, translation = continuity.procrustes(x, y)
    np.testing.assert_allclose(x @ matrix + translation, y, atol=1e-9)


def test_a_map_that_misses_its_gate_is_rejected_and_yesterday_stays(published, tmp_path):
    project = first_night(published)
    # status.json says how the attempt went, and the map page notes a rejected one (issue 20)
    before = {p.name: p.read_bytes() for p in (project.outputs / "wine").iterdir()
              if p.name not in ("status.json", "map.html") and p.is_file()}
    model = (project.models / "wine.keras").read_bytes()
    wine_project(project.root, extra="[quality]\nmin_trustworthiness = 0.999\nmin_knn_accuracy = 0.5")
    result = project.run("run", "jobs/wine.toml")
    assert result.returncode == 1
    line, = [s for s in result.stdout.splitlines() if s.startswith("  wine: rejected in ")]
    assert "trustworthiness 0." in line and "is below min_trustworthiness = 0.999" in line
    assert "kNN" not in line  # only the threshold it missed
    after = {p.name: p.read_bytes() for p in (project.outputs / "wine").iterdir()
             if p.name not in ("status.json", "map.html") and p.is_file()}
    assert after == before and (project.models / "wine.keras").read_bytes() == model
    assert status(project)["status"] == "rejected" and "min_trustworthiness" in status(project)["reason"]
    rejected, = (project.outputs / "wine" / "rejected").iterdir()
    assert (rejected / "embedding.csv").is_file() and json.loads((rejected / "manifest.json").read_text())["rejected"]
    assert list((project.outputs / "wine" / "history").glob("*-rejected-manifest.json"))

    told = project.run("history", "wine")
    assert told.returncode == 0
    lines = told.stdout.splitlines()
    assert lines[0] == "wine:" and " ok " in lines[1] and " rejected " in lines[2]
    assert "rows     178" in lines[1]
    as_json = json.loads(project.run("history", "--json", "wine").stdout)
    assert [night["status"] for night in as_json["wine"]] == ["ok", "rejected"]


def test_a_failed_attempt_is_on_disk(published, tmp_path):
    project = first_night(published)
    published = manifest(project)
    (project.root / "Data" / "wine.csv").write_text("sample_id,alcohol,cultivar\nx,1,a\ny,oops,b\n")
    result = project.run("run", "jobs/wine.toml")
    assert result.returncode == 1
    record = status(project)
    assert record["status"] == "failed" and "expected a number, got 'oops'" in record["reason"]
    assert record["published_at"] == published["run"]["finished_at"] and record["manifest_sha256"]
    assert manifest(project) == published
    assert [n["status"] for n in json.loads(project.run("history", "--json", "wine").stdout)["wine"]] == \
        ["ok", "failed"]


def test_the_same_rows_in_a_new_order_are_unchanged(published, tmp_path):
    """The rows' digest ignores their order: a shuffled file is the same table, nothing trains,
    the published files stay byte for byte, and one line says why."""
    project = first_night(published)
    published = {p.name: p.read_bytes() for p in (project.outputs / "wine").iterdir() if p.is_file()}
    path = project.root / "Data" / "wine.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.sample(frac=1, random_state=3).to_csv(path, index=False)
    shuffled = project.run("run", "jobs/wine.toml")
    assert shuffled.returncode == 0, shuffled.stderr
    assert "  wine: unchanged in " in shuffled.stdout and "same rows in a new order" in shuffled.stdout
    assert shuffled.stderr.count("[wine] same rows in a new order") == 1
    assert "[wine] training" not in shuffled.stderr
    assert {p.name: p.read_bytes() for p in (project.outputs / "wine").iterdir() if p.is_file()
            and p.name != "status.json"} == {k: v for k, v in published.items() if k != "status.json"}
    assert status(project)["status"] == "unchanged"
    # One cell changed is a change, in whatever order.
    frame.loc[5, "alcohol"] = "14.99"
    frame.to_csv(path, index=False)
    edited = project.run("run", "jobs/wine.toml")
    assert "  wine: ok in " in edited.stdout and "[wine] training: the rows changed" in edited.stderr
