"""Map quality (issue 5): the metrics on cases a person can check by hand, the job keys, and
the neighbour objective end to end: better separated clusters than the reconstruction
objective, a saved encoder that reloads in a fresh process, a run repeatable bit for bit."""

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, Project, assert_one_line
from reducer import quality
from reducer.errors import JobError
from reducer.config import read_job
from reducer.engine.neighbors import fuzzy_graph


def clusters(per_cluster=30, k=10, columns=20, seed=0):
    """k tight clusters; their centres are all the same distance apart (4 x one-hot vectors)
    when there are enough columns, else spaced 5 apart along the first axis."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(k), per_cluster)
    if columns >= k:
        centres = 4.0 * np.eye(columns)[:k]
    else:
        centres = np.eye(columns)[[0] * k] * 5.0 * np.arange(k)[:, None]
    x = centres[labels] + rng.normal(0, 0.3, (len(labels), columns))
    return x, labels


# --- the metrics ---------------------------------------------------------------------------

def test_a_perfect_map_scores_one():
    x, labels = clusters(k=4, columns=2)
    result = quality.evaluate(x, x.copy(), labels)
    assert result["trustworthiness_5"] == pytest.approx(1.0)
    assert result["trustworthiness_12"] == pytest.approx(1.0)
    assert result["knn_accuracy"] == pytest.approx(1.0)
    # PCA to 2-D of 2-D data loses nothing either.
    assert result["pca"]["trustworthiness_5"] == pytest.approx(1.0)
    assert result["pca"]["reconstruction_mse"] == pytest.approx(0.0, abs=1e-12)


def test_a_shuffled_map_scores_low():
    x, labels = clusters(k=4, columns=2)
    shuffled = x[np.random.default_rng(1).permutation(len(x))]
    result = quality.evaluate(x, shuffled, labels)
    assert result["trustworthiness_5"] < 0.6  # a random map scores about 0.5
    assert result["knn_accuracy"] < 0.45  # four classes: chance is 0.25


def test_reconstruction_mse_is_the_mean_squared_error():
    x = np.zeros((20, 3))
    result = quality.evaluate(x + np.arange(20)[:, None], np.arange(40.0).reshape(20, 2),
                              reconstruction=x + np.arange(20)[:, None] + 0.5)
    assert result["reconstruction_mse"] == pytest.approx(0.25)
    assert result["knn_accuracy"] is None and "knn" not in result


def test_knn_accuracy_leaves_out_classes_of_one_and_copes_with_tiny_classes():
    coordinates = np.array([[0, 0], [0, 1], [1, 0], [10, 10], [10, 11], [50, 50]], dtype=float)
    labels = np.array(["a", "a", "a", "b", "b", "lonely"])
    accuracy, details = quality.knn_accuracy(coordinates, labels)
    assert details["rows_left_out"] == 1 and details["classes"] == 2 and details["rows"] == 5
    assert details["folds"] == 3  # the largest class has 3 rows: no more folds than that
    assert 0.0 <= accuracy <= 1.0
    accuracy, details = quality.knn_accuracy(coordinates[:3], ["x", "y", "z"])
    assert accuracy is None and "fewer than two classes" in details["reason"]


def test_knn_accuracy_asks_no_more_neighbours_than_a_small_class_can_outvote():
    """15 rows in three perfectly separated classes of 5: a training fold holds 4 rows of each, so
    10 neighbours are mostly strangers and no point could be right (0.333 with k = 10)."""
    centres = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    labels = np.repeat(["a", "b", "c"], 5)
    coordinates = centres[np.repeat([0, 1, 2], 5)] + np.random.default_rng(0).normal(size=(15, 2))
    accuracy, details = quality.knn_accuracy(coordinates, labels)
    assert details["folds"] == 5 and details["k"] == 3 and accuracy == 1.0
    assert quality.knn_accuracy(coordinates, labels, k=quality.KNN_K)[0] == 1.0
    # Classes of 13 rows or more keep k = 10 (a training fold holds 11 or more of them).
    assert quality.knn_neighbours(np.array([13, 40, 50]), 10) == 10
    assert quality.knn_neighbours(np.array([12, 12, 50]), 10) == 9
    assert quality.knn_neighbours(np.array([2, 2]), 2) == 1
    assert quality.knn_k({"k": 3, "folds": 5}) == 3 and quality.knn_k(None) == quality.KNN_K


def test_the_words_under_the_plot_and_in_the_report_say_the_k_used():
    from reducer import plot, report
    from reducer.published import Quality

    centres = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    codes = np.repeat([0, 1, 2], 5)
    x = centres[codes] + np.random.default_rng(0).normal(size=(15, 2))
    measured = Quality.from_json(quality.evaluate(np.hstack([x, x]), x, np.array(["a", "b", "c"])[codes]))
    assert measured.knn["k"] == 3 and measured.knn_accuracy == 1.0
    assert any(line.startswith("points whose 3 nearest map neighbours mostly share their label: 100%")
               for line in plot.quality_words(measured))
    labels = [row["label"] for row in report.quality_table(measured, None)["rows"]]
    assert "label agrees with its 3 nearest map neighbours (kNN accuracy)" in labels


def test_large_data_is_sampled_with_a_fixed_seed():
    x, labels = clusters(per_cluster=60, k=5, columns=3)
    first = quality.evaluate(x, x[:, :2], labels, max_rows=100)
    again = quality.evaluate(x, x[:, :2], labels, max_rows=100)
    assert first["rows"] == 100 and first["sampled"] is True
    assert first == again
    assert quality.evaluate(x, x[:, :2], labels)["sampled"] is False
    asked = []
    sampled = quality.evaluate(x, x[:, :2], labels, max_rows=100,
                               reconstruction=lambda rows: asked.append(rows) or x[rows] + 0.1)
    assert len(asked[0]) == 100 and sampled["reconstruction_mse"] == pytest.approx(0.01)


def test_trustworthiness_is_scikit_learns_to_the_last_bit():
    """InputRanks shares the input's ranks between maps and k; the numbers must not move."""
    from sklearn.manifold import trustworthiness as sklearn_trustworthiness

    rng = np.random.default_rng(5)
    x, _ = clusters(per_cluster=25, k=4, columns=6)
    ties = np.round(rng.uniform(0, 3, (90, 5)))  # whole numbers: many equal distances
    for data in (x, ties):
        ranks = quality.InputRanks(data)
        for coordinates in (data[:, :2], rng.normal(size=(len(data), 2)), np.round(data[:, :2] * 0.5)):
            for k in (1, 5, 12):
                assert ranks.trustworthiness(coordinates, k) == sklearn_trustworthiness(data, coordinates,
                                                                                        n_neighbors=k)
    assert quality.InputRanks(x[:2]).trustworthiness(x[:2, :2], 5) is None  # too few rows for any k


def test_the_reference_scores_any_number_of_maps_as_evaluate_does():
    x, labels = clusters(k=4, columns=5)
    reference = quality.Reference(x, labels, dims=2)
    for coordinates in (x[:, :2], x[:, 2:4] * 3.0):
        assert reference.evaluate(coordinates, reconstruction=x + 0.1) == quality.evaluate(
            x, coordinates, labels, reconstruction=x + 0.1)


def test_the_reference_beside_training_runs_blas_on_one_thread_and_keeps_the_numbers(monkeypatch):
    """pipeline.reference_beside_training: the metrics' half that runs beside the training loop
    holds BLAS to one thread while it runs (then gives the process its threads back), and its
    numbers are those of a Reference computed with every thread."""
    from threadpoolctl import threadpool_info

    from reducer.run import pipeline

    def blas_threads():
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    x, labels = clusters(per_cluster=150, k=4, columns=40)  # 600 x 40: BLAS would use every core
    seen = []
    real = quality.InputRanks.__init__

    def spying(self, data):
        seen.append(blas_threads())
        real(self, data)

    before = blas_threads()
    monkeypatch.setattr(quality.InputRanks, "__init__", spying)
    beside = pipeline.reference_beside_training(x, labels, 2, quality.MAX_ROWS)
    assert seen and all(threads == 1 for threads in seen[0]) and blas_threads() == before
    plain = quality.Reference(x, labels, dims=2)
    assert beside.pca == plain.pca
    for coordinates in (x[:, :2], x[:, 2:4] * 3.0):
        assert beside.evaluate(coordinates) == plain.evaluate(coordinates)


def test_subtitle_names_both_numbers_and_pca():
    x, labels = clusters(k=3, columns=2)
    text = quality.subtitle(quality.evaluate(x, x, labels))
    assert text.startswith("trustworthiness@5 1.000 (PCA 1.000)") and "kNN accuracy 1.000" in text


# --- the graph -----------------------------------------------------------------------------

def test_fuzzy_graph_is_symmetric_and_stays_inside_clusters():
    x, labels = clusters(k=3)
    graph = fuzzy_graph(x, n_neighbors=6)  # the row itself and 5 others
    dense = np.zeros((len(x), len(x)))
    for row in range(len(x)):
        neighbours, weights = graph.neighbours_of(row)
        dense[row, neighbours] = weights
    np.testing.assert_allclose(dense, dense.T, atol=1e-6)
    assert np.all(dense <= 1.0) and np.all(graph.degree >= 5) and graph.method == "exact"
    rows, cols = np.nonzero(dense)
    assert np.all(labels[rows] == labels[cols])
    assert np.all(np.diag(dense) == 0) and graph.edges == np.count_nonzero(dense)  # no self-edges, no padding


def test_duplicate_rows_do_not_break_the_graph():
    x = np.repeat(np.arange(10.0)[:, None], 3, axis=0) * np.ones((1, 4))
    graph = fuzzy_graph(x, n_neighbors=4)
    assert np.all(np.isfinite(graph.weights)) and graph.edges > 0


# --- job keys ------------------------------------------------------------------------------

def write_job(folder, text):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "job.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_neighbors_objective_sizes_what_the_job_leaves_out(tmp_path):
    job = read_job(write_job(tmp_path, """
        [dataset]
        name = "iris"
        [model]
        objective = "neighbors"
        hidden = [16]
        """))
    assert job.model.objective == "neighbors" and "model.hidden" not in job.table_sized
    assert {"training.batch_size", "model.min_dist", "model.reconstruction_weight"} <= job.table_sized
    sized = job.with_table_defaults(150, 4)
    assert sized.model.hidden == (16,)  # what is set wins
    assert sized.model.activation == "tanh" and sized.model.latent_activation == "linear"  # 4 columns: tanh
    assert sized.training.batch_size == 32 and sized.model.reconstruction_weight > 0
    # a warm night of the neighbour objective: half the epochs (defaults.warm_schedule)
    assert job.continuity.warm_epochs is None and sized.continuity.warm_epochs == -(-sized.training.epochs // 2)
    assert sized.table_sized == frozenset()


def test_a_job_without_an_objective_gets_the_neighbour_objective_sized_to_its_table(tmp_path):
    plain = read_job(write_job(tmp_path / "plain", '[dataset]\nname = "iris"\n[training]\nepochs = 7\n'))
    assert plain.model.objective == "neighbors" and "model.objective" in plain.table_sized
    assert "training.epochs" not in plain.table_sized and plain.quality.enabled is True
    small, large = plain.with_table_defaults(150, 4), plain.with_table_defaults(1797, 64)
    # A program that sets a sized key after reading the job keeps its value.
    edited = dataclasses.replace(plain, model=dataclasses.replace(plain.model, min_dist=0.3))
    assert edited.with_table_defaults(150, 4).model.min_dist == 0.3
    assert small.training.epochs == large.training.epochs == 7  # named: kept
    assert small.training.batch_size < large.training.batch_size
    assert small.model.min_dist > large.model.min_dist
    # Too large for the neighbour objective's memory: the seed's reconstruction instead.
    fallback = plain.with_table_defaults(10**9, 100, neighbors_fit=False)
    assert fallback.model.objective == "reconstruction" and fallback.training.epochs == 7
    assert fallback.training.batch_size == 8 and fallback.model.activation == "sigmoid"


def test_a_reconstruction_job_keeps_the_seeds_settings(tmp_path):
    seed = read_job(write_job(tmp_path / "seed", '[dataset]\nname = "iris"\n[model]\nobjective = "reconstruction"\n'))
    assert seed.table_sized == frozenset() and seed.training.batch_size == 8
    assert seed.with_table_defaults(150, 4).model == seed.model


@pytest.mark.parametrize("table, message", [
    ("[model]\nobjective = \"reconstruction\"\nn_neighbors = 10\n",
     'model.n_neighbors applies only with [model] objective = "neighbors"'),
    ("[model]\nobjective = \"reconstruction\"\n[training]\nnegative_samples = 5\n",
     "training.negative_samples applies only"),
    ("[model]\nobjective = \"reconstruction\"\nrobust_input = true\n",
     'model.robust_input applies only with [model] objective = "neighbors"'),
    ("[model]\nrobust_input = \"yes\"\n", "model.robust_input must be true/false"),
    ("[model]\nobjective = \"umap\"\n", "model.objective must be one of reconstruction, neighbors"),
    ("[model]\nobjective = \"neighbors\"\nmin_dist = 1.5\n", "model.min_dist must be at least 0"),
    ("[quality]\nenabled = \"no\"\n", "quality.enabled must be true/false"),
    ("[quality]\nmetrics = false\n", "unknown key 'metrics' in [quality]"),
])
def test_bad_keys_are_one_line_errors(tmp_path, table, message):
    path = write_job(tmp_path, '[dataset]\nname = "iris"\n' + table)
    with pytest.raises(JobError) as error:
        read_job(path)
    assert message in str(error.value) and str(path) in str(error.value)
    assert "\n" not in str(error.value)


def test_shipped_neighbour_jobs_read():
    for name in ("digits_neighbors", "iris_neighbors"):
        job = read_job(REPO / "jobs" / f"{name}.toml")
        assert job.model.objective == "neighbors" and job.quality.enabled


# --- end to end: one `reducer run` of seven jobs -------------------------------------------
# One run for the module: each test reads its own jobs' files (one TensorFlow start-up, not three).

WINE_VALUE_LABEL = """
    [dataset]
    name = "csv"
    path = "../Data/wine.csv"
    id = "sample_id"
    label = "proline"
    {label_type}
    features = ["alcohol", "malic_acid", "ash", "flavanoids", "color_intensity", "hue"]
    [training]
    epochs = 20
    """

@pytest.fixture(scope="module")
def clusters_run(tmp_path_factory):
    project = Project(tmp_path_factory.mktemp("quality") / "project")
    x, labels = clusters()
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    frame["cluster"] = [f"c{v}" for v in labels]
    frame.to_csv(project.root / "Data" / "clusters.csv", index=False)
    dataset = '[dataset]\nname = "csv"\npath = "../Data/clusters.csv"\nlabel = "cluster"\n'
    project.job("reconstruction", dataset + "[model]\nobjective = \"reconstruction\"\n"
                "[training]\nepochs = 8\nbatch_size = 16\n")
    neighbours = dataset + textwrap.dedent("""
        [model]
        objective = "neighbors"
        hidden = [32, 32]
        [training]
        epochs = 100
        batch_size = 32
        seed = 7
        log_every = 50
        """)
    project.job("neighbors", neighbours)
    project.job("neighbors_again", neighbours)
    project.job("no_metrics", dataset + "[training]\nepochs = 2\n[quality]\nenabled = false\n")
    # Named normalize = "minmax" with the sized settings (test_min_max_columns_...).
    project.job("minmax", dataset + 'normalize = "minmax"\n[training]\nseed = 7\n')
    # A numeric label with many levels, as found and as declared a class (test_a_label_that_is_a_value_...).
    project.copy_data("wine.csv")
    project.job("proline", WINE_VALUE_LABEL.format(label_type=""))
    project.job("as_classes", WINE_VALUE_LABEL.format(label_type='label_type = "class"'))
    result = project.run("run", "jobs/*.toml")
    return project, result


def manifest(project, name):
    return json.loads((project.outputs / name / "manifest.json").read_text())


def test_every_job_ran_and_the_summary_shows_quality(clusters_run):
    project, result = clusters_run
    assert result.returncode == 0, result.stderr
    lines = {line.split(":")[0].strip(): line for line in result.stdout.splitlines() if ": ok in" in line}
    assert set(lines) == {"reconstruction", "neighbors", "neighbors_again", "no_metrics", "minmax", "proline",
                          "as_classes"}
    assert "trustworthiness 0." in lines["neighbors"] and "kNN accuracy " in lines["neighbors"]
    assert "trustworthiness" not in lines["no_metrics"]
    assert manifest(project, "no_metrics")["quality"] is None


def test_manifest_quality_section(clusters_run):
    project, _ = clusters_run
    section = manifest(project, "reconstruction")["quality"]
    assert section["rows"] == 300 and section["sampled"] is False
    for key in ("trustworthiness_5", "trustworthiness_12", "knn_accuracy", "reconstruction_mse"):
        assert 0.0 <= section[key] <= 1.0 and 0.0 <= section["pca"][key] <= 1.0
    neighbours = manifest(project, "neighbors")
    # The decoder is trained by default (reconstruction_weight sized from the table), so the
    # neighbour map's model is still an autoencoder with a reconstruction error.
    assert neighbours["job"]["model"]["reconstruction_weight"] > 0
    assert neighbours["quality"]["reconstruction_mse"] >= 0.0
    assert neighbours["job"]["dataset"]["normalize"] == "zscore"  # the neighbour objective's, csv says minmax
    assert neighbours["training"]["graph"]["edges"] > 0
    assert neighbours["subtitle"].startswith("trustworthiness@5 ")


def test_neighbour_objective_separates_clusters_better(clusters_run):
    project, _ = clusters_run
    plain = manifest(project, "reconstruction")["quality"]["knn_accuracy"]
    neighbours = manifest(project, "neighbors")["quality"]["knn_accuracy"]
    assert neighbours >= 0.95
    assert neighbours > plain + 0.1


def test_neighbour_run_is_repeatable_bit_for_bit(clusters_run):
    project, _ = clusters_run
    first = (project.outputs / "neighbors" / "embedding.csv").read_bytes()
    assert first == (project.outputs / "neighbors_again" / "embedding.csv").read_bytes()


def test_neighbour_encoder_reloads_in_a_fresh_process(clusters_run):
    project, _ = clusters_run
    script = textwrap.dedent(f"""
        import os
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
        import keras, numpy as np, pandas as pd
        encoder = keras.models.load_model({str(project.models / "neighbors.keras")!r})
        rows = pd.read_csv({str(project.root / "Data" / "clusters.csv")!r}).drop(columns="cluster")
        print(repr(encoder.predict(rows.to_numpy("float32"), verbose=0).tolist()))
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=Path(project.root))  # no reducer import, no custom objects
    assert done.returncode == 0, done.stderr
    again = np.array(eval(done.stdout))
    published = pd.read_csv(project.outputs / "neighbors" / "embedding.csv")
    np.testing.assert_allclose(again, published[["component_1", "component_2"]].to_numpy(), rtol=1e-6,
                               atol=1e-6)


def test_a_label_that_is_a_value_gets_a_knn_regression_score_not_an_accuracy(clusters_run, tmp_path):
    """A numeric label with many levels is a measurement: a class majority over it means nothing."""
    project, result = clusters_run
    assert "proline: ok in" in result.stdout, result.stdout + result.stderr
    value = json.loads((project.outputs / "proline" / "manifest.json").read_text())["quality"]
    assert value["label_type"] == "value" and value["knn_accuracy"] is None
    assert -1 < value["knn_r2"] <= 1 and "knn_r2" in value["pca"] and value["knn"]["folds"] == 10
    manifest = json.loads((project.outputs / "proline" / "manifest.json").read_text())
    assert "kNN R^2" in result.stdout and "kNN R^2" in manifest["subtitle"]
    forced = json.loads((project.outputs / "as_classes" / "manifest.json").read_text())["quality"]
    assert forced["label_type"] == "class" and forced["knn_accuracy"] is not None and "knn_r2" not in forced
    other = Project(tmp_path / "other")  # the module's project stays as its run left it
    bad = other.job("bad", '[dataset]\nname = "iris"\nlabel_type = "ordinal"\n')
    checked = other.run("check", bad)
    assert checked.returncode == 1 and "dataset.label_type must be one of class, value, got 'ordinal'" in checked.stdout


@pytest.mark.parametrize("streaming", [False, True])
def test_a_value_label_that_holds_text_is_a_one_line_error_before_training(tmp_path, streaming):
    """`label_type = "value"` on a column of names: check --data and run both refuse it in one
    line naming the job file, with no traceback and nothing trained or published."""
    project = Project(tmp_path / "project")
    project.copy_data("wine.csv")
    job = project.job("named", f"""
        [dataset]
        name = "csv"
        path = "../Data/wine.csv"
        id = "sample_id"
        label = "cultivar"
        label_type = "value"
        streaming = {str(streaming).lower()}
        """)
    expected = f'{job}: dataset.label_type = "value" needs a number in every row of label column \'cultivar\''
    for command in (("check", "--data"), ("run",)):
        result = project.run(*command, "jobs/named.toml")
        assert result.returncode == 1, result.stderr
        assert expected in result.stdout + result.stderr and "Traceback" not in result.stderr
    assert " loss = " not in result.stderr and not (project.outputs / "named" / "manifest.json").exists()


@pytest.mark.parametrize("threshold, streaming", [("min_knn_accuracy = 0.5", False), ("beat_pca = true", True)])
def test_a_knn_threshold_on_a_label_the_rows_show_to_be_values_fails_check_data_as_run(tmp_path, threshold,
                                                                                      streaming):
    """A numeric label with many values (wine's proline) is measured by kNN R^2, so a threshold on
    kNN accuracy can never be checked: only the rows tell, and `check --data` reads them as run
    does, so both refuse the job with the same line before anything trains."""
    project = Project(tmp_path / "project")
    project.copy_data("wine.csv")
    job = project.job("proline", f"""
        [dataset]
        name = "csv"
        path = "../Data/wine.csv"
        id = "sample_id"
        label = "proline"
        streaming = {str(streaming).lower()}
        [quality]
        {threshold}
        """)
    key = threshold.split()[0]
    expected = (f"{job}: quality.{key} needs kNN accuracy, measured on class labels, and label column 'proline' "
                f"holds values (kNN R^2 is measured instead)")
    assert project.run("check", "jobs/proline.toml").returncode == 0  # the header cannot tell
    lines = []
    for command in (("check", "--data"), ("run",)):
        result = project.run(*command, "jobs/proline.toml")
        lines.append(assert_one_line(result, expected))
    assert " loss = " not in result.stderr and not (project.outputs / "proline" / "manifest.json").exists()
    assert not (project.models / "proline.keras").exists()
    declared = job.read_text(encoding="utf-8").replace('label = "proline"', 'label = "proline"\nlabel_type = "class"')
    job.write_text(declared, encoding="utf-8")  # the way out the message names
    assert project.run("check", "--data", "jobs/proline.toml").returncode == 0


def test_folding_the_standardisation_keeps_the_encoders_function():
    """neighbor_train trains uncentred tables' encoders on standardised columns and folds the
    standardisation back into the first layer: the encoder computes the same map either way."""
    from reducer.config import ModelConfig
    from reducer.engine import model as model_lib
    from reducer.engine import neighbor_train

    x = np.random.default_rng(3).uniform(0, 1, (50, 6)).astype(np.float32)
    x[:, 2] = 0.25  # a constant column: spread 1, not 0
    config = ModelConfig(hidden=(8,), activation="relu", latent_activation="linear")
    encoder, _, _ = model_lib.build(6, config, seed=1, out_activation="linear")
    before = encoder.predict(x, verbose=0)
    mean, spread = neighbor_train.standardisation(x)
    neighbor_train.fold_standardisation(encoder, mean, spread, into="standardised")
    standardised = encoder.predict(((x - mean) / spread).astype(np.float32), verbose=0)
    neighbor_train.fold_standardisation(encoder, mean, spread, into="table")
    np.testing.assert_allclose(standardised, before, atol=1e-5)
    np.testing.assert_allclose(encoder.predict(x, verbose=0), before, atol=1e-5)


def test_min_max_columns_with_the_default_objective_give_a_map_not_a_point(clusters_run):
    """Named normalize = "minmax" with the sized settings collapsed this table to one point
    before the encoder trained on standardised columns."""
    project, result = clusters_run
    assert "minmax: ok in" in result.stdout, result.stdout + result.stderr
    manifest = json.loads((project.outputs / "minmax" / "manifest.json").read_text())
    assert manifest["job"]["dataset"]["normalize"] == "minmax" and manifest["job"]["model"]["activation"] == "relu"
    assert manifest["quality"]["knn_accuracy"] >= 0.95
