"""Plugin discovery: built-ins, drop-in folders, entry points, duplicates, broken plugins."""

import csv
import sys
import textwrap

from conftest import REPO, TEST_PLUGINS, run_cli

from reducer.datasets.registry import load_registry


def test_builtins_are_found_as_plugin_files():
    registry = load_registry()
    assert {"uci_digits", "iris", "csv"} <= set(registry.datasets)
    assert registry.datasets["iris"].source.endswith("plugins/iris.py")
    assert registry.problems == []


def test_drop_in_folder_adds_datasets(tmp_path):
    registry = load_registry([TEST_PLUGINS / "good"])
    assert registry.datasets["squares"].source == str(TEST_PLUGINS / "good" / "squares.py")
    frame = registry.get("squares").load({"rows": 5})
    assert list(frame["x2"]) == [0, 1, 4, 9, 16]


def test_environment_variable_adds_folders(monkeypatch):
    monkeypatch.setenv("REDUCER_PLUGINS", str(TEST_PLUGINS / "good"))
    assert "squares" in load_registry().datasets


def test_broken_plugin_is_named_and_others_still_work():
    registry = load_registry([TEST_PLUGINS / "broken"])
    assert "cubes" in registry.datasets and "iris" in registry.datasets
    exits, raises = registry.problems
    assert "raises_on_import.py" in raises and "broken on purpose" in raises
    assert "exits_on_import.py" in exits and "SystemExit" in exits


def test_duplicate_dataset_name_names_both_sources():
    registry = load_registry([TEST_PLUGINS / "duplicate"])
    [problem] = registry.problems
    assert "'iris'" in problem and "plugins/iris.py" in problem and "another_iris.py" in problem
    try:
        registry.get("iris")
    except Exception as exc:
        assert "registered twice" in str(exc)
    else:
        raise AssertionError("a duplicated dataset name must not resolve to either plugin")


def test_drop_in_named_csv_does_not_shadow_the_standard_module():
    registry = load_registry([TEST_PLUGINS / "shadow"])
    assert "shadow_csv" in registry.datasets
    assert not hasattr(sys.modules["csv"], "SHADOW_MARK") and hasattr(csv, "DictReader")


def test_entry_point_plugin_from_an_installed_package(tmp_path, monkeypatch):
    # A real installed distribution: a package plus its .dist-info with entry_points.txt.
    site = tmp_path / "site"
    (site / "rings_plugin").mkdir(parents=True)
    (site / "rings_plugin" / "__init__.py").write_text(textwrap.dedent("""
        import pandas as pd
        import reducer

        @reducer.hookimpl
        def register_datasets(register):
            register(reducer.Dataset(name="rings", description="from a package",
                                     load=lambda options: pd.DataFrame({"a": [1.0, 2.0], "b": [2.0, 1.0]})))
        """))
    info = site / "rings_plugin-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rings-plugin\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text("[reducer]\nrings = rings_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    registry = load_registry()
    assert registry.datasets["rings"].source == "package rings-plugin 1.2.3"

    listed = run_cli("datasets", env={"PYTHONPATH": str(site)})
    assert listed.returncode == 0, listed.stderr
    assert "rings" in listed.stdout and "package rings-plugin 1.2.3" in listed.stdout


def test_datasets_command_lists_name_source_and_description(tmp_path):
    result = run_cli("datasets", "--plugins", TEST_PLUGINS / "good", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("uci_digits", "iris", "csv", "squares"):
        assert name in result.stdout
    assert "x and x squared" in result.stdout and "squares.py" in result.stdout
    assert "tensorflow" not in result.stderr.lower()


def test_datasets_command_reports_a_broken_plugin_and_still_lists(tmp_path):
    result = run_cli("datasets", "--plugins", TEST_PLUGINS / "broken", cwd=tmp_path)
    assert result.returncode == 1
    assert "raises_on_import.py" in result.stderr and "Traceback" not in result.stderr
    assert "cubes" in result.stdout


def test_identical_copy_of_a_builtin_in_another_folder_is_one_plugin(tmp_path):
    # A second checkout's plugins/ beside the installed reducer's: same file, not a duplicate.
    copy = tmp_path / "plugins"
    copy.mkdir()
    (copy / "iris.py").write_bytes((REPO / "plugins" / "iris.py").read_bytes())
    registry = load_registry([copy])
    assert registry.problems == [] and registry.datasets["iris"].source.endswith("plugins/iris.py")


def test_the_hookspecs_example_runs_verbatim(tmp_path):
    from reducer.datasets import hookspecs

    doc = hookspecs.__doc__
    example = textwrap.dedent(doc[doc.index("Example, runnable verbatim"):].split("::\n", 1)[1])
    (tmp_path / "squares.py").write_text(example)
    registry = load_registry([tmp_path])
    assert registry.problems == []
    assert list(registry.get("squares").load({"rows": 4})["x2"]) == [0, 1, 4, 9]
    assert registry.get("squares").options["rows"].default == 50
