"""SIGTERM and Ctrl-C while a job trains (reducer/stopping.py): the training loops stop between two
compiled calls, the run exits 143 (or 130) with its one line, and nothing of the job is published.

Real signals: sent to this process for the hold itself, to a real `reducer run` for the loops.
"""

import json
import os
import signal
import subprocess
import time

import pytest

from test_cron import start, wait_for_line
from reducer import stopping


class Stop(BaseException):
    pass


@pytest.fixture
def stop_on_sigterm():
    """SIGTERM raises Stop in this process, as cli's handler raises Terminated; put back after."""
    def stop(signum, frame):
        raise Stop(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    yield
    signal.signal(signal.SIGTERM, previous)


def signal_myself(number=signal.SIGTERM):
    os.kill(os.getpid(), number)
    time.sleep(0.05)  # a handler not held would run here


def test_a_signal_while_held_waits_for_the_next_check(stop_on_sigterm):
    handler = signal.getsignal(signal.SIGTERM)
    with stopping.held(second_at_once=True):
        signal_myself()  # Python lines run on and nothing is raised: the signal is only noted
        with pytest.raises(Stop):
            stopping.check()
        assert signal.getsignal(signal.SIGTERM) is handler  # delivered by the handler held back
    assert signal.getsignal(signal.SIGTERM) is handler
    stopping.check()  # nothing noted, no hold: nothing happens


def test_a_check_with_nothing_noted_goes_on_and_a_signal_after_the_hold_acts_at_once(stop_on_sigterm):
    with stopping.held(second_at_once=True):
        stopping.check()
    with pytest.raises(Stop):
        signal_myself()


def test_a_second_sigterm_in_training_is_delivered_at_once(stop_on_sigterm):
    with stopping.held(second_at_once=True):
        signal_myself()
        with pytest.raises(Stop):
            signal_myself()  # no check() reached: a stop that cannot wait still gets through


def test_the_publication_switch_holds_every_signal_until_its_end(stop_on_sigterm):
    reached_the_end = False
    with pytest.raises(Stop):
        with stopping.held():
            signal_myself()
            signal_myself()  # not at once: the switch must finish
            reached_the_end = True
    assert reached_the_end


def test_an_ignored_signal_stays_ignored_and_the_hold_goes_on():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with stopping.held(second_at_once=True):
            signal_myself(signal.SIGINT)
            stopping.check()  # handed to SIG_IGN: nothing happens, and the hold is back
            assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


# ---------------------------------------------------------------- a real run, stopped while training

LONG = "epochs = 1000000\nlog_every = 1\n"  # far longer than any test waits: it is stopped


def iris(project, name, model=""):
    project.copy_data("iris.csv")
    project.job(name, f'[dataset]\nname = "iris"\npath = "../Data/iris.csv"\n[model]\n{model}\n'
                      f'[training]\nbatch_size = 16\n{LONG}')


@pytest.mark.parametrize("model, line, number, code", [
    # as training starts: the model, the spectral start, the loop's compilation
    ("", "[iris] neighbour graph:", signal.SIGTERM, 143),
    # several chunks in (100 epochs a call)
    ("", "[iris] epoch =  300 loss", signal.SIGTERM, 143),
    # the reconstruction objective's loop (400 epochs a call), and Ctrl-C there
    ('objective = "reconstruction"', "[iris] epoch =    1 loss", signal.SIGTERM, 143),
    ('objective = "reconstruction"', "[iris] epoch =  800 loss", signal.SIGINT, 130),
], ids=["neighbours-as-training-starts", "neighbours-in-the-loop", "reconstruction", "reconstruction-ctrl-c"])
def test_a_signal_while_training_stops_the_run_cleanly(project, model, line, number, code):
    iris(project, "iris", model)
    process = start(project, "run", "jobs/iris.toml")
    text = signal_after(process, [line], number)
    assert process.returncode == code, text
    said = "terminated by SIGTERM" if number == signal.SIGTERM else "interrupted"
    assert f"reducer: {said}; published outputs are intact" in text, text
    assert_stopped_cleanly(project, text, ["iris"])
    assert_attempt_recorded(project, "iris", said)


def test_a_sigterm_while_worker_processes_train_stops_the_run_cleanly(project):
    """--workers: the parent stops its workers (SIGTERM), each stops its loop at its next check and
    removes what it staged; the run exits 143 with its one line and nothing is published."""
    iris(project, "one")
    iris(project, "two")
    process = start(project, "run", "--workers", "2", "jobs/one.toml", "jobs/two.toml")
    text = signal_after(process, ["[one] epoch =", "[two] epoch ="], signal.SIGTERM)
    assert process.returncode == 143, text
    assert "reducer: terminated by SIGTERM; published outputs are intact" in text, text
    assert "killed by" not in text, text
    assert_stopped_cleanly(project, text, ["one", "two"])
    for name in ("one", "two"):
        assert_attempt_recorded(project, name, "terminated by SIGTERM")


def signal_after(process, lines, number):
    """Send `number` once every line of `lines` is in the run's log; its whole log once it exits."""
    try:
        for line in lines:
            wait_for_line(process, line)
        process.send_signal(number)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            # Still running: SIGABRT makes Python's faulthandler (PYTHONFAULTHANDLER, conftest) write
            # every thread's stack into the log, so the failure shows where it hung.
            process.send_signal(signal.SIGABRT)
            process.wait(timeout=30)
            pytest.fail(f"the run had not stopped 120 s after the signal:\n{process.log_path.read_text()[-6000:]}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.log_path.read_text()


def assert_attempt_recorded(project, name, said):
    """The stopped attempt is in status.json and history/, as every attempt is, whatever stops it."""
    status = json.loads((project.outputs / name / "status.json").read_text())
    assert status["status"] == "failed" and status["reason"] == f"{said} while it ran; nothing published", status
    assert list((project.outputs / name / "history").iterdir())


def assert_stopped_cleanly(project, text, jobs):
    """No traceback, nothing of `jobs` published, no temporaries left."""
    assert "Traceback" not in text and "internal error" not in text, text
    for name in jobs:
        assert not (project.outputs / name / "manifest.json").exists()
        assert not (project.models / f"{name}.keras").exists()
    leftovers = [p for p in project.root.rglob("*") if ".tmp-" in p.name or p.name.startswith("..v-")]
    assert not leftovers, leftovers
