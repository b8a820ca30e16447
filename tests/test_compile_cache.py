"""The compiled-code cache (reducer/xla_cache.py): a second run loads the training loop the first
compiled and writes the same bytes; damaged entries, dead processes' folders and an unusable
cache folder never fail a run. Real `reducer run` subprocesses, real TensorFlow."""

import fcntl
import os
import time

import pytest

from conftest import REPO
from reducer.engine import xla_cache

ENTRY = "*" + xla_cache.SUFFIX
OWN_COMPILE_CACHE = True  # conftest.run_cli: these commands keep the cache in their outputs folder


# Every run of these tests trains as a first night would (--force, no warm start), so the same
# training loop runs each time and finds its compiled program.
COLD = "\n[continuity]\nwarm_start = false\nalign = false\n"
# The reconstruction engine's loop, compiled for a bucket of row counts (train.bucket_rows).
SEED_OBJECTIVE = '\n[model]\nobjective = "reconstruction"\n'



def cache_folders(project):
    return sorted((project.outputs / ".cache" / xla_cache.FOLDER).glob("*"))


def entries(project):
    return sorted(p for folder in cache_folders(project) for p in folder.glob(ENTRY))


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    """An iris project after one run: (project, embedding bytes)."""
    from conftest import Project

    project = Project(tmp_path_factory.mktemp("cache") / "project")
    project.iris_job(epochs=30, extra=SEED_OBJECTIVE + COLD)
    first = project.run("run", "--force", "jobs/iris.toml")
    assert first.returncode == 0, first.stderr
    assert "compiled 1 program(s); cached in" in first.stderr, first.stderr
    return project, (project.outputs / "iris" / "embedding.csv").read_bytes()


def test_a_second_run_compiles_nothing_and_writes_the_same_bytes(cached):
    project, embedding = cached
    [folder] = cache_folders(project)  # one machine key
    [entry] = entries(project)
    assert xla_cache.is_whole_entry(entry)
    assert not list(folder.glob(xla_cache.PRIVATE_PREFIX + "*"))  # the run removed its own
    inode = entry.stat().st_ino
    again = project.run("run", "--force", "jobs/iris.toml")
    assert again.returncode == 0, again.stderr
    assert "compiled" not in again.stderr  # every program came from the cache
    assert "Error parsing text-format" not in again.stderr  # TensorFlow's noise on each cache hit
    assert (project.outputs / "iris" / "embedding.csv").read_bytes() == embedding
    assert entry.stat().st_ino == inode and entries(project) == [entry]


def test_a_damaged_entry_is_removed_and_the_run_compiles_afresh(cached):
    project, embedding = cached
    [entry] = entries(project)
    whole = entry.read_bytes()
    entry.write_bytes(whole[: len(whole) // 2])  # as a disk fault or an outside copy might leave it
    result = project.run("run", "--force", "jobs/iris.toml")
    assert result.returncode == 0, result.stderr
    assert "removed a damaged compiled-code cache entry" in result.stderr and "compiled 1 program" in result.stderr
    assert xla_cache.is_whole_entry(entry)  # compiled again (not byte for byte the same program)
    assert (project.outputs / "iris" / "embedding.csv").read_bytes() == embedding


def test_a_dead_process_folder_is_removed_and_a_live_one_kept(cached):
    project, _ = cached
    [folder] = cache_folders(project)
    dead, live = folder / f"{xla_cache.PRIVATE_PREFIX}1-dead", folder / f"{xla_cache.PRIVATE_PREFIX}2-live"
    half_made, being_made = folder / f"{xla_cache.MAKING_PREFIX}3-old", folder / f"{xla_cache.MAKING_PREFIX}4-new"
    for private in (dead, live, half_made, being_made):
        private.mkdir()
        (private / "owner.lock").touch()
    os.utime(half_made, (time.time() - 3600,) * 2)
    holder = os.open(live / "owner.lock", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)  # this test process plays the live run
    try:
        result = project.run("run", "--force", "jobs/iris.toml")
        assert result.returncode == 0, result.stderr
        assert not dead.exists() and live.exists() and f"removed {dead}, left by a killed run" in result.stderr
        assert not half_made.exists() and being_made.exists()  # an instant old: maybe about to be renamed
    finally:
        os.close(holder)


def test_switched_off_or_unusable_the_run_goes_on_uncached(project):
    project.iris_job(epochs=5, extra=COLD)
    off = project.run("run", "--force", "jobs/iris.toml", env={"REDUCER_XLA_CACHE": "0"})
    assert off.returncode == 0, off.stderr
    assert not (project.outputs / ".cache" / xla_cache.FOLDER).exists()
    (project.outputs / ".cache").mkdir(parents=True)
    (project.outputs / ".cache" / xla_cache.FOLDER).write_text("a file where the folder should be")
    blocked = project.run("run", "--force", "jobs/iris.toml")
    assert blocked.returncode == 0, blocked.stderr
    assert "compiled-code cache off for this run" in blocked.stderr


def test_one_cache_folder_for_every_outputs_folder(cached, tmp_path):
    """REDUCER_XLA_CACHE_DIR=FOLDER: another project finds the program this one compiled in
    FOLDER/.xla/<machine>/ and writes the same bytes; nothing goes into its own outputs/.cache,
    and nothing of FOLDER's but .xla/ is ever pruned."""
    from conftest import Project

    project, embedding = cached
    [entry] = entries(project)
    folder = tmp_path / "shared"
    shared = folder / xla_cache.FOLDER / entry.parent.name  # the same machine key
    shared.mkdir(parents=True)
    os.link(entry, shared / entry.name)
    mine = folder / "someone-elses"  # beside .xla, older than the month after which keys are pruned
    mine.mkdir()
    os.utime(mine, (time.time() - 90 * 86400,) * 2)
    other = Project(tmp_path / "other")
    other.iris_job(epochs=30, extra=SEED_OBJECTIVE + COLD)
    result = other.run("run", "--force", "jobs/iris.toml", env={xla_cache.ENV_FOLDER: str(folder)})
    assert result.returncode == 0, result.stderr
    assert "compiled" not in result.stderr  # the program came from the shared folder
    assert (other.outputs / "iris" / "embedding.csv").read_bytes() == embedding
    assert not (other.outputs / ".cache" / xla_cache.FOLDER).exists()
    assert sorted(p.name for p in shared.iterdir()) == [entry.name]  # its private folder removed
    assert mine.is_dir()


def _field(number, payload):
    return bytes([number << 3 | 2, len(payload)]) + payload


@pytest.mark.parametrize("data, whole", [
    (_field(1, b"key") + _field(2, b"hlo") + _field(3, b"code"), True),
    (_field(1, b"key") + _field(2, b"hlo") + _field(3, b"code") + _field(4, b"new"), True),  # a newer field
    (_field(1, b"key") + _field(2, b"hlo") + _field(3, b"code")[:-1], False),  # cut off
    (_field(1, b"key") + _field(2, b"hlo"), False),  # no executable
    (_field(1, b"key") + _field(2, b"hlo") + _field(3, b""), False),  # an empty one
    (b"", False),
    (b"\x0a\xff", False),  # a length that never ends
])
def test_only_whole_entries_count(tmp_path, data, whole):
    path = tmp_path / "entry.pb"
    path.write_bytes(data)
    assert xla_cache.is_whole_entry(path) is whole


def test_a_failed_cache_write_is_one_clear_line(monkeypatch, tmp_path):
    """TensorFlow fails the training call when it cannot write an entry (a disk filling up during
    the run: enable() refuses to start with less than MIN_FREE_BYTES free)."""
    private = tmp_path / "xla" / "key" / f"{xla_cache.PRIVATE_PREFIX}1-x"
    monkeypatch.setitem(xla_cache._state, "private", private)
    monkeypatch.setitem(xla_cache._state, "shared", private.parent)
    failure = RuntimeError(f"{private}/xla_compile_cache__1__2__XLA_CPU_JIT.pbvm-9.tmp; No space left on device "
                           f"[Op:__inference_run_625]")
    error = xla_cache.explain(failure)
    assert str(error) == (f"cannot write the compiled-code cache in {private.parent}: No space left on device; "
                          f"nothing published, the previous outputs are untouched "
                          f"(REDUCER_XLA_CACHE=0 runs without the cache)")
    assert xla_cache.explain(RuntimeError("something else")) is None


def test_the_machine_key_ignores_the_flags_reducer_adds_itself_but_not_the_users(monkeypatch):
    from reducer.engine import tf_setup

    assert {f"--{name}={value}" for name, value in tf_setup._XLA_FLAGS.items()} <= set(xla_cache.REDUCER_XLA_FLAGS)
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    plain = xla_cache.machine_key()
    monkeypatch.setenv("XLA_FLAGS", " ".join(xla_cache.REDUCER_XLA_FLAGS))
    assert xla_cache.machine_key() == plain
    for users in ("--xla_cpu_multi_thread_eigen=true", "--xla_cpu_experimental_ynn_fusion_type=dot,eltwise",
                  "--xla_backend_optimization_level=1"):
        monkeypatch.setenv("XLA_FLAGS", users)
        assert xla_cache.machine_key() != plain, users


def test_a_few_rows_more_or_less_reuse_the_compiled_loop(cached):
    """The loop is compiled for a bucket of row counts (train.bucket_rows): tonight's table,
    a few rows shorter than last night's, needs no compilation."""
    from reducer.engine.train import bucket_rows

    project, embedding = cached
    data = project.root / "Data" / "iris.csv"
    lines = data.read_text().splitlines(keepends=True)
    assert bucket_rows(len(lines) - 1) == bucket_rows(len(lines) - 6)
    data.write_text("".join(lines[:-5]))
    result = project.run("run", "--force", "jobs/iris.toml")
    assert result.returncode == 0, result.stderr
    assert "145 rows" in result.stderr and "compiled" not in result.stderr


def test_an_entry_unusable_inside_is_dropped_and_the_job_trains_again(cached):
    """Whole by its lengths, so it reaches TensorFlow, which fails on it: the job must not."""
    project, embedding = cached
    (project.root / "Data" / "iris.csv").write_bytes((REPO / "Data" / "iris.csv").read_bytes())
    assert project.run("run", "--force", "jobs/iris.toml").returncode == 0  # the 150-row table again, cached
    [entry] = entries(project)
    damaged = bytearray(entry.read_bytes())
    middle = len(damaged) // 2
    damaged[middle:middle + 4096] = bytes(4096)  # inside the executable (field 3, most of the file)
    entry.write_bytes(bytes(damaged))
    assert xla_cache.is_whole_entry(entry)
    result = project.run("run", "--force", "jobs/iris.toml")
    assert result.returncode == 0, result.stderr
    assert "TensorFlow could not use a cached compiled program" in result.stderr
    assert "removed 1 cached program(s), training again" in result.stderr
    assert "Traceback" not in result.stderr
    assert (project.outputs / "iris" / "embedding.csv").read_bytes() == embedding
    assert not entry.exists() or entry.read_bytes() != bytes(damaged)  # never kept for tomorrow


def test_a_streamed_job_survives_unusable_entries_too(tmp_path):
    from test_large_csv import streamed_project

    project = streamed_project(tmp_path / "project")
    job = project.root / "jobs" / "wine.toml"
    job.write_text(job.read_text() + COLD)
    first = project.run("run", "--force", "jobs/wine.toml")
    assert first.returncode == 0, first.stderr
    embedding = (project.outputs / "wine" / "embedding.csv").read_bytes()
    for entry in entries(project):
        damaged = bytearray(entry.read_bytes())
        damaged[len(damaged) // 2:len(damaged) // 2 + 4096] = bytes(4096)
        entry.write_bytes(bytes(damaged))
    again = project.run("run", "--force", "jobs/wine.toml")
    assert again.returncode == 0, again.stderr
    assert "TensorFlow could not use a cached compiled program" in again.stderr and "Traceback" not in again.stderr
    assert (project.outputs / "wine" / "embedding.csv").read_bytes() == embedding
