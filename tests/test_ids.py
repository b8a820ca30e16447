"""Ids are unique or refused (issue 21): a repeated id fails the job with one line naming both
lines and the id, in `reducer run` and `reducer check --data`, whether the table is held in
memory, streamed through the float32 cache, or a plugin's DataFrame; a table without an id
column gets row numbers as ids."""

import csv
import json

import pytest

from conftest import DATA, Project

REPEATED = "  id 'wine-003' appears twice in id column 'sample_id', at lines 4 and 60 (rows 2 and 58)"


def wine_with_a_repeated_id(project, streaming=None):
    rows = list(csv.reader((DATA / "wine.csv").open(encoding="utf-8", newline="")))
    rows[59][0] = rows[3][0]  # line 60 repeats line 4's id
    with (project.root / "Data" / "wine.csv").open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    project.job("wine", f"""
        [dataset]
        name = "csv"
        path = "../Data/wine.csv"
        id = "sample_id"
        label = "cultivar"
        {'' if streaming is None else f'streaming = {str(streaming).lower()}'}
        [training]
        epochs = 5
        """)


@pytest.mark.parametrize("streaming", [None, True])
def test_a_repeated_id_fails_run_and_check(tmp_path, streaming):
    project = Project(tmp_path / "project")
    wine_with_a_repeated_id(project, streaming)
    checked = project.run("check", "--data", "jobs/wine.toml")
    assert checked.returncode == 1 and "Traceback" not in checked.stderr + checked.stdout
    line = [text for text in checked.stdout.splitlines() if "appears twice" in text]
    assert len(line) == 1 and REPEATED.strip() in line[0] and "Data/wine.csv" in line[0]
    run = project.run("run", "jobs/wine.toml")
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "  wine: failed in " in run.stdout and REPEATED.strip() in run.stdout
    assert not (project.outputs / "wine" / "manifest.json").exists()
    assert not (project.models / "wine.keras").exists()
    assert json.loads((project.outputs / "wine" / "status.json").read_text())["status"] == "failed"


def people_project(tmp_path, who):
    """A plugin whose load() gives five rows with the ids `who`, a job on it, and what `check --data`
    and `run` say of it (each exits 1, without a traceback)."""
    project = Project(tmp_path / "project")
    (project.root / "plugins" / "people.py").write_text(f'''
import pandas as pd
import reducer


def load(options):
    return pd.DataFrame({{"who": {who!r}, "x": [1.0, 2, 3, 4, 5], "y": [5.0, 3, 4, 1, 2]}})


@reducer.hookimpl
def register_datasets(register):
    register(reducer.Dataset(name="people", description="five people", load=load, id="who"))
''')
    project.job("people", """
        [dataset]
        name = "people"
        [training]
        epochs = 5
        """)
    said = []
    for command in (["check", "--data"], ["run"]):
        result = project.run(*command, "jobs/people.toml")
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stdout + result.stderr
        said.append(result.stdout)
    return said


def test_a_repeated_id_in_a_plugins_frame_is_refused(tmp_path):
    for said in people_project(tmp_path, ["ann", "bob", "cy", "bob", "dee"]):
        assert "id 'bob' appears twice in id column 'who', at rows 1 and 3" in said, said


@pytest.mark.parametrize("streaming", [None, True])
def test_a_blank_id_fails_run_and_check_naming_its_line(tmp_path, streaming):
    """A row without an id could not be found in embedding.csv nor matched the next night: a
    blank id cell is refused as a blank label is, by check, check --data and run alike."""
    project = Project(tmp_path / "project")
    rows = list(csv.reader((DATA / "wine.csv").open(encoding="utf-8", newline="")))
    rows[59][0] = "  "  # line 60, row 58
    with (project.root / "Data" / "wine.csv").open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    job = project.job("wine", f"""
        [dataset]
        name = "csv"
        path = "../Data/wine.csv"
        id = "sample_id"
        label = "cultivar"
        {'' if streaming is None else 'streaming = true'}
        [training]
        epochs = 5
        """)
    expected = (f"{job}: {project.root / 'Data' / 'wine.csv'}: id column 'sample_id' is blank in 1 row(s), at row 58 "
                f"(line 60); expected an id in every row")
    for command in (["check"], ["check", "--data"], ["run"]):
        result = project.run(*command, "jobs/wine.toml")
        assert result.returncode == 1, result.stdout + result.stderr
        assert expected in result.stdout and "Traceback" not in result.stdout + result.stderr, result.stdout
    assert not (project.outputs / "wine" / "embedding.csv").exists()
    assert json.loads((project.outputs / "wine" / "status.json").read_text())["status"] == "failed"


def test_a_blank_id_in_a_plugins_frame_is_refused(tmp_path):
    for said in people_project(tmp_path, ["ann", "bob", "", "cy", "dee"]):
        assert "dataset 'people': id column 'who' is blank in 1 row(s), at row 2; expected an id in every row" \
            in said, said


def test_without_an_id_column_rows_are_numbered(tmp_path):
    project = Project(tmp_path / "project")
    rows = list(csv.reader((DATA / "wine.csv").open(encoding="utf-8", newline="")))
    with (project.root / "Data" / "wine.csv").open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([r[1:] for r in rows[:40]] + [r[1:] for r in rows[1:40]])  # rows twice over
    project.job("wine", """
        [dataset]
        name = "csv"
        path = "../Data/wine.csv"
        label = "cultivar"
        [training]
        epochs = 5
        """)
    result = project.run("run", "jobs/wine.toml")
    assert result.returncode == 0, result.stderr
    ids = [line.split(",")[0] for line in (project.outputs / "wine" / "embedding.csv").read_text().splitlines()[1:]]
    assert ids == [str(k) for k in range(78)]
