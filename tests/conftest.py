"""Shared test helpers: a small real project in a temporary folder, and the real CLI."""

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "Data"
TEST_DATA = Path(__file__).resolve().parent / "data"
pytest_plugins = ["reducer.testing"]  # the reducer_dataset fixture, as a plugin author would use it

TEST_PLUGINS = Path(__file__).resolve().parent / "plugins"


# The suite runs in one process per core (pyproject.toml's addopts: pytest-xdist, --dist loadfile,
# --no-loadscope-reorder): each file goes whole to the next free worker, in collection order. The
# longest files go first, so the workers finish together instead of one starting a long file when
# the other is nearly done (longest first by CPU seconds, measured for the whole suite on 2 cores:
# every file above ~10 CPU s, benchmarks/README.md "The test suite's time"; test_stopping.py's 37 s
# had been left near the end by the alphabet). The rest keep their alphabetical order, each under
# ~10 s. Only the order of files changes: each file's tests still run in their written order, in
# one process.
LONGEST_FIRST = ("test_benchmarks.py", "test_trust.py", "test_baselines.py", "test_continuity.py",
                 "test_compile_cache.py", "test_publication.py", "test_parallel.py", "test_cron.py",
                 "test_estimator.py", "test_onnx.py", "test_stopping.py", "test_quality.py", "test_plugin_cache.py",
                 "test_run.py", "test_init.py", "test_hostile.py", "test_keep.py", "test_train.py", "test_tables.py",
                 "test_published.py", "test_report.py", "test_readme.py", "test_plugin_options.py", "test_stacking.py",
                 "test_package.py", "test_plugin_folders.py", "test_builtin_plugins.py", "test_big_tables.py")


def pytest_collection_modifyitems(items: "list[pytest.Item]") -> None:
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: within a file as written


# The environment as the tests started, before any test imported TensorFlow in this process
# (tf_setup sets TF_CPP_MIN_LOG_LEVEL and XLA_FLAGS for itself): a command's subprocess must see
# what cron would give it, not settings this process made for its own TensorFlow.
STARTING_ENVIRONMENT = dict(os.environ)


# One compiled-code cache for every command run_cli starts (REDUCER_XLA_CACHE_DIR; the xdist
# workers share it, as the cache is made to be shared): a test's first night loads the training
# loop an earlier test compiled instead of compiling it again (~2 of the ~8 CPU seconds of a
# small `reducer run`). The numbers are the same either way (test_compile_cache compares the
# bytes). A test module that looks at the cache in its own outputs folder (test_compile_cache,
# test_cron) sets OWN_COMPILE_CACHE = True: its commands keep the cache in outputs/.cache/.xla,
# as without the variable.
COMPILE_CACHE = {"folder": None}


@pytest.fixture(scope="module", autouse=True)
def shared_compile_cache(request, tmp_path_factory):
    """Module-scoped and autouse, so it is in place before any module fixture's first night."""
    root = tmp_path_factory.getbasetemp()
    root = root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root  # the workers' common folder
    own = getattr(request.module, "OWN_COMPILE_CACHE", False)
    COMPILE_CACHE["folder"] = None if own else root / "compile-cache"
    yield COMPILE_CACHE["folder"]
    COMPILE_CACHE["folder"] = None


def run_cli(*args, cwd=None, env=None, timeout=600, input=None):
    """`python -m reducer ARGS` in a subprocess with no TTY, as cron runs it."""
    full_env = {key: value for key, value in STARTING_ENVIRONMENT.items() if key != "REDUCER_PLUGINS"}
    if COMPILE_CACHE["folder"] is not None:
        full_env["REDUCER_XLA_CACHE_DIR"] = str(COMPILE_CACHE["folder"])
    # A run that dies of a fatal signal (one SIGSEGV after training in a clean-clone CI run, not
    # reproduced in 26 reruns) then prints every thread's Python stack in the test's failure.
    full_env.update({"PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1", **(env or {})})
    return subprocess.run([sys.executable, "-m", "reducer", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def assert_one_line(result, *parts, code=1):
    """Exit `code`, no traceback, and a line of output holding every part; returns that line."""
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert "Traceback" not in output and "internal error" not in output, output
    lines = [line for line in output.splitlines() if all(part in line for part in parts)]
    assert lines, f"no line with {parts} in:\n{output}"
    return lines[0]


class Project:
    """A project folder laid out as the README says: jobs/, Data/, plugins/, outputs/, Models/."""

    def __init__(self, root):
        self.root = Path(root)
        for name in ("jobs", "Data", "plugins"):
            (self.root / name).mkdir(parents=True, exist_ok=True)

    def copy_data(self, name, source=None):
        target = self.root / "Data" / name
        shutil.copy(source or DATA / name, target)
        return target

    def job(self, name, text):
        path = self.root / "jobs" / f"{name}.toml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def iris_job(self, name="iris", epochs=20, extra="", objective=None):
        """The iris job; `objective` names one ([model] objective), else reducer picks (neighbours).
        "reconstruction" (the seed's) trains in about two thirds of the neighbour objective's CPU
        time: for tests whose point does not depend on the objective."""
        self.copy_data("iris.csv")
        model = f'[model]\n            objective = "{objective}"' if objective else ""
        return self.job(name, f"""
            [dataset]
            name = "iris"
            path = "../Data/iris.csv"
            {model}
            [training]
            epochs = {epochs}
            batch_size = 16
            log_every = 5
            {extra}
            """)

    @property
    def outputs(self):
        return self.root / "outputs"

    @property
    def models(self):
        return self.root / "Models"

    def run(self, *args, **kwargs):
        return run_cli(*args, cwd=kwargs.pop("cwd", self.root), **kwargs)


@pytest.fixture
def project(tmp_path):
    return Project(tmp_path / "project")


def readme_block(marker):
    """The README's fenced python or toml block that contains `marker`, verbatim."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    for block in re.findall(r"```(?:python|toml)\n(.*?)```", text, flags=re.S):
        if marker in block:
            return block
    raise AssertionError(f"no code block with {marker!r} in README.md")
