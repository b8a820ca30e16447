"""Issue 21, through the CLI: a default-settings job keeps the settings reducer sized for its
published run while its table grows within a band (warm, the map stays put), sizes them again
outside it (cold, aligned, one line saying why); `--retrain` starts a new baseline on purpose;
`reducer accept` publishes a rejected candidate; 2 -> 3 -> 2 dimensions compare with the last
map of the same dimensions.

Each test follows one job through its nights. The five jobs live in one project and the nights
that train run as cron runs a project: one `reducer run` of several job files (one TensorFlow
process for the jobs of a night, not one per job), six runs for the 14 trained nights. The
`nights` fixture runs them and keeps what each test reads between its nights; each job has its
own table and job file, and every test checks its own job's lines, files and exit code (the
jobs of one run share an exit code, so a run holds only jobs that end alike). What needs no
training (an unchanged night, `reducer accept`, `reducer history`) each test runs itself."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import DATA, Project


def grown(project, name, rows, seed=1):
    """wine.csv with `rows` rows as Data/NAME.csv: the original rows first, then perturbed copies
    with new ids."""
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
    out.to_csv(project.root / "Data" / f"{name}.csv", index=False)


def wine_job(project, name, extra=""):
    return project.job(name, f"""
        [dataset]
        name = "csv"
        path = "../Data/{name}.csv"
        id = "sample_id"
        label = "cultivar"
        {extra}
        """)


def manifest(project, name):
    return json.loads((project.outputs / name / "manifest.json").read_text())


def edit(path, old, new):
    path.write_text(path.read_text().replace(old, new))


class Nights:
    """What the nights left: per job, each trained night's run (the whole `reducer run`, shared by
    the jobs it ran) and the job's manifest right after it; and what a test reads between nights."""

    def __init__(self, project):
        self.project = project
        self.runs = {}  # job name -> [CompletedProcess of each of its nights]
        self.manifests = {}  # job name -> [its manifest after each of its nights]
        self.seen = {}

    def run(self, names, *flags):
        result = self.project.run("run", *flags, *(f"jobs/{name}.toml" for name in names))
        for name in names:
            self.runs.setdefault(name, []).append(result)
            self.manifests.setdefault(name, []).append(manifest(self.project, name))
        return result


def place_leftovers(project):
    """What a run killed while copying into baselines/ leaves (dims' 2-D baseline), a link
    baselines/9d leading elsewhere, and another job's leftover: (left, theirs, other's)."""
    kept = project.outputs / "dims" / "baselines" / "2d"
    left = kept / ".embedding.tmp-999999999-0badf00d.csv"
    left.write_text("half a copy")
    elsewhere = project.root.parent / "archive"
    elsewhere.mkdir()
    theirs = elsewhere / ".embedding.tmp-999999999-0badf00d.csv"
    theirs.write_text("not reducer's")
    (project.outputs / "dims" / "baselines" / "9d").symlink_to(elsewhere, target_is_directory=True)
    other = project.outputs / "other" / "baselines" / "2d"
    other.mkdir(parents=True)
    (other / left.name).write_text("another job's")
    return left, theirs, other / left.name


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    project = Project(tmp_path_factory.mktemp("baselines") / "project")
    done = Nights(project)
    for name in ("grow", "written", "retrain", "dims", "drift"):
        grown(project, name, 178)
    wine_job(project, "grow")  # default settings: reducer sizes every one of them
    wine_job(project, "written", "[training]\nepochs = 150")
    wine_job(project, "retrain", "[training]\nepochs = 150\n[quality]\nmax_drift = 0.0001")
    wine_job(project, "dims", "[model]\nlatent = 2\n[training]\nepochs = 150\n[quality]\nmax_drift = 0.0001")
    wine_job(project, "drift", "[model]\nlatent = 2\n[training]\nepochs = 150\n"
                               "[quality]\nmax_drift = 0.5\ndrift_gate = \"always\"")
    done.run(["grow", "written", "retrain", "dims", "drift"])  # night 1 of every job
    done.seen["flat embedding"] = (project.outputs / "dims" / "embedding.csv").read_bytes()

    grown(project, "grow", 187)  # +5%: sized afresh, negative_samples would be 37, a cold start
    grown(project, "written", 190)
    edit(project.root / "jobs" / "dims.toml", "latent = 2", "latent = 3")
    done.run(["grow", "written", "dims"])  # night 2: all three publish
    kept = project.outputs / "dims" / "baselines" / "2d"
    done.seen["dims 2d baseline"] = (json.loads((kept / "manifest.json").read_text()),
                                     (kept / "embedding.csv").read_bytes())
    done.seen["index after dims night 2"] = (project.outputs / "index.html").read_text()
    edit(project.root / "jobs" / "drift.toml", "latent = 2", "latent = 3")
    done.run(["drift"])  # night 2, rejected: its run alone (exit 1)
    done.run(["retrain"], "--force")  # --force: an unchanged job, warm

    grown(project, "grow", 360)  # past 2x the 178 rows the settings were sized for: sized again, cold
    edit(project.root / "jobs" / "written.toml", "epochs = 150", "epochs = 120")
    done.seen["leftovers"] = place_leftovers(project)
    edit(project.root / "jobs" / "dims.toml", "latent = 3", "latent = 2")
    done.run(["grow", "written", "dims"])  # night 3
    grown(project, "retrain", 187)
    done.run(["retrain"], "--retrain")
    return done


def test_a_growing_default_table_stays_put_and_is_sized_again_outside_the_band(nights):
    first, second, third = nights.runs["grow"]
    one, two, three = nights.manifests["grow"]
    assert first.returncode == 0, first.stderr
    assert "[grow] sized to 178 rows x 13 columns: " in first.stderr
    assert "robust_input = true" in first.stderr  # as the job file would write it, not Python's True
    assert one["sizing"]["rows"] == 178 and one["sizing"]["kept"] is False
    assert one["sizing"]["settings"]["training.negative_samples"] == 36  # round(178 / 5)

    # +5%: sized afresh, negative_samples would be 37, a cold start
    assert second.returncode == 0, second.stderr
    assert ("[grow] sized settings kept from the published run, sized to 178 rows x 13 columns "
            "(187 rows, within 0.5x-2x of the 178 they were sized for)") in second.stderr
    assert "[grow] training: the rows changed since the published run" in second.stderr
    assert "[grow] warm start from the published run's weights" in second.stderr
    assert "[grow] cold start" not in second.stderr
    assert two["sizing"]["kept"] is True and two["sizing"]["rows"] == 178
    assert two["job"]["training"]["negative_samples"] == 36 and two["dataset"]["rows"] == 187
    assert two["drift"]["median_displacement"] <= 0.03 and two["drift"]["neighbor_overlap"] >= 0.85
    assert two["baseline"]["new"] is False and two["baseline"]["since"] == one["run"]["started_at"]

    # past 2x the 178 rows the settings were sized for: sized again, cold
    assert third.returncode == 0, third.stderr
    why = "360 rows, outside 0.5x-2x of the 178 the settings were sized for"
    assert f"[grow] sized again, to 360 rows x 13 columns ({why}): " in third.stderr
    assert (f"[grow] cold start: the settings reducer sizes from the table ({why}) changed since the "
            f"published run") in third.stderr
    grow_lines = [line for line in third.stderr.splitlines() if "[grow]" in line]
    assert not any("[model] or [training] settings" in line for line in grow_lines)  # no blame on a job file nobody touched
    assert "[grow] aligned onto the published map" in third.stderr
    assert three["sizing"] == {**three["sizing"], "rows": 360, "kept": False, "reason": why}
    assert three["job"]["training"]["negative_samples"] == 72 and three["training"].get("warm_start") is None


def test_written_settings_win_and_a_change_of_them_sizes_again(nights):
    first, kept, changed = nights.runs["written"]
    _, after_kept, after_changed = nights.manifests["written"]
    assert first.returncode == 0, first.stderr
    assert "[written] sized settings kept" in kept.stderr
    assert [line for line in kept.stderr.splitlines()
            if "[written] sized settings kept" in line and "; written in the job file: epochs = 150" in line]
    assert after_kept["job"]["training"]["epochs"] == 150
    assert ("[written] sized again, to 190 rows x 13 columns (the job file's own [model] or [training] settings "
            "changed)") in changed.stderr
    assert "[written] cold start: the job's [model] or [training] settings changed" in changed.stderr
    assert after_changed["job"]["training"]["negative_samples"] == 38


def test_retrain_starts_a_new_baseline_that_max_drift_does_not_hold_back(nights):
    project = nights.project
    first, forced, retrained = nights.runs["retrain"]
    published, _, new = nights.manifests["retrain"]
    assert first.returncode == 0, first.stderr
    assert "[retrain] training: --force given" in forced.stderr and "[retrain] warm start from" in forced.stderr
    assert forced.returncode == 1 and "retrain: rejected" in forced.stdout  # above max_drift: held back
    # then 187 rows and --retrain
    assert retrained.returncode == 0, retrained.stdout + retrained.stderr
    assert "[retrain] training: --retrain given: a cold start with fresh sizing, a new baseline" in retrained.stderr
    assert "[retrain] cold start: --retrain given" in retrained.stderr and "warm start from" not in retrained.stderr
    assert "[retrain] sized again, to 187 rows x 13 columns (--retrain given)" in retrained.stderr
    assert "retrain: ok in " in retrained.stdout and "; a new baseline: --retrain given" in retrained.stdout
    assert new["baseline"] == {"new": True, "reason": "--retrain given", "since": None}
    assert new["sizing"]["rows"] == 187 and new["job"]["training"]["negative_samples"] == 37
    assert new["drift"]["median_displacement"] > 0.0001 and new["drift"]["transform"] is not None  # aligned
    assert new["run"]["started_at"] != published["run"]["started_at"]
    again = project.run("run", "jobs/retrain.toml")  # the new baseline holds: unchanged
    assert "retrain: unchanged" in again.stdout


def test_two_three_two_dimensions_compare_with_the_last_map_of_the_same_dimensions(nights):
    project = nights.project
    first, solid, back = nights.runs["dims"]
    flat, three, two = nights.manifests["dims"]
    assert first.returncode == 0, first.stderr
    # latent 2 -> 3
    assert solid.returncode == 0, solid.stdout + solid.stderr  # a new baseline: max_drift does not apply
    assert "dims: ok in " in solid.stdout and "; a new baseline: latent changed from 2 to 3" in solid.stdout
    assert three["baseline"]["new"] is True and three["drift"] is None
    kept = project.outputs / "dims" / "baselines" / "2d"
    kept_manifest, kept_embedding = nights.seen["dims 2d baseline"]
    assert kept_manifest["run"] == flat["run"]
    assert kept_embedding == nights.seen["flat embedding"]  # the outgoing 2-D map itself
    assert "A new baseline: latent changed from 2 to 3" in nights.seen["index after dims night 2"]

    # What a run killed while copying into baselines/ leaves: swept by the next run of this job,
    # never through a link (baselines/9d leads elsewhere), and never another job's.
    left, theirs, others = nights.seen["leftovers"]
    # latent 3 -> 2
    assert back.returncode == 0, back.stdout + back.stderr
    assert not left.exists() and str(left) in back.stderr
    assert theirs.read_text() == "not reducer's" and others.read_text() == "another job's"
    assert "; a new baseline: latent changed from 3 to 2" in back.stdout
    assert "[dims] the published map has 3 dimensions, tonight's 2: compared with the last 2-dimensional map" \
        in back.stderr
    drift = two["drift"]
    assert drift["against"] == {"run_started_at": flat["run"]["started_at"], "latent": 2, "published": False,
                                "folder": str(kept)}
    assert drift["shared_rows"] == 178 and drift["transform"] is not None  # aligned onto the 2-D map
    assert drift["median_displacement"] < 0.3 and drift["neighbor_overlap"] > 0.5
    assert (project.outputs / "dims" / "baselines" / "3d" / "manifest.json").is_file()


def test_a_missing_drift_figure_is_a_miss_only_when_the_job_says_so_and_accept_publishes_it(nights):
    project = nights.project
    first, rejected = nights.runs["drift"]
    published, after_rejected = nights.manifests["drift"]
    assert first.returncode == 0, first.stderr  # the first night: nothing to drift from
    # latent 2 -> 3
    assert rejected.returncode == 1 and "drift: rejected in " in rejected.stdout
    assert 'no drift figure (no rows shared with a published map of any dimensions) and drift_gate = "always"' \
        in rejected.stdout
    assert after_rejected["run"] == published["run"]
    candidate = next((project.outputs / "drift" / "rejected").iterdir())

    accepted = project.run("accept", "jobs/drift.toml")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert f"  drift: ok: accepted by hand: the candidate of {candidate.name}, which missed the gate: no drift" \
        in accepted.stdout
    now = manifest(project, "drift")
    assert now["accepted"]["by"] == "hand" and now["accepted"]["candidate"] == candidate.name
    assert now["accepted"]["gate_missed"].startswith("no drift figure") and "rejected" not in now
    assert now["job"]["model"]["latent"] == 3 and not candidate.exists()
    kept = project.outputs / "drift" / "baselines" / "2d"  # the outgoing 2-D map, kept as a run keeps it
    assert json.loads((kept / "manifest.json").read_text())["run"] == published["run"]
    assert (kept / "embedding.csv").read_text().splitlines()[0].count("component_") == 2
    status = json.loads((project.outputs / "drift" / "status.json").read_text())
    assert status["status"] == "ok" and status["published_at"] == now["run"]["finished_at"]
    model_info = json.loads((project.models / "drift.json").read_text())
    assert model_info["latent"] == 3  # Models/ switched with the rest
    assert (project.outputs / "drift" / "embedding.csv").read_text().splitlines()[0].count("component_") == 3
    history = project.run("history", "--outputs", "outputs", "drift")
    assert "accepted by hand (the gate had rejected it: no drift figure" in history.stdout
    again = project.run("accept", "jobs/drift.toml")
    assert again.returncode == 1 and "no rejected candidate to accept in " in again.stdout
    unchanged = project.run("run", "jobs/drift.toml")
    assert unchanged.returncode == 0 and "drift: unchanged" in unchanged.stdout
