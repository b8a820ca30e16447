"""The job file format: defaults, path rules, and the errors a user sees."""

import textwrap
from pathlib import Path

import pytest

from reducer.errors import JobError
from reducer.config import project_root, read_job, read_jobs


def write(folder, name, text):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_defaults_are_the_seeds(tmp_path):
    job = read_job(write(tmp_path / "jobs", "plain.toml", '[dataset]\nname = "iris"\n'))
    assert job.name == "plain"
    assert job.model.hidden is None and job.model.latent == 2 and job.model.activation == "sigmoid"
    t = job.training
    assert (t.epochs, t.batch_size, t.learning_rate, t.seed, t.log_every) == (500, 8, 0.001, 1, 100)


def test_shipped_digits_job_is_the_seed():
    job = read_job(Path(__file__).resolve().parent.parent / "jobs" / "digits.toml")
    assert job.model.hidden == (32,) and job.model.activation == "sigmoid"
    assert (job.training.epochs, job.training.batch_size, job.training.seed) == (500, 8, 1)
    assert Path(job.dataset_options["path"]).is_file()


def test_relative_paths_resolve_against_the_job_file_not_the_cwd(tmp_path, monkeypatch):
    path = write(tmp_path / "proj" / "jobs", "a.toml", """
        [dataset]
        name = "csv"
        path = "../Data/x.csv"
        other_path = "sub/y.csv"
        label = "not/a/path"
        """)
    monkeypatch.chdir(tmp_path)
    job = read_job(path)
    assert job.dataset_options["path"] == str(tmp_path / "proj" / "Data" / "x.csv")
    assert job.dataset_options["other_path"] == str(tmp_path / "proj" / "jobs" / "sub" / "y.csv")
    assert job.dataset_options["label"] == "not/a/path"


def test_project_root_is_above_a_jobs_folder(tmp_path):
    assert project_root(tmp_path / "proj" / "jobs" / "a.toml") == tmp_path / "proj"
    assert project_root(tmp_path / "elsewhere" / "a.toml") == tmp_path / "elsewhere"


@pytest.mark.parametrize("text, expected", [
    ('[dataset]\nname = "iris"\n[training]\nepoch = 5\n', "unknown key 'epoch' in [training]; valid keys: epochs"),
    ('[dataset]\nname = "iris"\n[training]\nepochs = "5"\n', "training.epochs must be an integer"),
    ('[dataset]\nname = "iris"\n[training]\nepochs = 0\n', "training.epochs must be greater than 0"),
    ('[dataset]\nname = "iris"\n[model]\nlatent = 5\n', "model.latent must be one of 2, 3"),
    ('[dataset]\nname = "iris"\n[model]\nhidden = [0]\n', "model.hidden must be a non-empty list"),
    ('[dataset]\nname = "iris"\n[training]\nlearning_rate = -1.0\n', "training.learning_rate must be greater"),
    ('[dataset]\nname = "iris"\n[training]\nseed = true\n', "training.seed must be an integer"),
    ('[model]\nlatent = 2\n', "missing [dataset] table"),
    ('[dataset]\nname = "iris"\ncolour = "red"\n[extra]\n', "unknown key 'extra'; valid keys: name, dataset"),
    ('name = "a b"\n[dataset]\nname = "iris"\n', "name must be letters"),
    ('[dataset\nname = "iris"\n', "invalid TOML"),
])
def test_errors_name_the_file_and_key(tmp_path, text, expected):
    path = write(tmp_path / "jobs", "bad.toml", text)
    with pytest.raises(JobError) as caught:
        read_job(path)
    message = str(caught.value)
    assert str(path) in message and expected in message and "\n" not in message


def test_invalid_toml_names_line_and_column(tmp_path):
    path = write(tmp_path, "bad.toml", '[dataset]\nname = "iris"\nepochs = = 3\n')
    with pytest.raises(JobError, match=r"line 3, column"):
        read_job(path)


def test_duplicate_names_fail_both_jobs_and_keep_the_others(tmp_path):
    a = write(tmp_path / "one", "x.toml", '[dataset]\nname = "iris"\n')
    b = write(tmp_path / "two", "x.toml", '[dataset]\nname = "iris"\n')
    c = write(tmp_path / "two", "y.toml", '[dataset]\nname = "iris"\n')
    jobs, errors = read_jobs([a, b, c])
    assert [j.name for j in jobs] == ["y"]
    assert len(errors) == 2 and all("more than one job file" in message for _, message in errors)
