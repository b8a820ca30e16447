"""Testing a plugin: its dataset through registration, `reducer check --data` and a tiny training.

For a plugin's own tests (pytest or any runner)::

    from reducer.testing import check_dataset

    def test_my_dataset(tmp_path):
        result = check_dataset("spirals", {"rows": 120}, plugins=["plugins"], folder=tmp_path)
        assert result.rows == 120

`check_dataset` raises `PluginCheckFailed` (an AssertionError, so pytest shows it as a failed
test) with reducer's own one-line message at the first step that fails: the dataset is not
registered (or its plugin is broken), `reducer check --data` refuses the job, or the tiny
training does not publish. With `pytest_plugins = ["reducer.testing"]` in a conftest.py, the
`reducer_dataset` fixture is `check_dataset` with `folder` set to the test's own tmp_path.

It writes a small project (jobs/<name>.toml, outputs/, Models/) in `folder` and runs the same
library calls as the command line (`check_jobs`, `run_jobs`). The training imports TensorFlow.
"""

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

__all__ = ["DatasetCheck", "PluginCheckFailed", "check_dataset", "reducer_dataset"]


class PluginCheckFailed(AssertionError):
    """One step of `check_dataset` failed; the message is reducer's own line for it."""


@dataclass(frozen=True)
class DatasetCheck:
    """What `check_dataset` found: the registered dataset and where it came from, the rows and
    columns `check --data` read, and the manifest the tiny training published (None when
    `train=False`)."""

    dataset: Any  # the reducer.Dataset as registered
    source: str  # the plugin's file, folder or "package NAME VERSION"
    job_path: Path
    rows: int
    columns: int
    manifest: Optional[dict]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (str, Path)):
        return json.dumps(str(value))  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"option value {value!r}: expected text, a number, true/false or a list")


def job_text(name: str, options: Mapping[str, Any], epochs: int, batch_size: int) -> str:
    """A job file for dataset `name` with `options` in its [dataset] table, training briefly."""
    lines = ["[dataset]", f"name = {_toml_value(name)}"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in options.items()]
    lines += ["", "[training]", f"epochs = {epochs}", f"batch_size = {batch_size}", f"log_every = {epochs}"]
    return "\n".join(lines) + "\n"


def check_dataset(name: str, options: Optional[Mapping[str, Any]] = None, *, plugins: Iterable[Any] = (),
                  folder: Any = None, train: bool = True, epochs: int = 2, batch_size: int = 32) -> DatasetCheck:
    """Run dataset `name` through registration, `reducer check --data` and (train=True) a tiny
    training of `epochs` epochs, as `reducer` would. options: the job's [dataset] options (paths
    relative to `folder`/jobs, or absolute); plugins: plugin folders (as --plugins), besides
    the built-ins and installed packages; folder: where the small project is written (default:
    a new temporary folder). Raises PluginCheckFailed naming the step that failed."""
    from reducer.datasets.registry import load_registry
    from reducer.errors import ReducerError
    from reducer.run.runner import plan, run_jobs
    from reducer.tables import storage

    plugin_dirs = [Path(p) for p in plugins]
    missing = [str(p) for p in plugin_dirs if not p.is_dir()]
    if missing:
        raise PluginCheckFailed(f"no such plugin folder: {', '.join(missing)}")
    registry = load_registry(plugin_dirs)
    if name not in registry.datasets:
        try:
            registry.get(name)
        except Exception as exc:  # the registry's own line: unknown, skipped or registered twice
            problems = "; ".join(registry.problems)
            raise PluginCheckFailed(f"registration: {exc}" + (f" (plugin problems: {problems})" if problems else ""))
    registered = registry.datasets[name]
    root = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="reducer-plugin-check-"))
    (root / "jobs").mkdir(parents=True, exist_ok=True)
    job_path = root / "jobs" / f"{name}.toml"
    job_path.write_text(job_text(name, dict(options or {}), epochs, batch_size), encoding="utf-8")

    # What `reducer check --data` runs (runner.check_jobs): the job checked, every row read.
    the_plan = plan([job_path], plugin_dirs)
    if the_plan.failed:
        raise PluginCheckFailed(f"reducer check: {the_plan.failed[0].reason}")
    [(job, dataset, source)] = the_plan.ready
    try:
        rows, columns, _ = storage.validate(job, dataset, source)
    except ReducerError as exc:
        raise PluginCheckFailed(f"reducer check --data: {exc}") from None
    manifest = None
    if train:
        [ran] = run_jobs([job_path], outputs=root / "outputs", models=root / "Models", plugin_dirs=plugin_dirs,
                         report=False)
        if ran.status != "ok":
            raise PluginCheckFailed(f"reducer run: {ran.status}: {ran.reason}")
        manifest = ran.manifest
    return DatasetCheck(registered.dataset, registered.source, job_path, rows, columns, manifest)


def _fixture(function: Callable[..., Any]) -> Callable[..., Any]:
    try:
        import pytest
    except ImportError:  # no pytest: the function alone is the helper
        return function
    return pytest.fixture(function)


@_fixture
def reducer_dataset(tmp_path: Path) -> Callable[..., DatasetCheck]:
    """pytest fixture (`pytest_plugins = ["reducer.testing"]`): check_dataset writing its small
    project under the test's tmp_path."""
    def check(name: str, options: Optional[Mapping[str, Any]] = None, *, plugins: Sequence[Any] = (),
              train: bool = True, epochs: int = 2, batch_size: int = 32) -> DatasetCheck:
        return check_dataset(name, options, plugins=plugins, folder=tmp_path / name, train=train, epochs=epochs,
                             batch_size=batch_size)
    return check
