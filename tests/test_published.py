"""What a run publishes has one format (reducer/published.py): a record that is malformed,
wrongly typed, too large or not a regular file makes that one job unreadable, in one line; the
other jobs, the report and the run's exit code go on as the jobs say (never 70).

One real night of two small jobs, then its published files are damaged the ways an operator's
editor, a disk or a script could damage them, and the real commands run again.
"""

import html
import json
import os
import re
import shutil

import pytest

from conftest import Project


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """Two published iris jobs (a few epochs each, the seed's reconstruction objective: what is
    read back does not depend on the objective): `good` and `victim`."""
    project = Project(tmp_path_factory.mktemp("published") / "project")
    project.iris_job("good", epochs=4, objective="reconstruction")
    project.iris_job("victim", epochs=4, objective="reconstruction")
    result = project.run("run", "jobs/good.toml", "jobs/victim.toml")
    assert result.returncode == 0, result.stderr
    return project


@pytest.fixture
def copy(night, tmp_path):
    """A fresh copy of the published night (links included), to damage."""
    target = Project(tmp_path / "project")
    shutil.copytree(night.root, target.root, symlinks=True, dirs_exist_ok=True)
    return target


def edit_json(path, change):
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    os.chmod(path, 0o644)
    path.write_text(json.dumps(data), encoding="utf-8")


def card(index, name):
    """The index page's section for one job, its text unescaped (&#39; and &#x27; alike)."""
    start = index.index(f'id="job-{name}"')
    end = index.find('<section class="job"', start)
    return html.unescape(index[start:end if end > 0 else len(index)])


def test_a_manifest_with_text_rows_fails_that_job_in_one_line_and_the_report_says_unreadable(copy):
    manifest = copy.outputs / "victim" / "manifest.json"  # a link into ..data: the published record
    edit_json(manifest, lambda data: data["dataset"].update(rows="many"))
    result = copy.run("run", "jobs/good.toml", "jobs/victim.toml")
    assert result.returncode == 1, result.stderr  # a job failed; not 70
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert re.search(r"^  good: (ok|unchanged) in", result.stdout, flags=re.M)  # (retrained: the project moved)
    line = next(row for row in result.stdout.splitlines() if row.strip().startswith("victim:"))
    assert "victim: failed" in line and "dataset.rows must be a whole number, got 'many'" in line
    assert str(manifest.parent.resolve()) in line or "victim" in line
    index = (copy.outputs / "index.html").read_text(encoding="utf-8")
    assert '<span class="badge unreadable">unreadable</span>' in card(index, "victim")
    assert "dataset.rows must be a whole number" in card(index, "victim")
    assert re.search(r'<span class="badge (ok|unchanged)">', card(index, "good"))
    assert 'src="good/plot.png"' in card(index, "good")


def test_a_history_record_with_text_trustworthiness_is_one_unreadable_card(copy):
    history = sorted((copy.outputs / "victim" / "history").glob("*-manifest.json"))[-1]
    edit_json(history, lambda data: data["quality"].update(trustworthiness_5="high"))
    result = copy.run("run", "jobs/good.toml", "jobs/victim.toml")
    assert result.returncode == 0, result.stderr  # both jobs published: the jobs' exit code
    index = (copy.outputs / "index.html").read_text(encoding="utf-8")
    victim = card(index, "victim")
    assert '<span class="badge unreadable">unreadable</span>' in victim
    assert f"{history.name}: quality.trustworthiness_5 must be a number, got 'high'" in victim
    assert re.search(r'<span class="badge (ok|unchanged)">', card(index, "good"))

    report = copy.run("report")
    assert report.returncode == 0, report.stderr
    assert f"wrote {copy.outputs / 'index.html'}: 2 job(s)" in report.stdout

    past = copy.run("history", "jobs/victim.toml")
    assert past.returncode == 1 and past.stdout == ""
    assert past.stderr.strip() == (f"reducer: {history.resolve()}: quality.trustworthiness_5 must be a number, "
                                   f"got 'high'")
    assert copy.run("history", "jobs/good.toml").returncode == 0


def test_a_fifo_or_a_huge_status_is_refused_without_being_opened(copy):
    status = copy.outputs / "victim" / "status.json"
    status.unlink()
    os.mkfifo(status)  # opening it for reading would wait for a writer forever
    result = copy.run("report", timeout=60)
    assert result.returncode == 0, result.stderr
    index = (copy.outputs / "index.html").read_text(encoding="utf-8")
    assert "status.json: not a regular file" in card(index, "victim")

    status.unlink()
    with open(status, "wb") as handle:  # sparse: 17 MiB that cost nothing on disk
        handle.truncate(17 << 20)
    result = copy.run("report", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "status.json: larger than 16,777,216 bytes" in card(
        (copy.outputs / "index.html").read_text(encoding="utf-8"), "victim")


def test_the_reader_raises_one_typed_error_with_fields(night, tmp_path):
    """reducer.read_manifest (Python's way in): the error carries the file, the key and the reason;
    keys the reader does not know are kept and written back."""
    import reducer

    published = json.loads((night.outputs / "good" / "manifest.json").read_text(encoding="utf-8"))
    assert published["format"] == 1 and published["dataset"]["rows"] == 150
    manifest = reducer.read_manifest(night.outputs / "good" / "manifest.json")
    assert manifest.dataset.rows == 150 and manifest.to_json() == published
    newer = tmp_path / "manifest.json"
    newer.write_text(json.dumps({**published, "format": 2, "added_later": {"x": 1}}), encoding="utf-8")
    assert reducer.read_manifest(newer).to_json()["added_later"] == {"x": 1}
    newer.write_text(json.dumps({**published, "quality": {**published["quality"], "knn_accuracy": "high"}}))
    with pytest.raises(reducer.PublishedRecordError) as caught:
        reducer.read_manifest(newer)
    error = caught.value
    assert (error.path, error.key) == (newer, "quality.knn_accuracy")
    assert error.reason == "must be a number, got 'high'"
    assert str(error) == f"{newer}: quality.knn_accuracy must be a number, got 'high'"
    assert reducer.read_manifest(tmp_path / "absent.json") is None
    assert [n.status for n in reducer.read_history(night.outputs / "good")] == [reducer.Status.OK]


def test_read_history_takes_the_job_or_its_history_folder_and_refuses_what_is_neither(night, tmp_path):
    """The new-user trial passed outputs/<job>/history (the natural thing), a misspelt job and a
    file, and got [] each time, silently. The history folder reads as its job's; the others raise
    NotFoundError with the line `reducer history` prints for the same job."""
    import reducer

    good = night.outputs / "good"
    assert reducer.read_history(good / "history") == reducer.read_history(good) != []
    missing = night.outputs / "goood"
    with pytest.raises(reducer.NotFoundError) as caught:
        reducer.read_history(missing)
    assert isinstance(caught.value, reducer.ReducerError)
    cli = night.run("history", "goood")
    assert cli.returncode == 2 and cli.stderr.strip() == f"reducer: {caught.value}", cli.stderr
    assert str(caught.value) == f"no job 'goood' in {night.outputs}"
    with pytest.raises(reducer.NotFoundError, match="no job 'status.json' in "):
        reducer.read_history(good / "status.json")
    shown = night.run("history", "good")
    assert shown.returncode == 0 and shown.stdout.count("\n") == 1 + len(reducer.read_history(good))


def test_records_of_one_second_are_listed_in_the_order_the_attempts_began(night, tmp_path):
    """Seen in CI: a run killed just after its switch and the next run's failure can share one
    second; their records were then ordered by process id as text (10000 before 9999), so
    `reducer history` listed the failure before the night it followed. Oldest first means by
    second, then by when the attempt began, then by pid as a number."""
    import reducer

    history = tmp_path / "job" / "history"
    history.mkdir(parents=True)
    manifest = json.loads((night.outputs / "good" / "manifest.json").read_text())
    manifest["run"]["started_at"] = "2026-12-06T03:35:45+00:00"
    (history / "20261206T033550Z-9999-manifest.json").write_text(json.dumps(manifest))
    failed = {"format": 1, "job": "good", "status": "failed", "reason": "bad row",
              "attempted_at": "2026-12-06T03:35:50+00:00"}
    (history / "20261206T033550Z-10000-status.json").write_text(json.dumps(failed))
    (history / "20261206T033549Z-32000-status.json").write_text(
        json.dumps({**failed, "attempted_at": "2026-12-06T03:35:40+00:00", "reason": "earlier"}))
    nights = reducer.read_history(tmp_path / "job")
    assert [(n.status, n.reason) for n in nights] == [
        (reducer.Status.FAILED, "earlier"), (reducer.Status.OK, None), (reducer.Status.FAILED, "bad row")]
