"""reducer as a real package: a wheel carries the built-in datasets and their sample data, owns
no top-level `plugins` package, and works from an empty folder; the library API is exported."""

import os
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO, STARTING_ENVIRONMENT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel `pip install .` would install, built from this checkout."""
    folder = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(folder), str(REPO)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    wheel, = folder.glob("reducer-*.whl")
    return wheel


def test_the_wheel_holds_the_built_in_datasets_and_no_top_level_plugins(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for name in ("reducer/builtin_plugins/csv_table.py", "reducer/builtin_plugins/iris.py",
                 "reducer/builtin_plugins/uci_digits.py", "reducer/sample_data/iris.csv",
                 "reducer/sample_data/digits_uci_test_1797.txt", "reducer/sample_data/wine.csv",
                 "reducer/pages/map.html", "reducer/pages/map.js", "reducer/pages/map.css",
                 "reducer/pages/page.css", "reducer/pages/ago.js"):
        assert name in names, name
    assert not [n for n in names if n.startswith(("plugins/", "Data/"))]


def test_an_installed_wheel_lists_and_runs_the_built_in_datasets_from_an_empty_folder(wheel, tmp_path):
    site = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    empty = tmp_path / "empty"
    (empty / "jobs").mkdir(parents=True)
    (empty / "jobs" / "flowers.toml").write_text('[dataset]\nname = "iris"\n[training]\nepochs = 3\n')
    # The wheel's reducer first on the path, the test environment's libraries after it.
    env = {**STARTING_ENVIRONMENT, "PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1"}
    env.pop("REDUCER_PLUGINS", None)

    def reducer(*args):
        return subprocess.run([sys.executable, "-m", "reducer", *args], cwd=empty, env=env, capture_output=True,
                              text=True, timeout=600)

    located = subprocess.run([sys.executable, "-c", "import reducer; print(reducer.__file__, reducer.DATA)"],
                             cwd=empty, env=env, capture_output=True, text=True)
    assert located.stdout.startswith(str(site)), located.stdout + located.stderr
    listed = reducer("datasets")
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines() if not line.startswith(" ")] == \
        ["csv", "iris", "uci_digits"]
    ran = reducer("run", "jobs/flowers.toml")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "flowers: ok" in ran.stdout
    assert (empty / "outputs" / "flowers" / "embedding.csv").is_file()
    assert str(site / "reducer" / "sample_data" / "iris.csv") in (empty / "outputs" / "flowers" /
                                                                  "manifest.json").read_text()


def test_the_library_api_runs_and_checks_job_files(tmp_path, monkeypatch):
    import reducer

    # In this process: no compiled-code cache, which would stay pointed at this test's folder.
    monkeypatch.setenv("REDUCER_XLA_CACHE", "0")
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "flowers.toml").write_text('[dataset]\nname = "iris"\n[training]\nepochs = 2\n')
    (jobs / "broken.toml").write_text('[dataset]\nname = "iris"\n[training]\nepochs = 0\n')
    checked = {r.name: r for r in reducer.check_jobs([jobs / "flowers.toml", jobs / "broken.toml"])}
    assert checked["flowers"].status == "ok" and checked["broken"].status == "invalid"
    assert "training.epochs must be greater than 0" in checked["broken"].reason
    results = reducer.run_jobs([jobs / "flowers.toml"], outputs=tmp_path / "out", models=tmp_path / "models")
    (result,) = results
    assert isinstance(result, reducer.JobResult) and result.status == "ok", result.reason
    assert result.manifest["dataset"]["rows"] == 150 and os.path.isfile(tmp_path / "out" / "flowers" / "plot.png")
