"""A closed pipe is not a bug: `reducer datasets | head -1`, `reducer history --json JOB | head`
and `reducer encode ... -o - | head` end quietly, with no traceback and no "internal error",
and exit 141 (128 + SIGPIPE, as the shell reports a command that a closed pipe stopped).
Real pipes: a reader that is gone before reducer writes, and a reader that stops after one line."""

import os
import subprocess
import sys

import pytest

from conftest import STARTING_ENVIRONMENT, Project

CLOSED_PIPE = 141


def environment():
    env = {key: value for key, value in STARTING_ENVIRONMENT.items() if key != "REDUCER_PLUGINS"}
    env["PYTHONUNBUFFERED"] = "1"  # every print is its own write, as on a terminal
    return env


def gone_reader(args, cwd):
    """Run reducer with standard output a pipe whose reading end is closed before it starts:
    every write to it fails with EPIPE. (return code, stderr)"""
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run([sys.executable, "-m", "reducer", *map(str, args)], cwd=cwd, env=environment(),
                                stdout=write, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                timeout=300)
    finally:
        os.close(write)
    return result.returncode, result.stderr


def head_one(args, cwd):
    """Run reducer into a pipe, read its first line and close the pipe, as `| head -1` does.
    (first line, return code, stderr)"""
    process = subprocess.Popen([sys.executable, "-m", "reducer", *map(str, args)], cwd=cwd, env=environment(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    first = process.stdout.readline().decode()
    process.stdout.close()
    stderr = process.communicate(timeout=300)[1].decode()
    return first, process.returncode, stderr


def assert_quiet(code, stderr, codes=(CLOSED_PIPE,)):
    assert code in codes, (code, stderr)
    assert "Traceback" not in stderr and "internal error" not in stderr and "Broken pipe" not in stderr, stderr
    assert "Exception ignored" not in stderr and "BrokenPipeError" not in stderr, stderr


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A project with one published iris map (a few epochs: the map is not the point) and an
    input of 30,000 rows to encode, far more than a pipe holds."""
    project = Project(tmp_path_factory.mktemp("pipes") / "project")
    project.iris_job(epochs=3, objective="reconstruction")  # nor is the objective
    result = project.run("run", "jobs/iris.toml")
    assert result.returncode == 0, result.stderr
    lines = (project.root / "Data" / "iris.csv").read_text().splitlines()
    big = project.root / "Data" / "big.csv"
    big.write_text("\n".join([lines[0]] + lines[1:] * 200) + "\n")
    return project


def test_datasets_into_a_closed_pipe_ends_quietly(tmp_path):
    assert_quiet(*gone_reader(["datasets"], tmp_path))
    first, code, stderr = head_one(["datasets"], tmp_path)
    assert first.split()[0] == "csv"  # what `| head -1` shows
    assert code in (0, CLOSED_PIPE) and "Traceback" not in stderr and "internal error" not in stderr, stderr


def test_help_into_a_closed_pipe_ends_quietly(tmp_path):
    assert_quiet(*gone_reader(["run", "--help"], tmp_path), codes=(0, CLOSED_PIPE))  # argparse says nothing


def test_history_json_into_a_closed_pipe_ends_quietly(published):
    assert_quiet(*gone_reader(["history", "--json", "iris"], published.root))
    first, code, stderr = head_one(["history", "--json", "iris"], published.root)
    assert first == "{\n"
    assert code in (0, CLOSED_PIPE) and "Traceback" not in stderr and "internal error" not in stderr, stderr


def test_encode_to_standard_output_into_a_closed_pipe_ends_quietly(published):
    args = ["encode", "Data/big.csv", "--model", "Models/iris.onnx", "-o", "-"]
    assert_quiet(*gone_reader(args, published.root))
    first, code, stderr = head_one(args, published.root)
    assert first.startswith("id,label,component_1,component_2")
    assert_quiet(code, stderr)  # 30,000 rows cannot all fit in the pipe: the reader's going is felt
    assert not list(published.root.glob("Data/*.tmp*")) and not list(published.root.glob("*.tmp*"))
