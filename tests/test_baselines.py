"""Issue 21, through the CLI: a default-settings job keeps the settings reducer sized for its
published run while its table grows within a band (warm, the map stays put), sizes them again
outside it (cold, aligned, one line saying why); `--retrain` starts a new baseline on purpose;
`reducer accept` publishes a rejected candidate; 2 -> 3 -> 2 dimensions compare with the last
map of the same dimensions."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import DATA, Project


def grown(project, rows, seed=1):
    """wine.csv with `rows` rows: the original ones first, then perturbed copies with new ids."""
    rng = np.random.default_rng(seed)
    frame = pd.read_csv(DATA / "wine.csv", dtype={"sample_id": str})
    numbers = [c for c in frame.columns if c not in ("sample_id", "cultivar")]
    if rows <= len(frame):
        out = frame.iloc[:rows]
    else:
        extra = frame.iloc[rng.choice(len(frame), rows - len(frame))].copy()
        extra[numbers] = (extra[numbers] * (1 + rng.normal(0, 0.03, extra[numbers].shape))).round(4)
        extra["sample_id"] = [f"new-{k:04d}" for k in range(len(extra))]
        out = pd.concat([frame, extra])
    out.to_csv(project.root / "Data" / "wine.csv", index=False)


def wine_job(project, extra=""):
    return project.job("wine", f"""
        [dataset]
        name = "csv"
        path = "../Data/wine.csv"
        id = "sample_id"
        label = "cultivar"
        {extra}
        """)


def manifest(project, name="wine"):
    return json.loads((project.outputs / name / "manifest.json").read_text())


def test_a_growing_default_table_stays_put_and_is_sized_again_outside_the_band(tmp_path):
    project = Project(tmp_path / "project")
    grown(project, 178)
    wine_job(project)  # default settings: reducer sizes every one of them
    first = project.run("run", "jobs/wine.toml")
    assert first.returncode == 0, first.stderr
    assert "[wine] sized to 178 rows x 13 columns: " in first.stderr
    one = manifest(project)
    assert one["sizing"]["rows"] == 178 and one["sizing"]["kept"] is False
    assert one["sizing"]["settings"]["training.negative_samples"] == 36  # round(178 / 5)

    grown(project, 187)  # +5%: sized afresh, negative_samples would be 37, a cold start
    second = project.run("run", "jobs/wine.toml")
    assert second.returncode == 0, second.stderr
    assert ("[wine] sized settings kept from the published run, sized to 178 rows x 13 columns "
            "(187 rows, within 0.5x-2x of the 178 they were sized for)") in second.stderr
    assert "[wine] training: the rows changed since the published run" in second.stderr
    assert "[wine] warm start from the published run's weights" in second.stderr and "cold start" not in second.stderr
    two = manifest(project)
    assert two["sizing"]["kept"] is True and two["sizing"]["rows"] == 178
    assert two["job"]["training"]["negative_samples"] == 36 and two["dataset"]["rows"] == 187
    assert two["drift"]["median_displacement"] <= 0.03 and two["drift"]["neighbor_overlap"] >= 0.85
    assert two["baseline"]["new"] is False and two["baseline"]["since"] == one["run"]["started_at"]

    grown(project, 360)  # past 2x the 178 rows the settings were sized for: sized again, cold
    third = project.run("run", "jobs/wine.toml")
    assert third.returncode == 0, third.stderr
    why = "360 rows, outside 0.5x-2x of the 178 the settings were sized for"
    assert f"[wine] sized again, to 360 rows x 13 columns ({why}): " in third.stderr
    assert (f"[wine] cold start: the settings reducer sizes from the table ({why}) changed since the "
            f"published run") in third.stderr
    assert "[model] or [training] settings" not in third.stderr  # no blame on a job file nobody touched
    assert "[wine] aligned onto the published map" in third.stderr
    three = manifest(project)
    assert three["sizing"] == {**three["sizing"], "rows": 360, "kept": False, "reason": why}
    assert three["job"]["training"]["negative_samples"] == 72 and three["training"].get("warm_start") is None


def test_written_settings_win_and_a_change_of_them_sizes_again(tmp_path):
    project = Project(tmp_path / "project")
    grown(project, 178)
    path = wine_job(project, "[training]\nepochs = 150")
    assert project.run("run", "jobs/wine.toml").returncode == 0
    grown(project, 190)
    kept = project.run("run", "jobs/wine.toml")
    assert "; written in the job file: epochs = 150" in kept.stderr and "sized settings kept" in kept.stderr
    assert manifest(project)["job"]["training"]["epochs"] == 150
    path.write_text(path.read_text().replace("epochs = 150", "epochs = 120"))
    changed = project.run("run", "jobs/wine.toml")
    assert ("[wine] sized again, to 190 rows x 13 columns (the job file's own [model] or [training] settings "
            "changed)") in changed.stderr
    assert "[wine] cold start: the job's [model] or [training] settings changed" in changed.stderr
    assert manifest(project)["job"]["training"]["negative_samples"] == 38


def test_retrain_starts_a_new_baseline_that_max_drift_does_not_hold_back(tmp_path):
    project = Project(tmp_path / "project")
    grown(project, 178)
    wine_job(project, "[training]\nepochs = 150\n[quality]\nmax_drift = 0.0001")
    assert project.run("run", "jobs/wine.toml").returncode == 0
    published = manifest(project)
    forced = project.run("run", "--force", "jobs/wine.toml")  # --force: an unchanged job, warm
    assert "[wine] training: --force given" in forced.stderr and "[wine] warm start from" in forced.stderr
    assert forced.returncode == 1 and "wine: rejected" in forced.stdout  # above max_drift: held back
    grown(project, 187)
    retrained = project.run("run", "--retrain", "jobs/wine.toml")
    assert retrained.returncode == 0, retrained.stdout + retrained.stderr
    assert "[wine] training: --retrain given: a cold start with fresh sizing, a new baseline" in retrained.stderr
    assert "[wine] cold start: --retrain given" in retrained.stderr and "warm start from" not in retrained.stderr
    assert "[wine] sized again, to 187 rows x 13 columns (--retrain given)" in retrained.stderr
    assert "wine: ok in " in retrained.stdout and "; a new baseline: --retrain given" in retrained.stdout
    new = manifest(project)
    assert new["baseline"] == {"new": True, "reason": "--retrain given", "since": None}
    assert new["sizing"]["rows"] == 187 and new["job"]["training"]["negative_samples"] == 37
    assert new["drift"]["median_displacement"] > 0.0001 and new["drift"]["transform"] is not None  # aligned
    assert new["run"]["started_at"] != published["run"]["started_at"]
    again = project.run("run", "jobs/wine.toml")  # the new baseline holds: unchanged
    assert "wine: unchanged" in again.stdout


def test_two_three_two_dimensions_compare_with_the_last_map_of_the_same_dimensions(tmp_path):
    project = Project(tmp_path / "project")
    grown(project, 178)
    path = wine_job(project, "[model]\nlatent = 2\n[training]\nepochs = 150\n[quality]\nmax_drift = 0.0001")
    assert project.run("run", "jobs/wine.toml").returncode == 0
    flat = manifest(project)
    path.write_text(path.read_text().replace("latent = 2", "latent = 3"))
    solid = project.run("run", "jobs/wine.toml")
    assert solid.returncode == 0, solid.stdout + solid.stderr  # a new baseline: max_drift does not apply
    assert "wine: ok in " in solid.stdout and "; a new baseline: latent changed from 2 to 3" in solid.stdout
    three = manifest(project)
    assert three["baseline"]["new"] is True and three["drift"] is None
    kept = project.outputs / "wine" / "baselines" / "2d"
    assert json.loads((kept / "manifest.json").read_text())["run"] == flat["run"]
    assert (kept / "embedding.csv").read_bytes() == (project.outputs / "wine" / "history").parent.joinpath(
        "baselines", "2d", "embedding.csv").read_bytes()
    assert "A new baseline: latent changed from 2 to 3" in (project.outputs / "index.html").read_text()

    # What a run killed while copying into baselines/ leaves: swept by the next run of this job,
    # never through a link (baselines/9d leads elsewhere), and never another job's.
    left = kept / ".embedding.tmp-999999999-0badf00d.csv"
    left.write_text("half a copy")
    elsewhere = tmp_path / "archive"
    elsewhere.mkdir()
    theirs = elsewhere / ".embedding.tmp-999999999-0badf00d.csv"
    theirs.write_text("not reducer's")
    (project.outputs / "wine" / "baselines" / "9d").symlink_to(elsewhere, target_is_directory=True)
    other = project.outputs / "other" / "baselines" / "2d"
    other.mkdir(parents=True)
    (other / left.name).write_text("another job's")

    path.write_text(path.read_text().replace("latent = 3", "latent = 2"))
    back = project.run("run", "jobs/wine.toml")
    assert back.returncode == 0, back.stdout + back.stderr
    assert not left.exists() and str(left) in back.stderr
    assert theirs.read_text() == "not reducer's" and (other / left.name).read_text() == "another job's"
    assert "; a new baseline: latent changed from 3 to 2" in back.stdout
    assert "[wine] the published map has 3 dimensions, tonight's 2: compared with the last 2-dimensional map" \
        in back.stderr
    two = manifest(project)
    drift = two["drift"]
    assert drift["against"] == {"run_started_at": flat["run"]["started_at"], "latent": 2, "published": False,
                                "folder": str(kept)}
    assert drift["shared_rows"] == 178 and drift["transform"] is not None  # aligned onto the 2-D map
    assert drift["median_displacement"] < 0.3 and drift["neighbor_overlap"] > 0.5
    assert (project.outputs / "wine" / "baselines" / "3d" / "manifest.json").is_file()


def test_a_missing_drift_figure_is_a_miss_only_when_the_job_says_so_and_accept_publishes_it(tmp_path):
    project = Project(tmp_path / "project")
    grown(project, 178)
    path = wine_job(project, "[model]\nlatent = 2\n[training]\nepochs = 150\n"
                             "[quality]\nmax_drift = 0.5\ndrift_gate = \"always\"")
    assert project.run("run", "jobs/wine.toml").returncode == 0  # the first night: nothing to drift from
    published = manifest(project)
    path.write_text(path.read_text().replace("latent = 2", "latent = 3"))
    rejected = project.run("run", "jobs/wine.toml")
    assert rejected.returncode == 1 and "wine: rejected in " in rejected.stdout
    assert 'no drift figure (no rows shared with a published map of any dimensions) and drift_gate = "always"' \
        in rejected.stdout
    assert manifest(project)["run"] == published["run"]
    candidate = next((project.outputs / "wine" / "rejected").iterdir())

    accepted = project.run("accept", "jobs/wine.toml")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert f"  wine: ok: accepted by hand: the candidate of {candidate.name}, which missed the gate: no drift" \
        in accepted.stdout
    now = manifest(project)
    assert now["accepted"]["by"] == "hand" and now["accepted"]["candidate"] == candidate.name
    assert now["accepted"]["gate_missed"].startswith("no drift figure") and "rejected" not in now
    assert now["job"]["model"]["latent"] == 3 and not candidate.exists()
    kept = project.outputs / "wine" / "baselines" / "2d"  # the outgoing 2-D map, kept as a run keeps it
    assert json.loads((kept / "manifest.json").read_text())["run"] == published["run"]
    assert (kept / "embedding.csv").read_text().splitlines()[0].count("component_") == 2
    status = json.loads((project.outputs / "wine" / "status.json").read_text())
    assert status["status"] == "ok" and status["published_at"] == now["run"]["finished_at"]
    model_info = json.loads((project.models / "wine.json").read_text())
    assert model_info["latent"] == 3  # Models/ switched with the rest
    assert (project.outputs / "wine" / "embedding.csv").read_text().splitlines()[0].count("component_") == 3
    history = project.run("history", "--outputs", "outputs", "wine")
    assert "accepted by hand (the gate had rejected it: no drift figure" in history.stdout
    again = project.run("accept", "jobs/wine.toml")
    assert again.returncode == 1 and "no rejected candidate to accept in " in again.stdout
    unchanged = project.run("run", "jobs/wine.toml")
    assert unchanged.returncode == 0 and "wine: unchanged" in unchanged.stdout
