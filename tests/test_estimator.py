"""reducer.Map: a job's model and pipeline behind scikit-learn's estimator interface."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris

import reducer
from reducer.errors import JobError

# A small real table: iris's 150 rows x 4 columns, its species as labels.
IRIS_X, IRIS_Y = load_iris(return_X_y=True, as_frame=True)


@pytest.fixture(scope="module")
def fitted():
    return reducer.Map(epochs=20, seed=3).fit(IRIS_X, IRIS_Y)


def test_import_reducer_stays_tensorflow_free():
    code = ("import sys, reducer; reducer.Map; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_clone_keeps_parameters_and_drops_the_fit(fitted):
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    assert copy.get_params()["epochs"] == 20 and copy.get_params()["seed"] == 3
    assert not hasattr(copy, "encoder_")
    copy.set_params(epochs=5, objective="reconstruction")
    assert copy.epochs == 5 and fitted.epochs == 20


def test_fit_on_a_small_table_sizes_settings_as_a_job_does(fitted):
    embedding = fitted.embedding_
    assert embedding.shape == (150, 2) and np.isfinite(embedding).all()
    # What a job file that names only epochs and seed gets: the neighbour objective, sized from 150 x 4.
    assert fitted.settings_["model"]["objective"] == "neighbors"
    assert fitted.settings_["model"]["hidden"] == (96, 96) and fitted.settings_["model"]["activation"] == "tanh"
    assert fitted.settings_["training"]["batch_size"] == 32 and fitted.settings_["training"]["epochs"] == 20
    assert fitted.settings_["dataset"]["normalize"] == "zscore"
    assert fitted.quality_["rows"] == 150 and fitted.quality_["label_type"] == "class"
    assert 0.5 < fitted.quality_["trustworthiness_5"] <= 1 and 0 < fitted.quality_["knn_accuracy"] <= 1
    assert len(fitted.loss_per_epoch_) == 20
    assert list(fitted.feature_names_in_) == list(IRIS_X.columns) and fitted.n_features_in_ == 4
    assert np.array_equal(fitted.transform(IRIS_X), embedding)
    assert list(fitted.get_feature_names_out()) == ["map0", "map1"]


def test_a_map_that_stacks_groups_on_points_says_so(fitted):
    """The trial's far table (three groups within +-20 and a blob far off in every column): the
    near groups are drawn as dots. A job's summary line warns; so does Map, as a Python warning
    and in `warnings_`, with the manifest's `map` section as `map_`. Iris's map: no warning."""
    from reducer.estimator import MapWarning
    from sklearn.datasets import make_blobs

    near, labels = make_blobs(n_samples=90, centers=3, n_features=5, cluster_std=1.0, center_box=(-20, 20),
                              random_state=15)
    blob = make_blobs(n_samples=30, centers=1, n_features=5, cluster_std=1.0, center_box=(-20, 20),
                      random_state=16)[0] + 1e6
    groups = [f"g{v}" for v in labels] + ["far"] * 30
    with pytest.warns(MapWarning, match="of the distinct rows sit on top of another row in the map") as caught:
        mapper = reducer.Map(epochs=20, seed=1).fit(np.vstack([near, blob]), groups)
    assert mapper.map_["stacked_share"] >= 0.9 and mapper.map_["distinct_rows"] == 120
    assert {g["label"] for g in mapper.map_["stacked_groups"]} == {"g0", "g1", "g2", "far"}
    assert mapper.warnings_ and str(caught[0].message) == f"reducer.Map: {mapper.warnings_[0]}"
    assert fitted.warnings_ == [] and fitted.map_["stacked_share"] < 0.25 and fitted.map_["stacked_groups"] == []


def test_same_seed_same_numbers():
    first = reducer.Map(objective="reconstruction", epochs=3, quality=False).fit_transform(IRIS_X.to_numpy())
    second = reducer.Map(objective="reconstruction", epochs=3, quality=False).fit_transform(IRIS_X.to_numpy())
    assert np.array_equal(first, second)


def test_save_writes_what_a_job_writes_and_encoder_reads_it(fitted, tmp_path):
    paths = fitted.save(tmp_path / "iris.keras")
    assert {p.name for p in paths.values()} == {"iris.keras", "iris.onnx", "iris.json"}
    info = json.loads(paths["model_info"].read_text())
    assert info["features"] == list(IRIS_X.columns) and info["latent"] == 2
    encoder = reducer.Encoder(paths["model_onnx"])  # onnxruntime, as `reducer encode` runs it
    assert np.abs(encoder.transform(IRIS_X) - fitted.embedding_).max() < 1e-4


def test_bad_settings_are_refused_as_in_a_job_file():
    with pytest.raises(JobError, match=r"reducer.Map: model.latent must be one of 2, 3, got 5"):
        reducer.Map(latent=5).fit(IRIS_X)
    with pytest.raises(JobError, match=r"training.negative_samples applies only with"):
        reducer.Map(objective="reconstruction", negative_samples=3).fit(IRIS_X)
    with pytest.raises(ValueError, match="NaN"):
        reducer.Map().fit(pd.DataFrame({"a": [1.0, np.nan, 2.0], "b": [1.0, 2.0, 3.0]}))


def test_scikit_learn_check_estimator():
    """Every check of check_estimator passes, but check_array_api_input, which scikit-learn skips
    unless SCIPY_ARRAY_API is set (the model computes in TensorFlow, not the array API). The
    reconstruction objective with one epoch keeps the ~45 fits short; the neighbour objective
    goes through the same fit (test_fit_on_a_small_table...)."""
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(reducer.Map(objective="reconstruction", epochs=1, batch_size=32, quality=False),
                              on_fail=None)
    failed = [(r["check_name"], repr(r["exception"])) for r in results if r["status"] == "failed"]
    assert not failed
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert skipped <= {"check_array_api_input"}
    assert len(results) > 40
