"""reducer/defaults.py: the neighbour objective's settings derived from a table's size (issue 14).

Unit tests of the arithmetic at a few sizes, and one real run of a job naming only its dataset
(iris, fewer epochs to stay short) whose map must beat PCA's trustworthiness."""

import ast
import math

import pytest

import reducer
from conftest import REPO
from reducer.defaults import (DEFAULT_NORMALIZE, NARROW_DEEP_ROWS, NARROW_HIDDEN, NARROW_RECONSTRUCTION_WEIGHT,
                              RECONSTRUCTION_WEIGHT, SMALL_EPOCHS, SMALL_ROWS, neighbor_settings)

SIZES = [(2, 1), (10, 3), (150, 4), (178, 13), (569, 30), (1797, 64), (12_000, 40), (100_000, 50),
         (1_000_000, 100), (5_000_000, 1000)]
ACTIVATIONS = ("sigmoid", "relu", "tanh", "elu", "selu", "gelu", "softplus", "linear")


def test_module_imports_nothing_but_math():
    tree = ast.parse((REPO / "reducer" / "defaults.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"math"}


@pytest.mark.parametrize("rows, columns", SIZES)
def test_settings_are_valid_job_values(rows, columns):
    settings = neighbor_settings(rows, columns)
    assert set(settings) == {"model", "training"}
    model, training = settings["model"], settings["training"]
    assert model["objective"] == "neighbors"
    assert model["hidden"] and all(isinstance(w, int) and 0 < w <= 512 for w in model["hidden"])
    assert model["activation"] in ACTIVATIONS and model["latent_activation"] in ACTIVATIONS
    assert isinstance(model["n_neighbors"], int) and 2 <= model["n_neighbors"] <= 100
    assert 0 <= model["min_dist"] < 1
    assert model["reconstruction_weight"] > 0  # the decoder is trained: the model stays an autoencoder
    for key in ("epochs", "batch_size", "negative_samples"):
        assert isinstance(training[key], int) and training[key] > 0, key
    assert 0 < training["learning_rate"] <= 0.1
    # Types a job file's TOML would carry (the job reader checks them the same way).
    assert isinstance(model["min_dist"], float) and isinstance(training["learning_rate"], float)


def test_settings_are_plain_values_and_fresh_each_call():
    first = neighbor_settings(1797, 64)
    first["model"]["hidden"].append(1)
    assert neighbor_settings(1797, 64) != first


def test_small_tables_take_small_steps_and_loose_packing():
    iris, digits = neighbor_settings(150, 4), neighbor_settings(1797, 64)
    assert iris["training"]["batch_size"] < digits["training"]["batch_size"]
    assert iris["training"]["negative_samples"] <= digits["training"]["negative_samples"]
    assert iris["model"]["min_dist"] > digits["model"]["min_dist"]


def test_tiny_tables_get_one_hidden_layer_and_few_neighbours():
    """Issue 23: two tanh layers of 96 put whole groups of a 60-row table on one point each; 10
    neighbours on a 15-row table of 5-row groups reach into the other groups."""
    tiny, small, iris = neighbor_settings(15, 5), neighbor_settings(60, 5), neighbor_settings(150, 4)
    assert tiny["model"]["hidden"] == small["model"]["hidden"] == [64]
    assert tiny["model"]["n_neighbors"] == 5 and small["model"]["n_neighbors"] == 10
    assert iris["model"]["hidden"] == [96, 96]  # the tables the settings were tuned on keep theirs


def test_narrow_tables_get_a_third_layer_and_half_the_decoders_weight():
    """Issue 23, seventh session: tables of at most 8 columns from 500 to 20,000 rows train three
    hidden layers of 96 with the decoder's weight 10 (the 572 x 8 table's kNN accuracy over
    seeds 1-8: 0.784 against 0.772 with two layers and 20; either change alone gained nothing);
    below 500 rows three tanh layers stacked whole groups of a 150- or 200-row table of three
    separated groups on one point, so smaller, wider and big tables keep theirs."""
    for rows, columns in ((NARROW_DEEP_ROWS, 4), (572, 8), (800, 6), (20_000, 8)):
        model = neighbor_settings(rows, columns)["model"]
        assert model["hidden"] == NARROW_HIDDEN and model["activation"] == "tanh", (rows, columns)
        assert model["reconstruction_weight"] == NARROW_RECONSTRUCTION_WEIGHT < RECONSTRUCTION_WEIGHT
    for rows, columns, hidden in ((120, 5, [64]), (150, 4, [96, 96]), (342, 4, [96, 96]),
                                  (NARROW_DEEP_ROWS - 1, 8, [96, 96]), (178, 13, [96, 96]), (572, 9, [96, 96]),
                                  (1797, 64, [96, 96]), (189, 500, [96, 96]), (20_001, 8, [96, 96, 96])):
        model = neighbor_settings(rows, columns)["model"]
        assert model["hidden"] == hidden and model["reconstruction_weight"] == RECONSTRUCTION_WEIGHT, (rows, columns)


def test_monotonic_in_rows():
    rows = [100, 150, 300, 600, 1200, 1797, 3000, 10_000, 30_000, 100_000, 1_000_000]
    settings = [neighbor_settings(r, 20) for r in rows]
    batch = [s["training"]["batch_size"] for s in settings]
    negatives = [s["training"]["negative_samples"] for s in settings]
    min_dist = [s["model"]["min_dist"] for s in settings]
    assert batch == sorted(batch) and negatives == sorted(negatives)
    assert min_dist == sorted(min_dist, reverse=True)
    # Each row is visited enough; the optimiser steps are bounded and grow with the rows.
    steps = [s["training"]["epochs"] * math.ceil(r / min(s["training"]["batch_size"], r))
             for r, s in zip(rows, settings)]
    # Below SMALL_ROWS, at most SMALL_EPOCHS epochs (issue 23): fewer steps there.
    assert all(5000 <= step <= 40_000 for r, step in zip(rows, steps) if r >= SMALL_ROWS), steps
    assert all(s["training"]["epochs"] <= SMALL_EPOCHS for r, s in zip(rows, settings) if r < SMALL_ROWS)
    assert all(later >= 0.99 * earlier for earlier, later in zip(steps, steps[1:])), steps  # ceil's rounding aside
    # At least 40 epochs, unless that would pass the step cap (a million rows: 20 epochs of 1,954 steps).
    assert all(s["training"]["epochs"] >= 40 or step >= 35_000 for s, step in zip(settings, steps))
    assert all(s["training"]["epochs"] >= 10 for s in settings)



def test_big_tables_take_a_smaller_learning_rate_and_a_deeper_encoder():
    """Up to 20,000 rows 0.01 (issue 23: at 0.02 a 189 x 500 map collapsed on one seed of eight)
    and [96, 96]; above, 0.005 and [96, 96, 96] (issue 22:
    tens of thousands of steps at 0.02 left a 100,000-row map of ten far-apart clusters worse
    than PCA's; two layers of 96 could not part the 100,000 x 50 table's clusters as umap-learn
    does)."""
    sizes = (1797, 20_000, 20_001, 30_000, 100_000, 1_000_000)
    settings = [neighbor_settings(r, 50) for r in sizes]
    rates = [s["training"]["learning_rate"] for s in settings]
    assert rates[0] == rates[1] == 0.01
    assert rates[2:] == [0.005] * 4
    assert [s["model"]["hidden"] for s in settings] == [[96, 96]] * 2 + [[96, 96, 96]] * 4
    # 100,000 rows: 40 epochs of 196 steps; a million: the step cap's 20 of 1,954.
    assert [s["training"]["epochs"] for s in settings[4:]] == [40, 20]


def test_wide_tables_take_a_learning_rate_in_proportion_to_their_columns():
    """Issue 23, eighth session: Adam moves each weight by about the rate, so on rows whose
    columns move together a unit's input moves by about the rate x the columns; at 0.01 three
    separated groups of 200 rows in 80 to 500 columns collapsed onto one point each. Up to 64
    columns (digits) the rate stays 0.01; tables above 20,000 rows keep theirs."""
    rates = {columns: neighbor_settings(300, columns)["training"]["learning_rate"]
             for columns in (13, 64, 128, 150, 256, 500, 784)}
    # ... not below 0.0025: 5,000 MNIST digits (784 columns) were under-trained at 0.01 x 64 / 784.
    assert rates == {13: 0.01, 64: 0.01, 128: 0.005, 150: 0.00427, 256: 0.0025, 500: 0.0025, 784: 0.0025}
    assert neighbor_settings(30_000, 300)["training"]["learning_rate"] == 0.005


def test_few_rows_of_many_columns_take_a_smaller_rate_and_every_lowered_rate_trains_longer():
    """Issue 23, tenth session: three separated groups in 150-200 rows of 64-80 columns still
    collapsed a group onto one point at 0.01 x 64 / columns; from SMALL_ROWS to FEW_ROWS rows the
    columns' rule starts at 64 x rows / 300 columns. A rate the columns lowered trains
    0.01 / rate times the steps, at most twice (a 1,797 x 784 table was under-trained at 0.0025)."""
    def sized(rows, columns):
        training = neighbor_settings(rows, columns)["training"]
        return training["learning_rate"], training["epochs"]

    assert sized(200, 64) == (0.00667, math.ceil(858 * 0.01 / 0.00667))
    assert sized(150, 70) == (0.00457, 2 * 1200)  # 0.01 / 0.00457 > 2: twice the steps
    assert sized(200, 40) == (0.01, 858)  # 40 columns < 64 x 200 / 300: as before
    assert sized(300, 64) == sized(1797, 64)[:1] + (600,)  # from FEW_ROWS rows, as before
    assert sized(5000, 784) == (0.0025, 2 * 300)
    # Sized as before: digits, tables under SMALL_ROWS rows (their epochs capped), above BIG_ROWS.
    assert sized(1797, 64) == (0.01, 400)
    assert sized(100, 100) == (0.0064, SMALL_EPOCHS)
    assert sized(30_000, 300) == (0.005, math.ceil(6000 / math.ceil(30_000 / 512)))


def test_the_shipped_digits_preset_is_what_digits_gets():
    """1,797 x 64 gets the shipped neighbour preset's steps: batch 128, 80 negatives, 400 epochs
    (benchmarks/README.md, "Good maps by default (issue 14)")."""
    digits = neighbor_settings(1797, 64)
    assert digits["training"]["batch_size"] == 128 and digits["training"]["negative_samples"] == 80
    assert digits["training"]["epochs"] == 400


def test_degenerate_sizes_do_not_fail():
    for rows, columns in ((1, 1), (0, 0), (3, 2)):
        settings = neighbor_settings(rows, columns)
        assert settings["training"]["batch_size"] >= 1


def test_a_job_naming_only_its_dataset_gets_a_map_better_than_pca(tmp_path):
    """A real run of the default path: iris with no [model] at all, a fifth of the sized epochs
    (named, to stay short); the neighbour objective on z-scored columns, the decoder trained
    too, and a map whose trustworthiness beats PCA's (0.9742 on z-scored iris; the full
    settings reach about 0.987)."""
    epochs = neighbor_settings(150, 4)["training"]["epochs"] // 5
    job = tmp_path / "iris_defaults.toml"
    job.write_text(f'[dataset]\nname = "iris"\npath = "{REPO / "Data" / "iris.csv"}"\n'
                   f"[training]\nepochs = {epochs}\n")
    [result] = reducer.run_jobs([job], outputs=tmp_path / "outputs", models=tmp_path / "Models")
    assert result.status == "ok", result.reason
    manifest = result.manifest
    assert manifest["job"]["model"]["objective"] == "neighbors"
    assert manifest["job"]["dataset"]["normalize"] == DEFAULT_NORMALIZE
    assert manifest["job"]["training"]["batch_size"] == neighbor_settings(150, 4)["training"]["batch_size"]
    q = manifest["quality"]
    assert q["trustworthiness_5"] > q["pca"]["trustworthiness_5"], q
    assert q["reconstruction_mse"] is not None  # the decoder was trained


def test_a_narrow_table_of_500_rows_trains_the_deeper_encoder(tmp_path):
    """A real default run on a 500 x 6 table of five groups (few epochs, named to stay short): the
    sized encoder of three layers and the decoder at weight 10 are what trains and what the
    manifest records; the decoder is trained, no row is stacked on another and the map keeps
    neighbours better than PCA's plane."""
    import numpy as np

    rng = np.random.default_rng(5)
    centres = rng.normal(scale=4.0, size=(5, 6))
    labels = np.repeat(np.arange(5), 100)
    rows = centres[labels] + rng.normal(size=(500, 6))
    csv = tmp_path / "narrow.csv"
    csv.write_text("id,f1,f2,f3,f4,f5,f6,group\n" + "".join(
        f"{i}," + ",".join(f"{v:.5f}" for v in row) + f",g{g}\n" for i, (row, g) in enumerate(zip(rows, labels))))
    job = tmp_path / "narrow.toml"
    job.write_text(f'[dataset]\nname = "csv"\npath = "{csv}"\nid = "id"\nlabel = "group"\n'
                   "[training]\nepochs = 10\n")
    [result] = reducer.run_jobs([job], outputs=tmp_path / "outputs", models=tmp_path / "Models")
    assert result.status == "ok", result.reason
    manifest = result.manifest
    model = manifest["job"]["model"]
    assert list(model["hidden"]) == NARROW_HIDDEN and model["reconstruction_weight"] == NARROW_RECONSTRUCTION_WEIGHT
    assert model["activation"] == "tanh"
    q = manifest["quality"]
    assert q["reconstruction_mse"] is not None
    assert manifest["map"]["stacked_share"] < 0.05, manifest["map"]
    assert q["trustworthiness_5"] > q["pca"]["trustworthiness_5"], q


def _iris_job(folder, text):
    path = folder / "jobs" / "iris.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[dataset]\nname = "iris"\npath = "{REPO / "Data" / "iris.csv"}"\n{text}')
    return path


def test_a_table_too_large_for_the_neighbour_objective(tmp_path, monkeypatch, caplog):
    """No objective named: the seed's reconstruction, said in one log line. Named: a one-line
    refusal, by `check --data` and `run` alike. (The 2 GiB limit is lowered: iris is small.)"""
    from reducer.errors import JobError
    from reducer.run.pipeline import load_table
    from reducer.run.runner import plan
    from reducer.engine import sizing
    from reducer.tables import storage

    monkeypatch.setattr(sizing, "NEIGHBORS_LIMIT_BYTES", 1000)
    default = _iris_job(tmp_path / "default", "")
    (job, dataset, source), = plan([default]).ready
    with caplog.at_level("INFO", logger="reducer"):
        sized = load_table(job, dataset, source)[0]
    assert sized.model.objective == "reconstruction" and sized.training.batch_size == 8
    assert "objective = reconstruction, the seed's: the neighbour map would need about" in caplog.text

    named = _iris_job(tmp_path / "named", '[model]\nobjective = "neighbors"\n')
    (job, dataset, source), = plan([named]).ready
    with pytest.raises(JobError, match=r'model.objective = "neighbors": .* above the limit of'):
        load_table(job, dataset, source)
    with pytest.raises(JobError, match="above the limit"):
        storage.validate(job, dataset, source)

