"""`reducer run --workers N` and `--scheduler`: the same files as a sequential run, and one
dying worker fails its job alone."""

import socket

import pytest

from conftest import TEST_PLUGINS, Project

JOBS = ("iris_2d", "iris_3d", "iris_seed7")


def iris_variants(project):
    project.copy_data("iris.csv")
    common = '[dataset]\nname = "iris"\npath = "../Data/iris.csv"\n'
    project.job("iris_2d", common + "[training]\nepochs = 8\nbatch_size = 16\nlog_every = 4\n")
    project.job("iris_3d", common + "[model]\nlatent = 3\n[training]\nepochs = 6\nbatch_size = 32\n")
    project.job("iris_seed7", common + 'normalize = "zscore"\n[training]\nepochs = 7\nseed = 7\n')
    return [project.root / "jobs" / f"{name}.toml" for name in JOBS]


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """The reference: the three jobs run one after another in one process."""
    project = Project(tmp_path_factory.mktemp("parallel") / "project")
    jobs = iris_variants(project)
    result = project.run("run", *jobs)
    assert result.returncode == 0, result.stderr
    return project, jobs


def embeddings(outputs):
    return {name: (outputs / name / "embedding.csv").read_bytes() for name in JOBS}


def test_workers_give_the_sequential_bytes_and_a_killed_worker_fails_its_job_alone(sequential, tmp_path):
    project, jobs = sequential
    project.job("sudden_death", '[dataset]\nname = "parallel_sudden_death"\n')
    out = tmp_path / "outputs"
    result = project.run("run", *jobs, project.root / "jobs" / "sudden_death.toml", "--workers", "2",
                         "--plugins", TEST_PLUGINS / "parallel", "--outputs", out,
                         "--models", tmp_path / "models")
    assert result.returncode == 1, result.stderr
    assert "running 4 job(s) in up to 2 worker processes" in result.stderr
    summary = result.stdout.splitlines()
    for name in JOBS:
        assert any(line.startswith(f"  {name}: ok in ") for line in summary), result.stdout
    died = [line for line in summary if line.startswith("  sudden_death: failed")]
    assert died and "worker process killed by SIGKILL while running the job" in died[0], result.stdout
    assert embeddings(out) == embeddings(project.outputs)
    assert not (out / "sudden_death" / "manifest.json").exists()
    assert "Traceback" not in result.stderr
    # Each job's log lines still come out, named, from its worker process.
    assert "[iris_2d] epoch =    8 loss = " in result.stderr


def test_a_dask_cluster_gives_the_local_bytes(sequential, tmp_path):
    distributed = pytest.importorskip("distributed")
    project, jobs = sequential
    out = tmp_path / "outputs"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        result = project.run("run", *jobs, "--scheduler", cluster.scheduler_address,
                             "--outputs", out, "--models", tmp_path / "models")
    assert result.returncode == 0, result.stderr
    for name in JOBS:
        assert f"  {name}: ok in " in result.stdout
        assert f"[{name}] finished on Dask: ok in " in result.stderr
    assert embeddings(out) == embeddings(project.outputs)
    assert (tmp_path / "models" / "iris_3d.keras").is_file()


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_scheduler_problems_are_one_line_usage_errors(project, tmp_path):
    project.iris_job()
    fake = tmp_path / "no_dask" / "distributed"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise ImportError("No module named \'distributed\'")\n')
    cases = [
        ((f"tcp://127.0.0.1:{closed_port()}",), {}, "cannot reach the Dask scheduler at tcp://127.0.0.1:"),
        (("scheduler-host",), {}, "is not an address like tcp://HOST:PORT"),
        (("tcp://127.0.0.1:8786",), {"PYTHONPATH": str(fake.parent)}, "pip install 'reducer[dask]'"),
    ]
    for (address,), env, message in cases:
        result = project.run("run", "jobs/iris.toml", "--scheduler", address, env=env)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], result.stderr
    assert not project.outputs.exists()


@pytest.mark.parametrize("args, message", [
    (("--workers", "0"), "argument --workers: must be a whole number of 1 or more"),
    (("--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"), "not allowed with argument"),
])
def test_bad_parallel_options(project, args, message):
    project.iris_job()
    result = project.run("run", "jobs/iris.toml", *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert result.stdout == ""
