"""A job's publication is all or nothing. Each run writes a version folder and switches one
symlink; a kill at every step of publication (the real process, SIGKILL at step N) leaves
readers one run's complete set, and the next run puts Models/ back in line with the published
manifest before it does anything else. A job that fails publishes nothing at all, whatever sits
where its files go; the sweep of temporaries removes only what reducer wrote."""

import hashlib
import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from conftest import Project
from reducer import publish

BAD_ROWS = "a,b,label\n1,2,x\n3,oops,y\n"


def make_project(root):
    project = Project(root)
    project.copy_data("iris.csv")
    # The seed's reconstruction objective: publication does not depend on the objective, and it
    # trains in about two thirds of the neighbour objective's CPU time (no graph, no spectral start).
    project.job("iris_a", '[dataset]\nname = "iris"\npath = "../Data/iris.csv"\n[model]\nobjective = "reconstruction"\n'
                          '[training]\nepochs = 3\nbatch_size = 16\n')
    (project.root / "Data" / "bad.csv").write_text(BAD_ROWS)
    project.job("bad", '[dataset]\nname = "csv"\npath = "../Data/bad.csv"\nlabel = "label"\n')
    return project


@pytest.fixture(scope="module")
def first_night(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("publication") / "project")
    result = project.run("run", "jobs/iris_a.toml")
    assert result.returncode == 0, result.stderr
    return project


def clone(project, tmp_path):
    shutil.copytree(project.root, tmp_path / "project", symlinks=True)
    return Project(tmp_path / "project")


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def reader_view(project, job="iris_a"):
    """What a reader sees now: the manifest, and whether every file it lists has its sha256
    (the outputs folder's files, and Models/)."""
    folder = project.outputs / job
    manifest = json.loads((folder / "manifest.json").read_text())
    matches = {}
    for name, entry in manifest["files"].items():
        path = Path(entry["path"])
        local = (project.models / path.name) if name.startswith("model") else folder / path.name
        matches[name] = local.is_file() and sha(local) == entry["sha256"]
    return manifest, matches


def night_times(project, job="iris_a", status="ok"):
    """The times of the `status` nights `reducer history JOBFILE --json` lists, oldest first."""
    result = project.run("history", "--json", f"jobs/{job}.toml")
    assert result.returncode == 0, result.stderr
    nights = json.loads(result.stdout)[job]
    return [night["time"] for night in nights if status is None or night["status"] == status]


def versions(project, job="iris_a"):
    return sorted(p.name for p in (project.outputs / job).iterdir() if publish.VERSION_NAME.fullmatch(p.name))


def test_published_files_are_links_into_one_version_folder(first_night):
    folder = first_night.outputs / "iris_a"
    (version,) = versions(first_night)
    assert os.readlink(folder / publish.DATA_LINK) == version
    for name in publish.READER_FILES:
        assert os.readlink(folder / name) == f"{publish.DATA_LINK}/{name}"
    manifest, matches = reader_view(first_night)
    assert all(matches.values()), matches
    assert manifest["files"]["model"]["path"] == str(first_night.models / "iris_a.keras")
    assert (folder / version / "model.keras").read_bytes() == (first_night.models / "iris_a.keras").read_bytes()


@pytest.mark.parametrize("step", range(1, len(publish.STEPS) + 1), ids=lambda s: publish.STEPS[s - 1])
def test_a_kill_at_any_step_leaves_one_run_and_the_next_run_mends_models(first_night, tmp_path, step):
    project = clone(first_night, tmp_path)
    before, _ = reader_view(project)
    killed = project.run("run", "--force", "jobs/iris_a.toml", env={publish.KILL_AT_STEP: str(step)})
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    after, matches = reader_view(project)  # readers: one run's complete outputs at this instant
    assert matches["embedding"] and matches["plot"], (publish.STEPS[step - 1], matches)
    switched = step >= publish.STEPS.index("switched") + 1
    assert (after["seconds"] != before["seconds"]) == switched
    models_in_line = matches["model"] and matches["model_info"]
    assert models_in_line == (not switched or step >= publish.STEPS.index("models renamed") + 1)
    # The history record is part of the switch (issue 20 item 13): at this instant, before any
    # repair, history lists exactly the nights readers can see, the killed one iff it switched.
    expected = [before["run"]["started_at"]] + ([after["run"]["started_at"]] if switched else [])
    assert night_times(project) == expected, publish.STEPS[step - 1]

    # The repair touches this run's jobs only: iris_a is mended first, then fails at its data
    # (tonight's export is broken), so what readers see is the mended set of the killed run.
    (project.root / "Data" / "iris.csv").write_text(BAD_ROWS)
    mended = project.run("run", "jobs/iris_a.toml")
    assert mended.returncode == 1 and "iris_a: failed" in mended.stdout, mended.stderr
    final, matches = reader_view(project)
    assert final == after and all(matches.values()), matches
    assert night_times(project) == expected  # the repair's history copy is not counted twice
    assert len(night_times(project, status=None)) == len(expected) + 1  # and the failed night
    if not models_in_line:
        assert f"restored {project.models / 'iris_a.keras'} to the published run's" in mended.stderr
    # The published folder, and the one published before it while readers may still be in it.
    history = project.outputs / "iris_a" / "history"
    kept = versions(project)
    assert len(kept) == (2 if switched else 1), kept
    assert all((history / f"{name[4:].rsplit('-', 1)[0]}-manifest.json").exists() for name in kept)
    assert not [p for p in project.models.iterdir() if ".tmp-" in p.name]
    assert not [p for p in (project.outputs / "iris_a").rglob("*") if ".tmp-" in p.name]


@pytest.mark.parametrize("obstacle", ["Models/iris_a.json", "outputs/iris_a/plot.png"])
def test_a_folder_where_a_file_goes_fails_the_job_and_changes_nothing(first_night, tmp_path, obstacle):
    project = clone(first_night, tmp_path)
    target = project.root / obstacle
    if target.is_symlink() or target.exists():
        target.unlink()
    target.mkdir()
    (target / "keep.txt").write_text("mine")

    def snapshot():  # every file but the lock's note, the caches, the attempt's own record, the
        # report's build time and the map page's note of the failed attempt (issue 20)
        return {p: p.read_bytes() for p in project.root.rglob("*") if p.is_file()
                and p.name not in (".reducer.lock", "status.json", "index.html", "map.html")
                and ".cache" not in p.parts and not p.name.endswith("-status.json")}

    before = snapshot()
    result = project.run("run", "--force", "jobs/iris_a.toml")
    assert result.returncode == 1
    assert f"cannot publish {target}: it is a folder" in result.stdout
    assert snapshot() == before
    assert len(versions(project)) == 1


def test_the_sweep_removes_only_what_reducer_wrote(first_night, tmp_path):
    project = clone(first_night, tmp_path)
    mine = [project.models / ".notes.tmp-keep.txt", project.models / ".tmp-1-deadbeef",
            project.outputs / "iris_a" / "history" / "notes.tmp-1-deadbeef.json",
            project.outputs / "iris_a" / "..v-notes"]
    for path in mine:
        path.write_text("user file")
    dead = project.models / ".iris_a.tmp-999999999-0badf00d.keras"
    dead.write_text("partial")
    result = project.run("run", "jobs/bad.toml")
    assert result.returncode == 1
    assert all(p.read_text() == "user file" for p in mine)
    assert not dead.exists() and "removed 1 temporary file(s)" in result.stderr


def test_a_job_folder_of_plain_files_is_adopted_without_a_moment_of_disagreement(first_night, tmp_path):
    """Outputs published by the previous release are plain files: the first run moves them into
    a version folder and swaps each for a link to the same bytes."""
    project = clone(first_night, tmp_path)
    folder = project.outputs / "iris_a"
    for name in publish.READER_FILES:
        data = (folder / name).read_bytes()
        (folder / name).unlink()
        (folder / name).write_bytes(data)
    (folder / publish.DATA_LINK).unlink()
    for name in versions(project):
        shutil.rmtree(folder / name)
    data = [name for name in publish.READER_FILES if name != "map.html"]  # the page notes tonight's failure
    before = {name: (folder / name).read_bytes() for name in data}
    good = (project.root / "Data" / "iris.csv").read_bytes()
    (project.root / "Data" / "iris.csv").write_text(BAD_ROWS)  # adopted, then failed at its data
    result = project.run("run", "jobs/iris_a.toml")
    assert result.returncode == 1 and "iris_a: failed" in result.stdout, result.stdout
    (project.root / "Data" / "iris.csv").write_bytes(good)
    assert {name: (folder / name).read_bytes() for name in data} == before
    assert all((folder / name).is_symlink() for name in publish.READER_FILES)
    _, matches = reader_view(project)
    assert all(matches.values()) and len(versions(project)) == 1
    assert len(night_times(project)) == 1  # the adopted run's history copy has its older stamp: listed once

    # The adopted run kept no decoder: the seed's objective trains one, so a warm start from
    # the encoder alone would be pulled apart by a fresh decoder; it starts cold instead.
    trained = project.run("run", "--force", "jobs/iris_a.toml")
    assert trained.returncode == 0, trained.stderr
    assert "[iris_a] cold start: the published run kept no decoder" in trained.stderr
    manifest, matches = reader_view(project)
    assert manifest["training"]["warm_start"]["from"] is None and all(matches.values())
