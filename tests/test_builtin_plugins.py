"""The built-in datasets, tested as any plugin's author would test theirs: reducer.testing's
helper takes each through registration, `reducer check --data` and a tiny training."""

import pytest

from conftest import DATA, TEST_PLUGINS

from reducer.testing import PluginCheckFailed, check_dataset


def test_iris_through_registration_check_and_training(reducer_dataset):
    result = reducer_dataset("iris")
    assert result.source.endswith("iris.py") and (result.rows, result.columns) == (150, 4)
    assert result.manifest["dataset"]["label_column"] == "species"
    assert len(result.manifest["training"]["loss_per_epoch"]) == 2


def test_uci_digits_through_registration_check_and_training(reducer_dataset):
    result = reducer_dataset("uci_digits", epochs=1)
    assert (result.rows, result.columns) == (1797, 64) and result.manifest["dataset"]["normalize"] == "fixed"


def test_csv_through_registration_check_and_training(reducer_dataset):
    result = reducer_dataset("csv", {"path": DATA / "wine.csv", "label": "cultivar", "id": "sample_id"})
    assert (result.rows, result.columns) == (178, 13) and result.manifest["dataset"]["id_column"] == "sample_id"


def test_a_drop_in_plugin_checked_without_training(tmp_path):
    result = check_dataset("squares", {"rows": 30}, plugins=[TEST_PLUGINS / "good"], folder=tmp_path, train=False)
    assert (result.rows, result.columns, result.manifest) == (30, 2, None)
    assert (tmp_path / "jobs" / "squares.toml").read_text().startswith('[dataset]\nname = "squares"\nrows = 30\n')


@pytest.mark.parametrize("name, options, expected", [
    ("nope", {}, "registration: unknown dataset 'nope'"),
    ("csv", {"path": "missing.csv"}, "reducer check: "),
    ("csv", {"path": DATA / "wine.csv", "label": "colour"}, "reducer check --data: "),
])
def test_each_failing_step_is_named_in_one_line(tmp_path, name, options, expected):
    with pytest.raises(PluginCheckFailed) as failed:
        check_dataset(name, options, folder=tmp_path, train=False)
    assert str(failed.value).startswith(expected) and "\n" not in str(failed.value), str(failed.value)
