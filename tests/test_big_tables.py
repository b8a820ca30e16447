"""Issue 22 on small tables: the graph costs its edges, approximate search above a size, the
float32 cache path, the memory estimate deciding before any graph, progress lines."""

import json
import logging

import numpy as np
import pytest

from reducer.engine import sizing
from reducer.engine.neighbors import fuzzy_graph, search_method
from reducer.progress import Stage


def hub_table(rows=3000, columns=64, seed=0):
    """Rows on a shell of radius 1 around one row at the origin (in 64-D two shell rows lie about
    1.4 apart): the origin is every row's nearest other row, so the symmetrised graph joins it
    to all of them."""
    rng = np.random.default_rng(seed)
    shell = rng.normal(size=(rows - 1, columns))
    shell /= np.linalg.norm(shell, axis=1, keepdims=True)
    return np.vstack([np.zeros((1, columns)), shell]).astype(np.float32)


def test_a_hub_costs_its_edges_not_rows_times_its_degree():
    x = hub_table()
    graph = fuzzy_graph(x, n_neighbors=5)
    degree = graph.degree
    assert degree[0] == len(x) - 1  # the hub is joined to every other row
    assert graph.edges == int(degree.sum()) and len(graph.indices) == len(graph.weights) == graph.edges
    padded = len(x) * int(degree.max()) * 8  # what a rows x max-degree layout would hold
    assert graph.nbytes < 3 * len(x) * graph.k * 8 + (len(x) + 1) * 8 * 2
    assert graph.nbytes * 100 < padded
    assert graph.details()["max_degree"] == len(x) - 1 and graph.details()["bytes"] == graph.nbytes


def test_training_draws_edges_in_proportion_to_their_weights():
    """The compiled step's edge draw: along each row's cumulative shares, systematic sampling."""
    from reducer.engine.neighbor_train import edge_tables

    x = hub_table(rows=400)
    graph = fuzzy_graph(x, n_neighbors=5)
    indptr, neighbours, share, totals, halvings = edge_tables(graph)
    np.testing.assert_allclose(totals, graph.row_weights(), rtol=1e-6)
    for row in (0, 1, 57):
        lo, hi = indptr[row], indptr[row + 1]
        steps = np.diff(np.concatenate([[0.0], share[lo:hi]]))
        np.testing.assert_allclose(steps, graph.weights[lo:hi] / graph.weights[lo:hi].sum(), rtol=1e-5, atol=1e-6)
        assert share[hi - 1] == 1.0
    assert 2 ** (halvings - 1) >= graph.degree.max()



def test_training_chooses_rows_in_proportion_to_their_total_weight():
    """A step's rows are drawn by weight, as UMAP's edge sampling moves them: the hub, joined to
    every row, comes up about its share of the total weight; a row of weight 0 never."""
    from reducer.engine.neighbor_train import edge_tables, row_bounds, weighted_rows
    from reducer.engine.tf_setup import tf

    bounds = row_bounds(np.array([1.0, 0.0, 3.0, 4.0]))
    assert bounds[-1] == 2 ** 32 and bounds[0] == bounds[1] == 2 ** 29
    drawn = weighted_rows(5, tf.constant(7), tf.constant(bounds), 40_000).numpy()
    share = np.bincount(drawn, minlength=4) / len(drawn)
    assert share[1] == 0
    np.testing.assert_allclose(share, [0.125, 0.0, 0.375, 0.5], atol=0.01)
    again = weighted_rows(5, tf.constant(7), tf.constant(bounds), 40_000).numpy()
    assert (again == drawn).all()  # a pure function of (seed, step, slot)

    graph = fuzzy_graph(hub_table(rows=400), n_neighbors=5)
    totals = edge_tables(graph)[3]
    drawn = weighted_rows(1, tf.constant(0), tf.constant(row_bounds(totals)), 100_000).numpy()
    hub_share = totals[0] / totals.sum()
    assert hub_share > 0.05  # the hub holds a large share of the weight ...
    assert abs(np.mean(drawn == 0) - hub_share) < 0.01  # ... and is chosen that often

def clusters(rows=600, columns=8, seed=3):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(4, columns))
    labels = rng.integers(0, 4, rows)
    return (centres[labels] + rng.normal(size=(rows, columns))).astype(np.float32), labels


def test_approximate_search_above_the_threshold_and_exact_below():
    x, labels = clusters()
    assert search_method(len(x)) == "exact" and search_method(len(x), approximate_rows=100) == "approximate"
    exact = fuzzy_graph(x, n_neighbors=8)
    approximate = fuzzy_graph(x, n_neighbors=8, seed=1, approximate_rows=100)
    assert exact.method == "exact" and approximate.method.startswith("approximate")
    # The same edges, bar a few the index missed; all within the clusters.
    pairs = [set(zip(np.repeat(np.arange(len(x)), g.degree), g.indices)) for g in (exact, approximate)]
    assert len(pairs[0] & pairs[1]) >= 0.95 * len(pairs[0])
    rows, cols = np.repeat(np.arange(len(x)), approximate.degree), approximate.indices
    assert np.all(labels[rows] == labels[cols])
    # Same rows and seed, same bytes.
    again = fuzzy_graph(x, n_neighbors=8, seed=1, approximate_rows=100)
    for name in ("indptr", "indices", "weights"):
        assert getattr(again, name).tobytes() == getattr(approximate, name).tobytes()


def test_the_approximate_search_reports_its_progress_by_block(monkeypatch):
    from reducer.engine import neighbors

    monkeypatch.setattr(neighbors, "BLOCK_ROWS", 100)
    x, _ = clusters(rows=500)
    calls = []
    fuzzy_graph(x, n_neighbors=5, approximate_rows=10, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (1000, 1000) and len(calls) == 10  # 5 blocks added, then 5 queried
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_stage_lines_every_few_percent_with_rate_and_time_left(caplog):
    now = [0.0]
    stage = Stage("big", "neighbour graph", "rows", clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="reducer"):
        for done in range(0, 1001, 10):
            now[0] = done / 100  # 100 rows a second
            stage(done, 1000)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 20  # 5%, 10%, ..., 100%
    assert lines[0] == "[big] neighbour graph 5% (50 of 1,000 rows), 100 rows/s, about 10 s left"
    assert lines[-1] == "[big] neighbour graph 100% (1,000 of 1,000 rows), 100 rows/s, done in 10 s"


def test_the_estimate_grows_with_rows_and_decides_the_search():
    small, large = sizing.neighbors_need(5_000, 50, 10), sizing.neighbors_need(1_000_000, 100, 10, in_memory=False)
    assert not small.approximate and large.approximate and large.table == 0
    assert large.total < 3 << 30  # the 1,000,000 x 100 CSV, held in the cache
    assert "approximate neighbour search" in large.text() and "1,000,000 rows x 100 columns" in large.text()
    assert sizing.edges(1000, 10) == 15_300


def test_the_estimate_follows_the_training_it_sizes():
    """sizing.py keeps its own copies of what the training does, so that it needs no TensorFlow:
    they must be the training's; above BIG_ROWS the code buffer is filled a block at a time, so a
    deeper encoder adds a block's activations, not every row's."""
    from reducer import defaults
    from reducer.engine import neighbor_train, neighbors

    assert sizing.BIG_ROWS == defaults.BIG_ROWS and sizing.ENCODE_ROWS == neighbor_train.ENCODE_ROWS
    assert sizing.APPROXIMATE_ROWS == neighbors.APPROXIMATE_ROWS
    narrow = sizing.neighbors_need(1_000_000, 100, 10, in_memory=False, hidden=(96, 96))
    deep = sizing.neighbors_need(1_000_000, 100, 10, in_memory=False, hidden=(128, 128, 128))
    assert deep.training - narrow.training == sizing.ENCODE_ROWS * (256 - 192) * 4
    small = sizing.neighbors_need(sizing.BIG_ROWS, 50, 10, hidden=(96, 96))
    assert small.training >= sizing.BIG_ROWS * 192 * 4  # every row at once


def test_a_big_table_fills_its_code_buffer_a_block_at_a_time_with_the_same_codes(monkeypatch):
    """Above BIG_ROWS the loop encodes ENCODE_ROWS rows at a time (the last block ending at the last
    row): the training must come out bit for bit as when every row is encoded at once."""
    from reducer.config import ModelConfig, TrainingConfig
    from reducer.engine import model as model_lib
    from reducer.engine import neighbor_train

    x, _ = clusters(rows=300)
    graph = fuzzy_graph(x, 10, seed=1)
    model_config = ModelConfig(objective="neighbors", hidden=(16, 16, 16), activation="relu",
                               latent_activation="linear", n_neighbors=10, min_dist=0.1, reconstruction_weight=20.0)
    training_config = TrainingConfig(epochs=3, batch_size=32, learning_rate=0.005, negative_samples=10, seed=2)
    monkeypatch.setattr(neighbor_train, "BIG_ROWS", 100)
    monkeypatch.setattr(neighbor_train, "STEPS_PER_CALL", 10)  # the buffer is filled at each of 3 calls
    weights = []
    for block in (None, 128):  # all at once; 3 blocks, the last overlapping the second
        monkeypatch.setattr(neighbor_train, "ENCODE_ROWS", block)
        encoder, decoder, _ = model_lib.build(x.shape[1], model_config, 2, "linear")
        history = neighbor_train.train(encoder, decoder, x, graph, model_config, training_config)
        assert len(history.losses) == 3 and np.all(np.isfinite(history.losses))
        weights.append(encoder.get_weights())
    for other in weights[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(weights[0], other))


def _clusters_csv(project, name="clusters.csv", rows=600):
    x, labels = clusters(rows=rows)
    lines = ["id," + ",".join(f"f{i}" for i in range(x.shape[1])) + ",label"]
    lines += [f"r{i}," + ",".join(f"{v:.4f}" for v in row) + f",c{label}" for i, (row, label) in enumerate(zip(x, labels))]
    path = project.root / "Data" / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_cached_table_trains_the_neighbour_map_from_the_cache(project):
    _clusters_csv(project)
    project.job("cached", """
        [dataset]
        name = "csv"
        path = "../Data/clusters.csv"
        id = "id"
        label = "label"
        streaming = true
        chunk_rows = 100
        [training]
        epochs = 30
        seed = 2
        """)
    result = project.run("run", "jobs/cached.toml")
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads((project.outputs / "cached" / "manifest.json").read_text())
    assert manifest["table"]["held"] == "cache" and manifest["job"]["model"]["objective"] == "neighbors"
    assert manifest["training"]["graph"]["method"] == "exact" and manifest["training"]["graph"]["edges"] > 0
    assert manifest["quality"]["trustworthiness_5"] > manifest["quality"]["pca"]["trustworthiness_5"]
    assert "[cached] neighbour map: about " in result.stderr and "exact neighbour search" in result.stderr
    assert "\r" not in result.stderr  # no carriage-return bars when stderr is not a terminal
    assert "[cached] neighbour graph 100% (600 of 600 rows)" in result.stderr
    assert "[cached] training 100% (" in result.stderr and " steps/s, done in " in result.stderr


def test_check_data_says_what_the_run_will_make(project):
    _clusters_csv(project)
    project.job("plain", """
        [dataset]
        name = "csv"
        path = "../Data/clusters.csv"
        label = "label"
        id = "id"
        """)
    result = project.run("check", "--data", "jobs/plain.toml")
    assert result.returncode == 0, result.stderr
    text = result.stdout + result.stderr
    assert "the run will make a neighbour map, about " in text and "(exact neighbour search; " in text


def test_a_neighbour_map_that_cannot_fit_falls_back_before_any_graph(project, monkeypatch, caplog):
    """No objective named: the reconstruction map, with a warning on the summary line, in the
    report and in the manifest; decided from the estimate, before any graph is built."""
    from reducer.report import build
    from reducer.run.runner import run_jobs

    _clusters_csv(project)
    job = project.job("plain", """
        [dataset]
        name = "csv"
        path = "../Data/clusters.csv"
        label = "label"
        [training]
        epochs = 3
        """)
    monkeypatch.setattr(sizing, "NEIGHBORS_LIMIT_BYTES", 10 << 20)
    with caplog.at_level(logging.INFO, logger="reducer"):
        result, = run_jobs([job], outputs=project.outputs, models=project.models)
    assert result.status == "ok", result.reason
    assert "; warning: reconstruction map, not the neighbour map: the neighbour map would need about" in result.summary()
    assert "above the limit of 10.5 MB" in result.summary()
    manifest = json.loads((project.outputs / "plain" / "manifest.json").read_text())
    assert manifest["job"]["model"]["objective"] == "reconstruction"
    assert manifest["training"]["objective_fallback"].startswith("reconstruction map, not the neighbour map")
    assert "graph" not in manifest["training"] and "neighbour graph" not in caplog.text
    build(project.outputs)
    page = (project.outputs / "index.html").read_text()
    assert '<p class="warning"><strong>Warning:</strong> reconstruction map, not the neighbour map' in page


def test_a_job_naming_the_neighbour_objective_is_refused_when_it_cannot_fit(tmp_path, monkeypatch):
    from reducer.config import read_job
    from reducer.errors import JobError

    path = tmp_path / "named.toml"
    path.write_text('[dataset]\nname = "iris"\n[model]\nobjective = "neighbors"\n')
    monkeypatch.setattr(sizing, "NEIGHBORS_LIMIT_BYTES", 1 << 20)
    with pytest.raises(JobError, match=r'named.toml: model.objective = "neighbors": the neighbour map would need '
                                       r'about .* above the limit of 1.0 MB'):
        sizing.sized_job(read_job(path), 100_000, 50)
    # With room, the estimate comes back with the job.
    monkeypatch.setattr(sizing, "NEIGHBORS_LIMIT_BYTES", None)
    job, fallback, need = sizing.sized_job(read_job(path), 100_000, 50, available=64 << 30)
    assert fallback is None and need.approximate and job.model.objective == "neighbors"
