"""The neighbour objective's starting layout (issue 23, reducer/engine/init.py): the encoder is
first trained to the kNN graph's spectral layout, on connected graphs of bounded size only; a
graph in pieces (separated groups) and a warm start keep today's start. Real graphs, real
training on small tables."""

import json

import numpy as np
import pytest

from conftest import Project


def overlapping(rows=300, seed=5):
    """`rows` rows of 6 columns in three overlapping groups: one connected kNN graph."""
    from sklearn.datasets import make_blobs

    x, labels = make_blobs(n_samples=rows, centers=3, n_features=6, cluster_std=3.0, center_box=(-4, 4),
                           random_state=seed)
    return ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32), labels


def graph_and_encoder(x, n_neighbors=10, seed=1):
    from reducer.config import ModelConfig
    from reducer.engine import model as model_lib
    from reducer.engine.neighbors import fuzzy_graph

    config = ModelConfig(hidden=(32, 32), activation="tanh", latent_activation="linear", objective="neighbors",
                         n_neighbors=n_neighbors)
    encoder, decoder, _ = model_lib.build(x.shape[1], config, seed=seed, out_activation="linear")
    return fuzzy_graph(x, n_neighbors, seed=seed), encoder, decoder, config


def test_the_encoder_starts_from_the_graphs_spectral_layout():
    from reducer.engine import init

    x, labels = overlapping()
    graph, encoder, _, _ = graph_and_encoder(x)
    layout = init.spectral_layout(graph, 2, seed=1)
    assert layout.shape == (300, 2)
    assert np.sqrt(np.mean(np.sum(layout ** 2, axis=1))) == pytest.approx(init.START_RADIUS, rel=1e-4)
    # The layout keeps the groups apart: each row's nearest rows in it mostly share its group.
    from sklearn.neighbors import KNeighborsClassifier

    assert KNeighborsClassifier(10).fit(layout, labels).score(layout, labels) > 0.8
    before = float(np.mean((encoder.predict(x, verbose=0) - layout) ** 2))
    note = init.start(encoder, x, graph, seed=1)
    after = float(np.mean((encoder.predict(x, verbose=0) - layout) ** 2))
    assert note["layout"] == "spectral" and note["rows"] == 300 and note["steps"] == init.PRETRAIN_STEPS
    assert after == pytest.approx(note["mse"], rel=0.05, abs=1e-3)
    assert after < 0.05 * init.START_RADIUS ** 2 and after < before / 5


def test_the_same_seed_gives_the_same_start():
    """Also with work beside the regression (the training loop's compilation runs there): the
    start is the same to the bit; when that work fails, the start still completes and then
    raises its error, as the work would have done on this thread."""
    import threading

    from reducer.engine import init

    x, _ = overlapping(120)
    ran = []

    def beside():
        ran.append(threading.current_thread() is not threading.main_thread())

    def failing():
        raise RuntimeError("a compilation that failed")

    starts = []
    for work in (None, beside, failing):
        graph, encoder, _, _ = graph_and_encoder(x)
        if work is failing:
            with pytest.raises(RuntimeError, match="a compilation that failed"):
                init.start(encoder, x, graph, seed=4, beside=work)
        else:
            init.start(encoder, x, graph, seed=4, beside=work)
        starts.append(encoder.predict(x, verbose=0))
    assert ran == [True]
    np.testing.assert_array_equal(starts[0], starts[1])
    np.testing.assert_array_equal(starts[0], starts[2])


def test_the_work_beside_the_start_runs_where_no_layout_follows_too():
    """The work beside the start (the loop's compilation) begins before the spectral layout, so
    a graph too small for one still has it run, and its failure still raised; the weights stay
    the random ones."""
    import threading

    from reducer.engine import init

    x, _ = overlapping(3)  # 3 rows: no 2-D layout of a graph this small
    graph, encoder, _, _ = graph_and_encoder(x, n_neighbors=3)
    before = [w.copy() for w in encoder.get_weights()]
    ran = []

    def beside():
        ran.append(threading.current_thread() is not threading.main_thread())

    def failing():
        raise RuntimeError("a compilation that failed")

    note = init.start(encoder, x, graph, seed=4, beside=beside)
    assert ran == [True] and note["layout"] == "random weights" and "too small" in note["reason"]
    with pytest.raises(RuntimeError, match="a compilation that failed"):
        init.start(encoder, x, graph, seed=4, beside=failing)
    for kept, weights in zip(before, encoder.get_weights()):
        np.testing.assert_array_equal(kept, weights)


def test_a_graph_in_pieces_gets_each_pieces_own_layout():
    """Separated groups make a graph in pieces, whose eigenvectors put each piece on one point:
    training an encoder to that would stack whole groups (issue 23's small tables). Each piece
    gets its own layout instead, the pieces apart, every group spread; without the rows (x) the
    layout of pieces is not made."""
    from sklearn.datasets import make_blobs

    from reducer.engine import init

    x, labels = make_blobs(n_samples=60, centers=3, n_features=5, cluster_std=1.0, center_box=(-20, 20),
                           random_state=3)
    x = ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32)
    graph, encoder, _, _ = graph_and_encoder(x)
    assert init.spectral_layout(graph, 2, seed=1) is None
    layout = init.spectral_layout(graph, 2, seed=1, x=x)
    assert np.sqrt(np.mean(np.sum(layout ** 2, axis=1))) == pytest.approx(init.START_RADIUS, rel=1e-4)
    extent = np.ptp(layout, axis=0).max()
    centres = np.stack([layout[labels == g].mean(axis=0) for g in range(3)])
    for g in range(3):
        group = layout[labels == g]
        assert np.ptp(group, axis=0).max() > 0.05 * extent  # spread, not one point
        others = [c for h, c in enumerate(centres) if h != g]
        radius = np.sqrt(np.sum((group - centres[g]) ** 2, axis=1)).max()
        assert min(np.linalg.norm(centres[g] - c) for c in others) > 2 * radius  # apart
    note = init.start(encoder, x, graph, seed=1)
    assert note["layout"] == "spectral" and note["mse"] < 0.05 * init.START_RADIUS ** 2
    codes = encoder.predict(x, verbose=0)
    nearest = np.sort(np.sqrt(np.sum((codes[:, None] - codes[None]) ** 2, axis=2)), axis=1)[:, 1]
    assert np.median(nearest) > 0.002 * np.ptp(codes, axis=0).max()  # no rows stacked


def test_far_pieces_are_brought_in_so_the_near_groups_are_not_dots():
    """Twenty rows 1,000 away in every column beside three groups of 100 (a piece of their
    own): placed at its true distance, the far piece made the layout so wide that the near
    groups started as dots (0.14%, 0.14% and 0.8% of the layout's extent). Far pieces keep their
    direction, their distance beyond 3x the pieces' median nearest distance grown by its
    logarithm only: the near groups are seven times as wide (1.0%, 1.0%, 5.9%), still apart, and
    the far piece still the farthest."""
    from sklearn.datasets import make_blobs

    from reducer.engine import init

    near, labels = make_blobs(n_samples=300, centers=3, n_features=5, cluster_std=1.0, center_box=(-20, 20),
                              random_state=15)
    x = np.vstack([near, np.random.default_rng(16).normal(1000.0, 1.0, (20, 5))])
    labels = np.concatenate([labels, np.full(20, 3)])
    x = ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32)
    graph, _, _, _ = graph_and_encoder(x)
    layout = init.spectral_layout(graph, 2, seed=1, x=x)
    extent = np.ptp(layout, axis=0).max()
    centres = np.stack([layout[labels == g].mean(axis=0) for g in range(4)])
    for g in range(3):
        assert np.ptp(layout[labels == g], axis=0).max() > 0.008 * extent  # was 0.0014
        assert min(np.linalg.norm(centres[g] - centres[h]) for h in range(3) if h != g) > 0.01 * extent
    middle = centres[:3].mean(axis=0)
    assert np.linalg.norm(centres[3] - middle) > max(np.linalg.norm(centres[g] - middle) for g in range(3))
    # Pieces at like distances are left where they were (the rule changes nothing there).
    placed = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    np.testing.assert_array_equal(init.bring_in_far_pieces(placed), placed)


def test_a_large_table_starts_from_random_weights(monkeypatch):
    from reducer.engine import init

    x, _ = overlapping(120)
    graph, encoder, _, _ = graph_and_encoder(x)
    weights = [w.copy() for w in encoder.get_weights()]
    monkeypatch.setattr(init, "SPECTRAL_ROWS", 100)
    assert init.start(encoder, x, graph, seed=1) == {"layout": "random weights", "reason": "more than 100 rows"}
    for before, after in zip(weights, encoder.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_training_from_the_start_layout_keeps_its_groups():
    """A few epochs of the neighbour objective from the spectral start: the History says where it
    started, and the map separates the groups at least as well as the start did."""
    from reducer.config import TrainingConfig
    from reducer.engine import neighbor_train
    from sklearn.neighbors import KNeighborsClassifier

    x, labels = overlapping()
    graph, encoder, decoder, config = graph_and_encoder(x)
    training = TrainingConfig(epochs=20, batch_size=32, learning_rate=0.02, negative_samples=30, seed=1)
    history = neighbor_train.train(encoder, decoder, x, graph, config, training, start_layout=True)
    assert history.start["layout"] == "spectral" and np.all(np.isfinite(history.losses))
    codes = encoder.predict(x, verbose=0)
    assert KNeighborsClassifier(10).fit(codes, labels).score(codes, labels) > 0.8
    assert np.abs(codes).max() < 50


def test_a_default_jobs_manifest_says_how_the_map_started(tmp_path):
    """Through `reducer run`: a default job (dataset and seed only) on a connected table starts
    from the spectral layout and says so in the manifest; a warm-started second night keeps the
    published weights instead (no `start`)."""
    import pandas as pd

    project = Project(tmp_path / "project")
    x, labels = overlapping(200)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    frame.insert(0, "id", np.arange(len(frame)))
    frame["group"] = [f"g{v}" for v in labels]
    frame.to_csv(project.root / "Data" / "overlap.csv", index=False)
    project.job("overlap", '[dataset]\nname = "csv"\npath = "../Data/overlap.csv"\nid = "id"\nlabel = "group"\n'
                           '[training]\nseed = 1\nepochs = 30\n')
    result = project.run("run", "jobs/overlap.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((project.outputs / "overlap" / "manifest.json").read_text())
    start = manifest["training"]["start"]
    assert start["layout"] == "spectral" and start["rows"] == 200 and start["mse"] < 2.0
    frame["f0"] += 0.01  # tomorrow's rows: changed a little, so the job trains again, warm
    frame.to_csv(project.root / "Data" / "overlap.csv", index=False)
    result = project.run("run", "jobs/overlap.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((project.outputs / "overlap" / "manifest.json").read_text())
    assert manifest["training"]["warm_start"]["from"] and "start" not in manifest["training"]


def test_a_wide_table_builds_its_graph_on_its_top_principal_components(monkeypatch):
    """In hundreds of columns of mostly noise the nearest rows are the noise's: a wide table's
    graph is built on its top principal components, where the rows' groups are nearer."""
    from sklearn.datasets import make_classification

    from reducer.config import ModelConfig
    from reducer.engine import init, neighbor_train

    x, labels = make_classification(n_samples=150, n_features=300, n_informative=10, n_redundant=10, n_classes=3,
                                    n_clusters_per_class=1, class_sep=2.0, random_state=2)
    x = ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32)
    projected = init.graph_rows(x)
    assert projected.shape == (150, init.GRAPH_COMPONENTS)
    assert init.graph_rows(x[:, :init.WIDE_COLUMNS]) is None  # not wide: the table's own columns
    config = ModelConfig(objective="neighbors", n_neighbors=10)
    wide = neighbor_train.graph_of(x, config, {}, seed=1)
    assert wide.method == f"exact (on the top {init.GRAPH_COMPONENTS} of 300 principal components)"

    def same_group(graph):
        rows = np.repeat(np.arange(graph.rows), graph.degree)
        return float(np.mean(labels[rows] == labels[graph.indices]))

    monkeypatch.setattr(init, "WIDE_COLUMNS", 1000)
    every_column = neighbor_train.graph_of(x, config, {}, seed=1)
    assert every_column.method == "exact"
    assert same_group(wide) > same_group(every_column) + 0.05  # measured: 0.64 against 0.55


def test_the_exact_search_finds_each_rows_nearest_rows():
    """numpy's brute force (no scikit-learn): each row's k nearest other rows, nearest first,
    against a float64 sort of every distance; exact duplicates keep each other, never themselves."""
    from reducer.engine.neighbors import nearest

    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 7)).astype(np.float32)
    x[10] = x[11]  # a pair of identical rows
    indices, distances, method = nearest(x, 6)
    assert method == "exact" and indices.shape == (400, 6) and distances.shape == (400, 6)
    full = np.sqrt(((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(full, np.inf)
    truth = np.argsort(full, axis=1, kind="stable")[:, :6]
    assert (indices == truth).mean() > 0.999  # bar a near-tie rounded the other way
    np.testing.assert_allclose(distances, np.take_along_axis(full, indices, axis=1), rtol=1e-5, atol=1e-6)
    assert np.all(np.diff(distances, axis=1) >= 0) and np.all(indices != np.arange(400)[:, None])
    assert indices[10, 0] == 11 and indices[11, 0] == 10 and distances[10, 0] == 0


def test_the_curve_and_the_spectral_layout_match_umaps_and_scikit_learns():
    """curve_parameters (numpy) fits UMAP's curve as scipy's curve_fit does; spectral_embedding
    (SciPy) gives scikit-learn's spectral_embedding."""
    import scipy.sparse
    from scipy.optimize import curve_fit
    from sklearn.manifold import spectral_embedding as scikit_learns

    from reducer.engine import init
    from reducer.engine.neighbors import curve_parameters

    for min_dist, spread in ((0.1, 1.0), (0.37, 1.0), (0.5, 1.0), (0.05, 2.0)):
        d = np.linspace(0, 3 * spread, 300)
        target = np.where(d < min_dist, 1.0, np.exp(-(d - min_dist) / spread))
        expected, _ = curve_fit(lambda d, a, b: 1.0 / (1.0 + a * d ** (2 * b)), d, target)
        np.testing.assert_allclose(curve_parameters(min_dist, spread), expected, rtol=1e-5)
    np.testing.assert_allclose(curve_parameters(0.1), (1.577, 0.895), atol=1e-3)  # umap-learn's for 0.1

    x, _ = overlapping(rows=200)
    graph, _, _, _ = graph_and_encoder(x)
    adjacency = scipy.sparse.csr_matrix((graph.weights.astype(np.float64), graph.indices, graph.indptr),
                                        shape=(graph.rows, graph.rows))
    for seed in (1, 2):
        np.testing.assert_allclose(init.spectral_embedding(adjacency, 2, seed),
                                   scikit_learns(adjacency, n_components=2, random_state=seed, drop_first=True),
                                   atol=1e-10)


def test_a_large_graphs_layout_is_scikit_learns_lobpcg_one(monkeypatch):
    """Above SHIFT_INVERT_ROWS rows the eigenvectors come from LOBPCG, as scikit-learn's
    eigen_solver="lobpcg" finds them: shift-invert's factors of some 10,000-row graphs filled
    62 million entries (a minute of CPU, gigabytes, in a C call no signal interrupts)."""
    import scipy.sparse
    from sklearn.manifold import spectral_embedding as scikit_learns

    from reducer.engine import init

    x, _ = overlapping(rows=600)
    graph, _, _, _ = graph_and_encoder(x)
    adjacency = scipy.sparse.csr_matrix((graph.weights.astype(np.float64), graph.indices, graph.indptr),
                                        shape=(graph.rows, graph.rows))
    monkeypatch.setattr(init, "SHIFT_INVERT_ROWS", 500)
    layout = init.spectral_embedding(adjacency, 2, 1)
    expected = scikit_learns(adjacency, n_components=2, random_state=1, drop_first=True, eigen_solver="lobpcg")
    np.testing.assert_allclose(layout, expected, atol=1e-3 * np.abs(expected).max())
    np.testing.assert_array_equal(layout, init.spectral_embedding(adjacency, 2, 1))  # the same start, the same layout


def test_the_graph_and_its_start_import_neither_scikit_learn_nor_scipy_optimize(monkeypatch):
    """The start-up path of a small neighbour job (graph, curve, spectral layout) leaves
    scikit-learn to the quality metrics, which import it beside training: half a second less
    before training can start. Here importing either fails, as if it were not installed."""
    import sys

    from reducer.config import ModelConfig
    from reducer.engine import init, neighbors
    from reducer.engine.neighbor_train import graph_of

    for name in [m for m in sys.modules if m.startswith(("sklearn", "scipy.optimize"))] + ["sklearn", "scipy.optimize"]:
        monkeypatch.setitem(sys.modules, name, None)  # importing it raises ImportError
    x = np.random.default_rng(0).normal(size=(300, 5)).astype(np.float32)
    graph = graph_of(x, ModelConfig(objective="neighbors", n_neighbors=10), {})
    assert graph.method == "exact" and init.spectral_layout(graph, 2, 1, x).shape == (300, 2)
    assert neighbors.curve_parameters(0.1)[0] > 0
