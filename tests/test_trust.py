"""Trust on disk (issue 20): reducer writes and deletes only inside what it made, never through
a link; a damaged or foreign file elsewhere concerns nobody else; special files never hang it;
job names, gates and Ctrl-C do what they say; ids and labels come back exactly.

Real projects in temporary folders, the real command in subprocesses, real links, FIFOs and
signals. One module-wide night (`night`) is copied by the tests that need a published run.
"""

import hashlib
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import Project, STARTING_ENVIRONMENT, assert_one_line, run_cli
from reducer import publish, published

EXACT_READ = dict(dtype={"id": str, "label": str}, keep_default_na=False)  # README's read


def iris(project, name="iris", extra="", epochs=2, objective="reconstruction"):
    """The iris job with the seed's reconstruction objective: what these tests check (files,
    links, records, signals) does not depend on the objective, and it trains in about two thirds
    of the neighbour objective's CPU time (no neighbour graph, no spectral start)."""
    project.copy_data("iris.csv")
    return project.job(name, f'[dataset]\nname = "iris"\npath = "../Data/iris.csv"\n'
                             f'[model]\nobjective = "{objective}"\n'
                             f'[training]\nepochs = {epochs}\nbatch_size = 16\n{extra}')


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    project = Project(tmp_path_factory.mktemp("trust") / "project")
    iris(project)
    result = project.run("run", "jobs/iris.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    return project


def clone(project, tmp_path):
    shutil.copytree(project.root, tmp_path / "project", symlinks=True)
    return Project(tmp_path / "project")


def listing(folder):
    """Every path under `folder` (links not followed) with its kind and bytes: to prove nothing changed."""
    found = {}
    for root, dirs, names in os.walk(folder):
        for name in dirs + names:
            path = os.path.join(root, name)
            if os.path.islink(path):
                found[os.path.relpath(path, folder)] = ("link", os.readlink(path))
            elif os.path.isfile(path):
                with open(path, "rb") as handle:
                    found[os.path.relpath(path, folder)] = ("file", handle.read())
            else:
                found[os.path.relpath(path, folder)] = ("folder", None)
    return found


def archive(tmp_path, names, files=()):
    """A folder outside the project holding folders `names` and files `files`: a user's archive."""
    place = tmp_path / "archive"
    place.mkdir()
    for name in names:
        (place / name).mkdir()
        (place / name / "keep.txt").write_text("mine\n")
    for name in files:
        (place / name).write_text('{"mine": true}\n')
    return place


# ---------------------------------------------------------------- never through a link (items 1-3)


def test_a_linked_rejected_folder_is_never_written_nor_pruned(night, tmp_path):
    """Item 1: a rejected night deleted every folder of the linked archive but the newest 3."""
    project = clone(night, tmp_path)
    iris(project, extra="[quality]\nmin_trustworthiness = 1.0\n")  # every map is rejected
    outside = archive(tmp_path, ["20200101T000000Z-1", "20200102T000000Z-1", "20200103T000000Z-1",
                                 "20200104T000000Z-1", "zz-newest-by-name"])
    (project.outputs / "iris" / "rejected").symlink_to(outside)
    before = listing(outside)
    result = project.run("run", "--force", "jobs/iris.toml")
    assert_one_line(result, "iris: failed in", f"{project.outputs / 'iris' / 'rejected'} is a symbolic link",
                    "it was left as it is")
    assert listing(outside) == before
    assert (project.outputs / "iris" / "rejected").is_symlink()
    assert "[iris] started" in result.stderr and "[iris] training" not in result.stderr  # refused before training


def test_a_rejected_candidate_prunes_only_the_candidates_reducer_kept(night, tmp_path):
    project = clone(night, tmp_path)
    iris(project, extra="[quality]\nmin_trustworthiness = 1.0\n")
    kept = project.outputs / "iris" / "rejected"
    kept.mkdir()
    for name in ["20200101T000000Z-1", "20200102T000000Z-1", "20200103T000000Z-1", "zz-notes", "~mine"]:
        (kept / name).mkdir()
    (kept / "20200104T000000Z-1").symlink_to(tmp_path)  # a link with reducer's kind of name: left alone
    result = project.run("run", "--force", "jobs/iris.toml")
    assert result.returncode == 1 and "iris: rejected in" in result.stdout, result.stdout + result.stderr
    left = sorted(p.name for p in kept.iterdir())
    assert "zz-notes" in left and "~mine" in left and "20200104T000000Z-1" in left
    assert tmp_path.is_dir() and (tmp_path / "project").is_dir()
    ours = [name for name in left if publish.STAMP_NAME.fullmatch(name) and not (kept / name).is_symlink()]
    assert len(ours) == publish.REJECTED_KEEP and "20200101T000000Z-1" not in ours
    assert (kept / ours[-1] / "manifest.json").is_file()  # tonight's candidate is kept


def test_the_repair_touches_only_this_runs_jobs(night, tmp_path):
    """Item 2: the start-of-run repair followed a linked folder in outputs/ that no job of the
    run names, deleted a version folder there and swapped its plain files for links."""
    project = clone(night, tmp_path)
    outside = archive(tmp_path, ["..v-20200101T000000Z-1-deadbeef"])
    (outside / "manifest.json").write_text('{"files": {}}\n')
    (outside / "embedding.csv").write_text("id,component_1\n")
    (outside / ".x.tmp-1-deadbeef").write_text("not reducer's\n")
    (project.outputs / "elsewhere").symlink_to(outside)
    before = listing(outside)
    result = project.run("run", "--force", "jobs/iris.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert listing(outside) == before
    assert "elsewhere" not in result.stderr


def test_a_job_folder_that_is_a_link_fails_its_job_and_is_left_alone(night, tmp_path):
    project = clone(night, tmp_path)
    outside = tmp_path / "moved"
    shutil.move(project.outputs / "iris", outside)
    (project.outputs / "iris").symlink_to(outside)
    before = listing(outside)
    result = project.run("run", "--force", "jobs/iris.toml")
    assert_one_line(result, "iris: failed in", f"{project.outputs / 'iris'} is a symbolic link",
                    "never writes or deletes through it")
    assert listing(outside) == before


def test_a_linked_history_folder_is_never_written_nor_pruned(night, tmp_path):
    """Item 3: pruning deleted files in the linked history's target."""
    project = clone(night, tmp_path)
    history = project.outputs / "iris" / "history"
    shutil.rmtree(history)
    outside = archive(tmp_path, [], [f"2020{k:04d}T000000Z-1-manifest.json" for k in range(150)])
    history.symlink_to(outside)
    before = listing(outside)
    for args in (["jobs/iris.toml"], ["--force", "jobs/iris.toml"]):  # unchanged, then trained
        result = project.run("run", *args)
        assert_one_line(result, "iris: failed in", f"{history} is a symbolic link")
        assert listing(outside) == before


@pytest.mark.parametrize("place", ["history", "rejected"])
def test_a_plain_file_where_a_folder_goes_is_one_line_and_exit_1(night, tmp_path, place):
    """Item 17: exit 70 and a traceback."""
    project = clone(night, tmp_path)
    target = project.outputs / "iris" / place
    if target.is_dir():
        shutil.rmtree(target)
    target.write_text("a note of mine\n")
    result = project.run("run", "--force", "jobs/iris.toml")
    assert_one_line(result, "iris: failed in", f"{target} is a file where reducer keeps a folder of its own")
    assert target.read_text() == "a note of mine\n"


# ---------------------------------------------------------------- other folders are none of our business (4)


def test_a_malformed_manifest_in_another_folder_concerns_nobody_else(night, tmp_path):
    """Item 4: one malformed manifest anywhere under outputs/ ended the run with exit 70."""
    project = clone(night, tmp_path)
    other = project.outputs / "other"
    other.mkdir()
    (other / "manifest.json").write_text("{not json\n")
    (other / "status.json").write_text("[1, 2]\n")
    result = project.run("run", "--force", "jobs/iris.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "iris: ok in" in result.stdout and "Traceback" not in result.stderr
    assert (other / "manifest.json").read_text() == "{not json\n"


@pytest.mark.parametrize("text", ["[]\n", '{"files": 3}\n', '{"files": {"model": "x"}}\n', "{not json"])
def test_a_wrongly_typed_published_manifest_fails_its_job_with_one_line(night, tmp_path, text):
    """Item 17: wrongly typed JSON in a manifest was exit 70 with a traceback."""
    project = clone(night, tmp_path)
    folder = project.outputs / "iris"
    manifest = folder / os.readlink(folder / publish.DATA_LINK) / "manifest.json"
    manifest.write_text(text)
    result = project.run("run", "jobs/iris.toml")
    assert_one_line(result, "iris: failed in", "the published manifest cannot be read", "move")


def test_wrongly_typed_history_and_status_records_are_one_line_not_a_traceback(night, tmp_path):
    """Item 17: wrongly typed JSON in a status or history record was exit 70 with a traceback."""
    project = clone(night, tmp_path)
    folder = project.outputs / "iris"
    history = folder / "history"
    (history / "20200101T000000Z-1-manifest.json").write_text(
        '{"quality": [1], "dataset": "x", "training": {"final_loss": "low"}, "run": 3}\n')
    record = history / "20200101T000000Z-1-manifest.json"
    assert_one_line(project.run("history", "iris"), str(record), "dataset must be an object")
    record.unlink()
    (folder / "status.json").write_text('{"status": 5, "attempted_at": [], "reason": {}}\n')
    result = project.run("report")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert_one_line(result, "[iris] report: unreadable:", str(folder / "status.json"), code=0)
    result = project.run("run", "--force", "jobs/iris.toml")  # the attempt's own status.json replaces it
    assert result.returncode == 0 and "iris: ok in" in result.stdout, result.stdout + result.stderr
    assert json.loads((folder / "status.json").read_text())["status"] == "ok"


# ---------------------------------------------------------------- special files never opened (6)


def test_fifos_and_devices_where_records_go_never_hang_report_nor_run(night, tmp_path):
    """Item 6: a FIFO named status.json, map.html or a history record hung `reducer report`
    (and `reducer run` after publishing); status.json linked to /dev/zero grew memory by GBs."""
    folders, outputs = elsewhere(night, tmp_path)
    folder = outputs / "iris"
    (folder / "status.json").unlink()
    os.mkfifo(folder / "status.json")
    (folder / "map.html").unlink()
    os.mkfifo(folder / "map.html")
    os.mkfifo(folder / "history" / "20200101T000000Z-1-status.json")
    os.mkfifo(folder / "history" / "20200102T000000Z-1-manifest.json")
    result = night.run("report", "--outputs", outputs, timeout=60)
    assert result.returncode == 0, result.stderr
    (folder / "status.json").unlink()
    (folder / "status.json").symlink_to("/dev/zero")
    result = night.run("report", "--outputs", outputs, timeout=60)
    assert result.returncode == 0, result.stderr
    assert_one_line(night.run("history", "iris", "--outputs", outputs, timeout=60),
                    "20200101T000000Z-1-status.json: not a regular file")
    # map.html is a link reducer makes: a FIFO in its place fails the job with one line, left as it is.
    result = night.run("run", "jobs/iris.toml", *folders, timeout=120)
    assert_one_line(result, "iris: failed in", f"cannot publish {folder / 'map.html'}: it is not a regular file")
    assert stat.S_ISFIFO(os.lstat(folder / "map.html").st_mode)
    (folder / "map.html").unlink()
    result = night.run("run", "jobs/iris.toml", *folders, timeout=120)
    assert result.returncode == 0 and "iris: unchanged" in result.stdout, result.stdout + result.stderr
    assert os.readlink(folder / "map.html") == f"{publish.DATA_LINK}/map.html"


# ---------------------------------------------------------------- gates that cannot apply (9)


@pytest.mark.parametrize("quality, dataset, parts", [
    ("enabled = false\nmin_trustworthiness = 0.5\n", 'name = "iris"\n',
     ["quality.min_trustworthiness needs the quality metrics", "enabled = false"]),
    ("enabled = false\nbeat_pca = true\n", 'name = "iris"\n', ["quality.beat_pca needs the quality metrics"]),
    ("min_knn_accuracy = 0.5\n", 'name = "csv"\npath = "../Data/plain.csv"\n',
     ["quality.min_knn_accuracy needs kNN accuracy", "the job has no label column"]),
    ("beat_pca = true\n", 'name = "csv"\npath = "../Data/plain.csv"\n', ["quality.beat_pca", "no label column"]),
    ("min_knn_accuracy = 0.5\n", 'name = "csv"\npath = "../Data/plain.csv"\nlabel = "c"\nlabel_type = "value"\n',
     ["quality.min_knn_accuracy", "label column 'c' holds values"]),
])
def test_check_and_run_refuse_a_gate_that_cannot_apply(project, quality, dataset, parts):
    (project.root / "Data" / "plain.csv").write_text("a,b,c\n" + "".join(f"{k},{k % 7},{k % 5}\n" for k in range(40)))
    project.job("gated", f"[dataset]\n{dataset}[training]\nepochs = 1\n[quality]\n{quality}")
    assert_one_line(project.run("check", "jobs/gated.toml"), "gated: invalid:", *parts)
    result = project.run("run", "jobs/gated.toml")
    assert_one_line(result, "gated: failed in", *parts)
    assert not (project.models / "gated.keras").exists()


def test_run_refuses_kNN_accuracy_on_labels_the_rows_show_are_values(project):
    (project.root / "Data" / "valued.csv").write_text(
        "a,b,c\n" + "".join(f"{k},{k % 7},{k * 1.5}\n" for k in range(40)))
    project.job("valued", '[dataset]\nname = "csv"\npath = "../Data/valued.csv"\nlabel = "c"\n'
                          "[training]\nepochs = 1\n[quality]\nmin_knn_accuracy = 0.5\n")
    result = project.run("run", "jobs/valued.toml")
    assert_one_line(result, "valued: failed in", "quality.min_knn_accuracy", "label column 'c' holds values")
    assert "[valued] epoch" not in result.stderr  # refused before the first epoch


# ---------------------------------------------------------------- Ctrl-C (10)


def test_ctrl_c_during_neighbour_training_stops_the_run_with_130_even_when_started_ignoring_it(project):
    """Item 10: a run started the way a shell starts `reducer run &` (SIGINT ignored) trained on
    through two Ctrl-Cs, published and exited 0."""
    iris(project, epochs=1000000, extra="log_every = 1\n", objective="neighbors")
    environment = {**{k: v for k, v in STARTING_ENVIRONMENT.items() if k != "REDUCER_PLUGINS"},
                   "PYTHONUNBUFFERED": "1"}
    log = project.root / "run.log"
    with open(log, "w") as handle:
        process = subprocess.Popen([sys.executable, "-m", "reducer", "run", "jobs/iris.toml"], cwd=project.root,
                                   env=environment, stdout=handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.time() + 120
        while "[iris] epoch =" not in log.read_text() and time.time() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert "[iris] epoch =" in log.read_text(), log.read_text()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log.read_text()
    assert process.returncode == 130, text
    assert "reducer: interrupted" in text and "Traceback" not in text
    assert not (project.outputs / "iris" / "manifest.json").exists() and not (project.models / "iris.keras").exists()


# ---------------------------------------------------------------- job names (14)


def test_job_names_with_control_characters_or_reserved_names_are_refused(project):
    iris(project, name="good")
    project.job("evil", 'name = "evil\\n"\n[dataset]\nname = "iris"\n')
    project.job("index.html", '[dataset]\nname = "iris"\n')
    project.job("upper", 'name = "INDEX.HTML"\n[dataset]\nname = "iris"\n')
    (project.root / "jobs" / "bad\nname.toml").write_text('[dataset]\nname = "iris"\n')
    for command in ("check", "run"):
        result = project.run(command, "jobs/*.toml")
        output = result.stdout + result.stderr
        assert result.returncode == 1 and "Traceback" not in output, output
        assert_one_line(result, "evil.toml: name must be letters", "'evil\\n'")
        assert_one_line(result, "index.html.toml: name (the job file's name, by default) 'index.html' is the name "
                                "of reducer's own file in the outputs folder")
        assert_one_line(result, "upper.toml: name 'INDEX.HTML' is the name of reducer's own file")
        assert_one_line(result, "'bad\\nname': ")
        # Every line of the summary names a job: none was split by a newline in a name.
        summary = result.stdout.splitlines()
        if command == "run":
            summary = summary[1:-1]
        assert len(summary) == 5 and all(line.strip().split(":")[0] in
                                         ("good", "evil", "index.html", "upper", "'bad\\nname'") for line in summary), \
            summary
    assert (project.outputs / "index.html").read_text().lower().startswith("<!doctype html>")
    assert not (project.outputs / "evil\n").exists() and not (project.models / "index.html.keras").exists()


# ---------------------------------------------------------------- ids and labels exactly (15)


def test_ids_and_labels_keep_leading_and_trailing_spaces(project, tmp_path):
    rows = ["id,x1,x2,x3,label"]
    ids = [" 42", "7 ", "  8", "x", " 9 "] + [f"{k}" for k in range(5, 45)]
    labels = [" a", "b ", " a", "b ", " c "] + ["a" if k % 2 else "b " for k in range(5, 45)]
    for k, (ident, label) in enumerate(zip(ids, labels)):
        rows.append(f"{ident}, {k % 3}.5 ,{k * 0.1:.2f},{(k * 7) % 11} ,{label}")
    (project.root / "Data" / "spaced.csv").write_text("\n".join(rows) + "\n")
    project.job("spaced", '[dataset]\nname = "csv"\npath = "../Data/spaced.csv"\nid = "id"\nlabel = "label"\n'
                          '[model]\nobjective = "reconstruction"\n[training]\nepochs = 2\n')
    result = project.run("run", "jobs/spaced.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    embedding = pd.read_csv(project.outputs / "spaced" / "embedding.csv", **EXACT_READ)
    assert list(embedding["id"]) == ids and list(embedding["label"]) == labels
    placed = project.run("encode", "--model", project.models / "spaced.keras", project.root / "Data" / "spaced.csv",
                         "-o", "-")
    assert placed.returncode == 0, placed.stderr
    encoded = pd.read_csv(io.StringIO(placed.stdout), **EXACT_READ)
    assert list(encoded["id"]) == ids and list(encoded["label"]) == labels


# ---------------------------------------------------------------- encode -o (18)


def test_encode_never_writes_over_its_input_or_its_model(night, tmp_path):
    project = clone(night, tmp_path)
    rows = project.root / "Data" / "iris.csv"
    rows_link = tmp_path / "same-rows.csv"
    os.link(rows, rows_link)
    protected = {path: path.read_bytes() for path in [rows] + list(project.models.iterdir())}
    for output, what in [(rows, "is INPUT"), (rows_link, "is INPUT"), (project.models / "iris.onnx", "is the model"),
                         (project.models / "iris.json", "is the model's .json"),
                         (project.models / "iris.keras", "is the model's .keras")]:
        result = project.run("encode", "--model", project.models / "iris.onnx", rows, "-o", output)
        assert_one_line(result, f"{output}: {what}", "never writes over its own input or model")
    assert {path: path.read_bytes() for path in protected} == protected


# ---------------------------------------------------------------- no false repair lines (18)


def test_a_link_named_like_a_version_folder_is_neither_removed_nor_reported(night, tmp_path):
    project = clone(night, tmp_path)
    fake = project.outputs / "iris" / "..v-20200101T000000Z-1-deadbeef"
    fake.symlink_to(tmp_path)
    for _ in range(2):
        result = project.run("run", "jobs/iris.toml")
        assert result.returncode == 0, result.stderr
        assert "unpublished version folder" not in result.stderr
    assert fake.is_symlink() and (tmp_path / "project").is_dir()


# ---------------------------------------------------------------- skip-unchanged is exact (8, 12)


def test_swapped_feature_names_train_again_and_encode_agrees(project, tmp_path):
    """Item 8: two feature headers swapped gave `unchanged`, and Models/<job>.json went stale."""
    rows = [f"{k},{(k % 3) * 4 + k * 0.01:.3f},{(k % 5) * 0.5:.3f},{k * 0.1:.3f}" for k in range(60)]
    data = project.root / "Data" / "t.csv"
    data.write_text("id,x1,x2,x3\n" + "\n".join(rows) + "\n")
    project.job("t", '[dataset]\nname = "csv"\npath = "../Data/t.csv"\nid = "id"\n[model]\nobjective = "reconstruction"\n'
                     '[training]\nepochs = 2\n')
    assert project.run("run", "jobs/t.toml").returncode == 0
    data.write_text("id,x2,x1,x3\n" + "\n".join(rows) + "\n")  # the same cells under swapped names
    result = project.run("run", "jobs/t.toml")
    assert result.returncode == 0 and "t: ok in" in result.stdout, result.stdout + result.stderr
    assert "[t] training: the table's column names changed since the published run" in result.stderr
    assert json.loads((project.models / "t.json").read_text())["features"] == ["x2", "x1", "x3"]
    placed = project.run("encode", "--model", project.models / "t.onnx", data, "-o", tmp_path / "placed.csv")
    assert placed.returncode == 0, placed.stderr
    published = pd.read_csv(project.outputs / "t" / "embedding.csv", **EXACT_READ)
    again = pd.read_csv(tmp_path / "placed.csv", **EXACT_READ)
    assert (published[["component_1", "component_2"]] - again[["component_1", "component_2"]]).abs().max().max() < 1e-4


def elsewhere(project, tmp_path):
    """A copy of the project's outputs/ and Models/, for `run --outputs --models` with the project's
    own job files: the same job in the same place, so its next run is `unchanged`."""
    shutil.copytree(project.outputs, tmp_path / "outputs", symlinks=True)
    shutil.copytree(project.models, tmp_path / "Models")
    return ("--outputs", tmp_path / "outputs", "--models", tmp_path / "Models"), tmp_path / "outputs"


@pytest.mark.parametrize("damage", ["truncate embedding.csv", "delete plot.png", "overwrite model.onnx"])
def test_a_damaged_published_file_is_trained_and_published_again(night, tmp_path, damage):
    """Item 12: a truncated embedding.csv or a deleted plot.png still gave `unchanged` every night."""
    folders, outputs = elsewhere(night, tmp_path)
    result = night.run("run", "jobs/iris.toml", *folders)
    assert result.returncode == 0 and "iris: unchanged" in result.stdout, result.stdout + result.stderr
    folder = outputs / "iris"
    version = folder / os.readlink(folder / publish.DATA_LINK)
    action, name = damage.split(" ")
    if action == "truncate":
        with open(version / name, "r+b") as handle:
            handle.truncate(100)
    elif action == "delete":
        (version / name).unlink()
    else:
        (version / name).write_bytes(b"not a model")
    result = night.run("run", "jobs/iris.toml", *folders)
    assert result.returncode == 0 and "iris: ok in" in result.stdout, result.stdout + result.stderr
    assert_one_line(result, f"[iris] the published {name} (", "is damaged: training and publishing again", code=0)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert len(pd.read_csv(folder / "embedding.csv", **EXACT_READ)) == 150
    version = folder / os.readlink(folder / publish.DATA_LINK)
    assert publish.damaged_file(publish.Destination(outputs, tmp_path / "Models"), "iris",
                                published.read_manifest(folder / "manifest.json")) is None
    assert (version / "plot.png").is_file()


def test_a_corrupt_decoder_means_a_cold_start_with_one_line(night, tmp_path):
    """Item 17: a corrupt decoder.keras failed every night instead of training cold."""
    project = clone(night, tmp_path)
    folder = project.outputs / "iris"
    (folder / os.readlink(folder / publish.DATA_LINK) / "decoder.keras").write_bytes(b"PK\x03\x04 not a zip")
    result = project.run("run", "--force", "jobs/iris.toml")
    assert result.returncode == 0 and "iris: ok in" in result.stdout, result.stdout + result.stderr
    assert_one_line(result, "[iris] cold start: the published model cannot be read", code=0)


# ---------------------------------------------------------------- history pruned every night (18)


def test_history_is_pruned_on_unchanged_nights_too(night, tmp_path):
    """Item 18: records were pruned only on nights that published (120 unchanged nights left 122)."""
    folders, outputs = elsewhere(night, tmp_path)
    history = outputs / "iris" / "history"
    for k in range(130):
        (history / f"2020{k // 28 + 1:02d}{k % 28 + 1:02d}T000000Z-1-status.json").write_text(
            '{"status": "unchanged"}\n')
    (history / "notes.json").write_text("mine\n")
    result = night.run("run", "jobs/iris.toml", *folders)
    assert result.returncode == 0 and "iris: unchanged" in result.stdout, result.stdout + result.stderr
    assert len(list(history.glob("*-status.json"))) == publish.HISTORY_KEEP
    assert (history / "notes.json").read_text() == "mine\n"


# ---------------------------------------------------------------- every attempt recorded (7, 13)


def break_job_file(project):
    project.job("iris", '[dataset\nname = "iris"\n')


def remove_input(project):
    (project.root / "Data" / "iris.csv").unlink()


def model_as_folder(project):
    (project.models / "iris.keras").unlink()
    (project.models / "iris.keras").mkdir()


@pytest.mark.parametrize("fault, parts", [
    (break_job_file, ["iris.toml, line 1", "invalid TOML"]),
    (remove_input, ["dataset.path", "no such file", "iris.csv"]),
    (model_as_folder, ["iris.keras: it is a folder"]),
], ids=["job file typo", "input missing", "model a folder"])
def test_a_failure_before_training_is_recorded_in_status_and_history(night, tmp_path, fault, parts):
    """Item 7: a job that failed before training wrote no status.json: it kept saying ok."""
    project = clone(night, tmp_path)
    folder = project.outputs / "iris"
    published_at = json.loads((folder / "manifest.json").read_text())["run"]["finished_at"]
    records = set((folder / "history").iterdir())
    fault(project)
    result = project.run("run", "jobs/iris.toml")
    assert_one_line(result, "iris: failed in", *parts)
    status = json.loads((folder / "status.json").read_text())
    assert status["status"] == "failed" and all(part in status["reason"] for part in parts), status
    assert status["published_at"] == published_at and status["attempted_at"]
    (added,) = set((folder / "history").iterdir()) - records
    assert added.name.endswith("-status.json") and json.loads(added.read_text()) == status
    nights = project.run("history", "iris")
    assert nights.stdout.splitlines()[-1].split()[1] == "failed", nights.stdout
    assert "failed" in (project.outputs / "index.html").read_text()


@pytest.mark.parametrize("step", ["switched", "readers linked", "models renamed"])
def test_a_kill_after_the_switch_still_leaves_a_history_record_of_the_published_night(night, tmp_path, step):
    """Item 13: a run killed after the switch but before history was written left no record."""
    project = clone(night, tmp_path)
    killed = project.run("run", "--force", "jobs/iris.toml",
                         env={publish.KILL_AT_STEP: str(publish.STEPS.index(step) + 1)})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    folder = project.outputs / "iris"
    published = (folder / "manifest.json").read_bytes()
    # Before any repair: the history record is part of the switch, so the night is listed once.
    listed = json.loads(project.run("history", "--json", "jobs/iris.toml").stdout)["iris"]
    assert [n["status"] for n in listed] == ["ok", "ok"], listed
    assert listed[-1]["time"] == json.loads(published)["run"]["started_at"]
    (project.root / "Data" / "iris.csv").write_text("a,b\n1,x\n")  # tonight's export is broken
    result = project.run("run", "jobs/iris.toml")
    assert_one_line(result, "iris: failed in")
    copies = [p for p in (folder / "history").glob("*-manifest.json") if p.read_bytes() == published]
    assert len(copies) == 1, sorted(p.name for p in (folder / "history").iterdir())
    assert "recorded the published run in" in result.stderr
    nights = project.run("history", "iris").stdout.splitlines()
    assert [line.split()[1] for line in nights[1:]] == ["ok", "ok", "failed"], nights


# ---------------------------------------------------------------- what messages quote (5)


def test_messages_quote_40_characters_and_records_are_no_more_readable_than_the_input(project):
    """Item 5: with `path = "/etc/shadow"` its first line landed in a world-readable status.json."""
    secret = project.root / "Data" / "shadow"
    line = "root:$6$Zx9sEcReTsAlT$" + "h" * 60 + ":19000:0:99999:7:::"
    secret.write_text(f"{line}\ndaemon:*:19000:0:99999:7:::\nbin:*:19000:0:99999:7:::\n")
    secret.chmod(0o600)
    project.job("secret", '[dataset]\nname = "csv"\npath = "../Data/shadow"\n[training]\nepochs = 1\n')
    result = project.run("run", "jobs/secret.toml")
    assert_one_line(result, "secret: failed in")
    assert "h" * 41 not in result.stdout + result.stderr
    folder = project.outputs / "secret"
    status = folder / "status.json"
    assert "h" * 41 not in status.read_text() and json.loads(status.read_text())["status"] == "failed"
    assert status.stat().st_mode & 0o777 == 0o600
    (record,) = (folder / "history").glob("*-status.json")
    assert record.stat().st_mode & 0o777 == 0o600
    assert "h" * 41 not in (project.outputs / "index.html").read_text()


# ---------------------------------------------------------------- the map page switches with the files (11)


def map_stamp(page):
    found = re.search(r'<meta name="reducer-map" content="([0-9a-f]{64}) ', page.read_text())
    return found and found[1]


def test_the_map_page_switches_with_the_files_even_when_a_later_job_is_killed(night, tmp_path):
    """Item 11: after a SIGTERM during a later job, map.html showed the previous run while
    embedding.csv was new (the report, which wrote it, never ran)."""
    project = clone(night, tmp_path)
    folder = project.outputs / "iris"
    assert os.readlink(folder / "map.html") == f"{publish.DATA_LINK}/map.html"
    index_before = (project.outputs / "index.html").read_text()
    assert re.search(r'<meta name="reducer-built" content="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">', index_before)
    iris(project, name="later", epochs=1000000, extra="log_every = 1\n")
    environment = {**{k: v for k, v in STARTING_ENVIRONMENT.items() if k != "REDUCER_PLUGINS"},
                   "PYTHONUNBUFFERED": "1"}
    log = project.root / "run.log"
    with open(log, "w") as handle:
        process = subprocess.Popen([sys.executable, "-m", "reducer", "run", "--force", "jobs/iris.toml",
                                    "jobs/later.toml"], cwd=project.root, env=environment, stdout=handle,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.time() + 180
        while "[later] epoch =" not in log.read_text() and time.time() < deadline and process.poll() is None:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 143, log.read_text()
    assert "[iris] published to" in log.read_text()
    manifest = (folder / "manifest.json").read_bytes()
    assert map_stamp(folder / "map.html") == hashlib.sha256(manifest).hexdigest()
    assert (project.outputs / "index.html").read_text() == index_before  # not rebuilt: its time says so


# ---------------------------------------------------------------- a consistent read (16)


def test_a_reader_that_resolved_data_keeps_one_runs_files_through_the_next_switch(night, tmp_path):
    """Item 16: the old version folder was deleted at once, so a reader that resolved ..data
    just before a switch found its files gone."""
    project = clone(night, tmp_path)
    folder = project.outputs / "iris"
    resolved = os.path.realpath(folder / publish.DATA_LINK)
    result = project.run("run", "--force", "jobs/iris.toml")
    assert result.returncode == 0, result.stderr
    assert os.path.realpath(folder / publish.DATA_LINK) != resolved
    manifest = json.loads(open(os.path.join(resolved, "manifest.json")).read())
    for name in ("embedding.csv", "plot.png"):
        data = open(os.path.join(resolved, name), "rb").read()
        assert hashlib.sha256(data).hexdigest() in {entry["sha256"] for entry in manifest["files"].values()}
    assert map_stamp(Path(resolved) / "map.html") == hashlib.sha256(
        open(os.path.join(resolved, "manifest.json"), "rb").read()).hexdigest()
    second = os.path.realpath(folder / publish.DATA_LINK)
    assert project.run("run", "--force", "jobs/iris.toml").returncode == 0
    assert not os.path.exists(resolved) and os.path.isdir(second)  # kept until the next switch only
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert 'os.path.realpath("outputs/wine/..data")' in readme


# ---------------------------------------------------------------- standard output on a full disk (17)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_standard_output_on_a_full_disk_is_one_line_and_exit_1(night, tmp_path):
    """Item 17: exit 70 with a traceback when standard output could not be written."""
    environment = {**{k: v for k, v in STARTING_ENVIRONMENT.items() if k != "REDUCER_PLUGINS"},
                   "PYTHONUNBUFFERED": "1"}
    commands = [["datasets"], ["history", "iris"],
                ["encode", "--model", night.models / "iris.onnx", night.root / "Data" / "iris.csv", "-o", "-"]]
    for command in commands:
        with open("/dev/full", "w") as full:
            done = subprocess.run([sys.executable, "-m", "reducer", *map(str, command)], cwd=night.root,
                                  env=environment, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
        assert done.returncode == 1, (command, done.stderr)
        assert done.stderr.strip().splitlines()[-1] == "reducer: cannot write its output: No space left on device"
        assert "Traceback" not in done.stderr
