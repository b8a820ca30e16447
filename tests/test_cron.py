"""`reducer run` left to cron: atomic publication, one run at a time, failure isolation, exit
codes. Real subprocesses of the real command, real signals, a real full disk where a tmpfs can
be mounted, real files.

One module-scoped run of four jobs (two good, one diverging, one invalid) gives the published
"previous night" that the other tests copy and then interrupt, lock or starve of disk space.
Signals are sent when the log or the folders show the moment (a staged temporary, the first
epoch line), never after a blind sleep.
"""

import errno
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from conftest import STARTING_ENVIRONMENT, Project
from reducer import files as outputs
from reducer import publish
from reducer.engine import xla_cache
from reducer.errors import OutputError

LONG = 'epochs = 1000000\nlog_every = 1\n'  # far longer than any test waits: it is interrupted
OWN_COMPILE_CACHE = True  # conftest.run_cli: private_cache_folders looks in each project's outputs


def iris(project, name, training="", model=""):
    project.copy_data("iris.csv")
    return project.job(name, f'[dataset]\nname = "iris"\npath = "../Data/iris.csv"\n'
                             f'[model]\n{model}\n[training]\nbatch_size = 16\n{training}')


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """A project after one real nightly run; returns (project, CompletedProcess)."""
    project = Project(tmp_path_factory.mktemp("night") / "project")
    iris(project, "iris_a", "epochs = 5\n")
    iris(project, "iris_b", "epochs = 5\nseed = 2\n")
    iris(project, "diverges", "epochs = 5\nlearning_rate = 1e30\n",
         model='objective = "reconstruction"\nactivation = "linear"')
    project.job("bad_key", '[dataset]\nname = "iris"\n[training]\nepoch = 5\n')
    return project, project.run("run", "jobs/*.toml")  # the glob reaches reducer unexpanded, as from cron


def clone(night, tmp_path):
    project, _ = night
    shutil.copytree(project.root, tmp_path / "project", symlinks=True)
    return Project(tmp_path / "project")


def published(project):
    """What readers see (relative path -> bytes): each job's published files and history, and
    Models/; the lock file, caches, temporaries and version folders aside."""
    seen = [p for job in project.outputs.iterdir() if job.is_dir() and not job.name.startswith(".")
            for p in [*(job / name for name in publish.READER_FILES), *sorted((job / "history").glob("*"))]]
    seen += sorted(project.models.iterdir()) if project.models.is_dir() else []
    return {str(p.relative_to(project.root)): p.read_bytes() for p in seen
            if p.is_file() and not outputs.TEMP_NAME.fullmatch(p.name)}


def private_cache_folders(project):
    """Compiled-code cache folders of processes (xla_cache.py): none once every run has ended."""
    return sorted((project.outputs / ".cache").glob(f"{xla_cache.FOLDER}/*/{xla_cache.PRIVATE_PREFIX}*"))


def unpublished_versions(project, job):
    """Version folders in outputs/<job>/ that ..data does not point to and never did (the run
    before the published one keeps its folder until the next switch, for readers in it: it has
    a history copy of its manifest)."""
    folder = project.outputs / job
    current = os.readlink(folder / publish.DATA_LINK) if (folder / publish.DATA_LINK).is_symlink() else None
    return sorted(p.name for p in folder.iterdir() if publish.VERSION_NAME.fullmatch(p.name) and p.name != current
                  and not (folder / "history" / f"{p.name[4:].rsplit('-', 1)[0]}-manifest.json").exists())


def temporaries(project):
    return sorted(p for folder in (project.outputs, project.models) for p in folder.rglob("*")
                  if outputs.TEMP_NAME.fullmatch(p.name))


def assert_consistent(project, job):
    """The job's manifest lists files whose sha256 matches, and the encoder is a whole zip."""
    manifest = json.loads((project.outputs / job / "manifest.json").read_text())
    written_in = Path(manifest["job"]["file"]).parents[1]  # the project a clone was copied from
    for entry in manifest["files"].values():
        path = project.root / Path(entry["path"]).relative_to(written_in)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], path
    with zipfile.ZipFile(project.models / f"{job}.keras") as archive:
        assert archive.testzip() is None
    return manifest


def start(project, *args, nice=0):
    """The real command in the background, its log in a file, as cron runs it; `nice` lowers its
    priority below this process's (a watcher that must act within a moment of the run's)."""
    log = open(project.root / f"log-{time.monotonic_ns()}.txt", "w+")
    env = {k: v for k, v in STARTING_ENVIRONMENT.items() if k != "REDUCER_PLUGINS"}
    process = subprocess.Popen([sys.executable, "-m", "reducer", *map(str, args)], cwd=project.root,
                               stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                               env={**env, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"},
                               preexec_fn=(lambda: os.nice(nice)) if nice else None)
    process.log_path = Path(log.name)
    return process


def wait_for_line(process, text, timeout=240):
    """Block until `text` appears in the process's log (never a blind sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in process.log_path.read_text():
            return
        if process.poll() is not None:
            pytest.fail(f"exited {process.returncode} before logging {text!r}:\n{process.log_path.read_text()}")
        time.sleep(0.05)
    pytest.fail(f"no {text!r} in the log after {timeout}s:\n{process.log_path.read_text()}")


@pytest.fixture
def processes():
    """Kill whatever a failing test left running."""
    started = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_one_bad_job_of_several_fails_alone(night):
    project, result = night
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()[:-1]  # the last line is the totals
    assert lines[0] == "summary:" and len(lines) == 5
    by_name = {line.split(":")[0].strip(): line for line in lines[1:]}
    for good in ("iris_a", "iris_b"):
        assert by_name[good].startswith(f"  {good}: ok in ") and re.search(r", final loss \d+\.\d{6}", by_name[good])
        assert_consistent(project, good)
    assert "diverges: failed in " in by_name["diverges"] and "training diverged" in by_name["diverges"]
    assert "bad_key: failed in " in by_name["bad_key"] and "unknown key 'epoch'" in by_name["bad_key"]
    assert "[diverges] failed, nothing published" in result.stderr
    # A failed first night publishes nothing: its folder holds only the attempt's status record.
    assert sorted(p.name for p in (project.outputs / "diverges").iterdir()) == ["history", "status.json"]
    status = json.loads((project.outputs / "diverges" / "status.json").read_text())
    assert status["status"] == "failed" and "training diverged" in status["reason"]
    assert status["published_at"] is None and status["manifest_sha256"] is None
    assert status["warnings"] == []  # a failed attempt carries no published map's warnings
    assert not list(project.models.glob("diverges*"))
    assert "Traceback" not in result.stderr


def test_published_files_are_0644_with_a_history_copy_of_the_manifest(night):
    project, _ = night
    files = [p for p in list(project.outputs.rglob("*")) + list(project.models.rglob("*")) if p.is_file()]
    assert len(files) >= 12
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o644, path
    history, = (project.outputs / "iris_a" / "history").iterdir()
    assert history.name.endswith("-manifest.json")
    assert history.read_bytes() == (project.outputs / "iris_a" / "manifest.json").read_bytes()
    assert not temporaries(project)


def interrupt_while_staging(project, signal_number, job="iris_a"):
    """Run `job` and send `signal_number` the moment its new version folder is being written
    (before the switch: test_publication.py kills at every later step). The run gets a lower
    priority than this watcher: on a busy machine (two test processes on two cores, or more) the
    watcher would otherwise see the new folder only after the run had published and exited 0."""
    run = start(project, "run", "--force", f"jobs/{job}.toml", nice=10)
    published_versions = set(unpublished_versions(project, job))
    seen = []
    try:
        while run.poll() is None and not seen:
            seen = [name for name in unpublished_versions(project, job) if name not in published_versions]
            time.sleep(0.001)
        if not seen:
            pytest.fail(f"the run ended ({run.returncode}) before it staged a file:\n{run.log_path.read_text()}")
        run.send_signal(signal_number)
        run.wait(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    return run


def test_kill_9_mid_publication_keeps_the_previous_outputs_and_the_rerun_cleans_up(night, tmp_path):
    project = clone(night, tmp_path)
    before = published(project)
    killed = interrupt_while_staging(project, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL

    assert published(project) == before  # byte for byte: nothing half-written, nothing replaced
    assert_consistent(project, "iris_a")
    assert unpublished_versions(project, "iris_a"), "the kill should have left its version folder behind"

    assert private_cache_folders(project), "the killed run's compiled-code cache folder should be left"

    rerun = project.run("run", "--force", "jobs/iris_a.toml")
    assert rerun.returncode == 0, rerun.stderr
    assert "removed 1 unpublished version folder(s) of iris_a" in rerun.stderr
    assert not temporaries(project) and not private_cache_folders(project)
    assert not unpublished_versions(project, "iris_a")
    assert_consistent(project, "iris_a")
    assert len(list((project.outputs / "iris_a" / "history").iterdir())) == 2


def test_sigterm_mid_publication_exits_143_and_leaves_nothing_behind(night, tmp_path):
    project = clone(night, tmp_path)
    before = published(project)
    stopped = interrupt_while_staging(project, signal.SIGTERM)
    assert stopped.returncode == 143
    log = stopped.log_path.read_text()
    assert "reducer: terminated by SIGTERM; published outputs are intact" in log and "Traceback" not in log
    # What readers see is yesterday's, but for the record of this attempt (every attempt is
    # recorded, whatever stops it): status.json and one history record of the failure.
    after = published(project)
    recorded = sorted(set(after) - set(before))
    assert len(recorded) == 1 and recorded[0].startswith("outputs/iris_a/history/"), recorded
    for record in (after[recorded[0]], (project.outputs / "iris_a" / "status.json").read_bytes()):
        assert b'"status": "failed"' in record and b"terminated by SIGTERM while it ran" in record
    assert {k: v for k, v in after.items() if k != recorded[0]} == before
    assert not temporaries(project) and not private_cache_folders(project)
    assert not unpublished_versions(project, "iris_a")


def test_a_second_run_exits_75_at_once_and_with_wait_runs_once_the_holder_dies(night, tmp_path, processes):
    project = clone(night, tmp_path)
    iris(project, "iris_a", LONG)
    first = start(project, "run", "--force", "jobs/iris_a.toml")
    processes.append(first)
    wait_for_line(first, "[iris_a] epoch =    1 loss = ")  # training: the lock is held

    before = published(project)
    second = project.run("run", "--force", "jobs/iris_b.toml", timeout=120)
    assert second.returncode == 75, second.stderr
    assert f"another reducer run holds {project.outputs / '.reducer.lock'} (pid {first.pid} since " in second.stderr
    assert "use --wait" in second.stderr and "Traceback" not in second.stderr
    assert "[iris_b] started" not in second.stderr and published(project) == before

    waiting = start(project, "run", "--wait", "--force", "jobs/iris_b.toml")
    processes.append(waiting)
    wait_for_line(waiting, f"waiting for the lock on {project.outputs / '.reducer.lock'}, held by pid {first.pid}")
    assert "[iris_b] started" not in waiting.log_path.read_text()
    first.send_signal(signal.SIGKILL)  # flock: the kernel frees the lock with its holder, no stale pid file
    first.wait()
    assert waiting.wait(timeout=300) == 0, waiting.log_path.read_text()
    assert "  iris_b: ok in " in waiting.log_path.read_text()
    assert len(list((project.outputs / "iris_b" / "history").iterdir())) == 2
    assert_consistent(project, "iris_b")


def test_an_unmatched_glob_exits_2(project):
    iris(project, "iris", "epochs = 5\n")
    result = project.run("run", "jobs/nightly-*.toml")
    assert result.returncode == 2
    assert "reducer: no job files match jobs/nightly-*.toml" in result.stderr and not result.stdout


@pytest.mark.parametrize("option", ["--outputs", "--models"])
def test_an_unwritable_folder_fails_before_training(project, option):
    """Root ignores permission bits, so the folder is made unwritable by putting it under a file."""
    iris(project, "iris", "epochs = 5\n")
    (project.root / "plain-file").write_text("not a folder\n")
    result = project.run("run", "jobs/iris.toml", option, "plain-file/sub")
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines()[1].startswith("  iris: failed in 0.0s: cannot write to folder ")
    assert f"{project.root / 'plain-file' / 'sub'}: Not a directory" in result.stdout
    assert "[iris] started" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("blocked", ["Models", "outputs/iris_a/history"])
def test_a_file_where_a_folder_goes_still_records_the_attempt(night, tmp_path, blocked):
    """Models/ (a read-only mount, say: root ignores permission bits, so a file stands in) or the
    job's history/ replaced by a file stops the job before training; its attempt is still on
    disk (status.json failed with the reason, and a history record where history/ is a folder),
    and the report written at the end of that same run counts it failed, not ok."""
    project = clone(night, tmp_path)
    place = project.root / blocked
    shutil.rmtree(place)
    place.write_text("not a folder\n")
    records = sorted((project.outputs / "iris_a" / "history").glob("*")) if blocked == "Models" else []
    result = project.run("run", "jobs/iris_a.toml", timeout=300)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "could not write its status.json" not in result.stderr
    reason = f"{place} is a file where reducer keeps a folder of its own"
    assert f"  iris_a: failed in " in result.stdout and reason in result.stdout
    status = json.loads((project.outputs / "iris_a" / "status.json").read_text())
    assert status["status"] == "failed" and reason in status["reason"]
    assert status["published_at"] is not None  # what readers still see: last night's map
    if blocked == "Models":
        new = sorted(set((project.outputs / "iris_a" / "history").glob("*")) - set(records))
        assert [p.name.endswith("-status.json") for p in new] == [True]
        assert json.loads(new[0].read_text()) == status
    else:
        assert place.read_text() == "not a folder\n"  # left as it is
        assert f"[iris_a] status.json written, but not its history record: {reason}" in result.stderr
    from reducer import report

    states = [json.loads((folder / "status.json").read_text())["status"]
              for folder in sorted(project.outputs.iterdir()) if (folder / "status.json").is_file()]
    assert states.count("failed") >= 2  # iris_a and bad_key
    assert report.totals(states) in (project.outputs / "index.html").read_text()


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs, for a real full disk; skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); "
                    f"test_stage_on_a_full_disk covers the library")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_while_publishing_keeps_the_previous_files(night, tmp_path, tiny_disk):
    project = clone(night, tmp_path)
    disk = Project(tiny_disk)
    shutil.copytree(project.outputs, disk.outputs, symlinks=True,
                    ignore=shutil.ignore_patterns(".cache"))  # 1 MiB: outputs only
    shutil.copytree(project.models, disk.models)
    before = published(disk)
    with open(tiny_disk / "filler", "wb", buffering=0) as filler:  # fill every last block
        with pytest.raises(OSError) as full:
            while True:
                filler.write(b"\0" * 4096)
        assert full.value.errno == errno.ENOSPC
    result = project.run("run", "--force", "jobs/iris_a.toml", "--outputs", disk.outputs, "--models", disk.models)
    assert result.returncode == 1, result.stderr
    assert "  iris_a: failed in " in result.stdout
    assert f"cannot write {disk.outputs / 'iris_a'}/..v-" in result.stdout
    assert "No space left on device; the previous version is untouched" in result.stdout
    assert published(disk) == before and not temporaries(disk)
    assert len([p for p in (disk.outputs / "iris_a").iterdir() if p.name.startswith("..v-")]) == 1
    assert "Traceback" not in result.stderr


def test_stage_on_a_full_disk_removes_the_temporary_and_keeps_the_target(tmp_path):
    """ENOSPC simulated at the library level: the write function fails half way, as a full disk
    would make it (the tmpfs test above does it for real where mounting is allowed)."""
    target = tmp_path / "embedding.csv"
    target.write_text("previous\n")

    def half_then_full(temp):
        temp.write_text("half a fi")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def wrapped_by_a_library(temp):  # Keras and h5py wrap the OSError in their own types
        try:
            half_then_full(temp)
        except OSError as exc:
            raise RuntimeError("could not save") from exc

    for write in (half_then_full, wrapped_by_a_library):
        with pytest.raises(OutputError, match=f"cannot write {target}: No space left on device; "
                                              f"the previous version is untouched"):
            outputs.stage(target, write)
        assert target.read_text() == "previous\n"
        assert [p.name for p in tmp_path.iterdir()] == ["embedding.csv"]


def test_stale_temporaries_of_a_live_writer_are_left_alone(tmp_path):
    """Two runs on different outputs folders may share Models/: only dead writers' files go."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = tmp_path / ".iris.tmp-999999999-0badf00d.keras"
        alive = tmp_path / f".wine.tmp-{sleeper.pid}-0badf00d.keras"
        history = tmp_path / "history" / ".x-manifest.tmp-999999999-00000000.json"
        history.parent.mkdir()
        for path in (dead, alive, history):
            path.write_bytes(b"partial")
        assert sorted(outputs.remove_stale_temporaries(tmp_path)) == sorted([dead, history])
        assert alive.exists() and not dead.exists() and not history.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_signal_during_the_renames_is_delivered_after_the_last_one(tmp_path, monkeypatch):
    """SIGTERM between two renames would leave new files beside the old manifest: it waits.
    The signal is sent from inside the first rename, the one moment a real run cannot aim at."""
    targets = [tmp_path / "embedding.csv", tmp_path / "manifest.json"]
    for target in targets:
        target.write_text("old\n")
    staged = [(outputs.stage(t, lambda temp: temp.write_text("new\n")), t) for t in targets]

    class Stop(BaseException):
        pass

    def stop(signum, frame):
        raise Stop()

    rename = os.replace

    def rename_then_signal(source, target):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # a handler not deferred would run here, between the two renames
        rename(source, target)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        monkeypatch.setattr(os, "replace", rename_then_signal)
        with pytest.raises(Stop):
            outputs.publish(staged)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert [t.read_text() for t in targets] == ["new\n", "new\n"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["embedding.csv", "manifest.json"]


def test_a_bug_outside_any_job_exits_70_with_its_traceback(tmp_path):
    """Python's own exit status for an uncaught exception is 1, which cron would read as "a job
    failed". The bug is planted in a real subprocess: the real `main` must turn it into 70."""
    script = ("import sys, reducer.cli as cli\n"
              "cli.COMMANDS['datasets'] = lambda args: {}['planted bug']\n"
              "sys.exit(int(cli.main(['datasets'])))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 70, result.stderr
    assert "internal error (a bug in reducer" in result.stderr
    assert "Traceback" in result.stderr and "KeyError: 'planted bug'" in result.stderr
