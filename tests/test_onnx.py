"""The portable encoder (issue 15): every published model is also Models/<job>.onnx, which
`reducer encode` and `reducer.Encoder` run with onnxruntime, without TensorFlow, and which
gives the published map: for every shipped job, a 3-D job and an aligned second night, to 1e-5
of embedding.csv and of the Keras model.
"""

import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, STARTING_ENVIRONMENT, Project, readme_block

TOLERANCE = dict(rtol=1e-5, atol=1e-5)
SHIPPED = sorted(path.stem for path in (REPO / "jobs").glob("*.toml"))
SECOND_NIGHT = ("csv_example", "iris3d")  # run again with --force: their saved encoders hold `align`
# EXACT_READ as in the README's Outputs section: ids and labels as written
EXACT_READ = dict(dtype={"id": str, "label": str}, keep_default_na=False)


def job_name(path):
    return tomllib.loads(path.read_text()).get("name", path.stem)


def snapshot(project, folder, names):
    """Copies of each job's published model files and embedding.csv, as they are now."""
    folder.mkdir()
    for name in names:
        for suffix in (".keras", ".onnx", ".json"):
            shutil.copy(project.models / f"{name}{suffix}", folder / f"{name}{suffix}")
        shutil.copy(project.outputs / name / "embedding.csv", folder / f"{name}.csv")
        shutil.copy(project.outputs / name / "manifest.json", folder / f"{name}.manifest.json")
    return folder


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    """Every shipped job (2 epochs each) and a 3-D job, then a second night of two of them."""
    root = tmp_path_factory.mktemp("onnx")
    project = Project(root / "project")
    for name in ("iris.csv", "wine.csv", "digits_uci_test_1797.txt"):
        project.copy_data(name)
    for path in (REPO / "jobs").glob("*.toml"):
        (project.root / "jobs" / path.name).write_text(re.sub(r"(?m)^epochs = \d+", "epochs = 2", path.read_text()))
    project.job("iris3d", """
        [dataset]
        name = "iris"
        path = "../Data/iris.csv"
        normalize = "zscore"
        [model]
        latent = 3
        activation = "tanh"
        [training]
        epochs = 3
        batch_size = 16
        """)
    names = [job_name(path) for path in sorted((project.root / "jobs").glob("*.toml"))]
    first = project.run("run", "jobs/*.toml")
    assert first.returncode == 0, first.stdout + first.stderr
    one = snapshot(project, root / "night1", names)
    second = project.run("run", "--force", *(f"jobs/{name}.toml" for name in SECOND_NIGHT))
    assert second.returncode == 0, second.stdout + second.stderr
    two = snapshot(project, root / "night2", SECOND_NIGHT)
    return project, names, {1: one, 2: two}


def raw_rows(project, job_file):
    """The job's input rows as `reducer run` read them: a DataFrame of the feature columns."""
    from reducer.run.pipeline import load_table
    from reducer.run.runner import plan

    found = plan([job_file])
    assert not found.failed, found.failed[0].reason
    table = load_table(*found.ready[0])[1]
    return pd.DataFrame(table.raw().astype(np.float64), columns=list(table.features))


def cases():
    return [(name, 1) for name in [*SHIPPED, "iris3d"]] + [(name, 2) for name in SECOND_NIGHT]


def shipped_name(stem):
    return job_name(REPO / "jobs" / f"{stem}.toml") if stem in SHIPPED else stem


def test_every_shipped_job_is_covered(nights):
    _, names, _ = nights
    assert sorted(names) == sorted([*(shipped_name(s) for s in SHIPPED), "iris3d"])


@pytest.mark.parametrize("stem, night", cases(), ids=lambda v: str(v))
def test_onnx_agrees_with_the_embedding_and_the_keras_model(nights, stem, night):
    import reducer
    from reducer.engine import model as model_lib
    from reducer.engine.tf_setup import keras

    project, _, folders = nights
    name, folder = shipped_name(stem), folders[night]
    rows = raw_rows(project, project.root / "jobs" / f"{stem}.toml")
    encoder = reducer.Encoder(folder / f"{name}.onnx")
    assert encoder.backend == "onnxruntime" and list(encoder.features) == list(rows.columns)
    shuffled = rows[list(reversed(rows.columns))].assign(extra="ignored")  # matched by name
    placed = encoder.transform(shuffled)
    published = pd.read_csv(folder / f"{name}.csv").filter(like="component_").to_numpy()
    keras_model = keras.models.load_model(folder / f"{name}.keras")
    by_keras = model_lib.apply(keras_model, rows.to_numpy(np.float32))
    assert placed.shape == published.shape == (len(rows), 3 if name == "iris3d" else 2)
    np.testing.assert_allclose(placed, published, **TOLERANCE)
    np.testing.assert_allclose(placed, by_keras, **TOLERANCE)
    aligned = any(layer.name == "align" for layer in keras_model.layers)
    assert aligned == (night == 2), [layer.name for layer in keras_model.layers]


@pytest.mark.parametrize("stem, night", cases(), ids=lambda v: str(v))
def test_reducer_encode_places_every_job_like_the_run(nights, stem, night, tmp_path):
    project, _, folders = nights
    name, folder = shipped_name(stem), folders[night]
    rows = raw_rows(project, project.root / "jobs" / f"{stem}.toml")
    rows.to_csv(tmp_path / "rows.csv", index=False, float_format="%.9g")
    for suffix in (".onnx", ".json"):
        shutil.copy(folder / f"{name}{suffix}", tmp_path / f"model{suffix}")
    result = project.run("encode", "--model", tmp_path / "model.onnx", tmp_path / "rows.csv", "-o", "-")
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr and "Keras" not in result.stderr  # the ONNX path, no fallback
    placed = pd.read_csv(io.StringIO(result.stdout))
    published = pd.read_csv(folder / f"{name}.csv")
    assert list(placed["id"]) == list(range(len(rows)))  # INPUT has no id column: row numbers
    np.testing.assert_allclose(placed.filter(like="component_"), published.filter(like="component_"), **TOLERANCE)


def test_the_manifest_lists_the_onnx_file_published_with_the_rest(nights):
    project, names, _ = nights
    for name in names:
        manifest = json.loads((project.outputs / name / "manifest.json").read_text())
        entry = manifest["files"]["model_onnx"]
        path = project.models / f"{name}.onnx"
        assert entry["path"] == str(path)
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and entry["bytes"] > 0
        version = (project.outputs / name / "..data").resolve()
        assert (version / "model.onnx").read_bytes() == path.read_bytes()
    assert not [p for p in project.models.iterdir() if ".tmp-" in p.name]


def test_the_onnx_file_describes_itself_for_other_languages(nights):
    import onnx

    project, _, _ = nights
    model = onnx.load(project.models / "csv_example.onnx")
    onnx.checker.check_model(model, full_check=True)
    metadata = {entry.key: json.loads(entry.value) for entry in model.metadata_props}
    info = json.loads((project.models / "csv_example.json").read_text())
    assert metadata["features"] == info["features"] and metadata["job"] == "csv_example"
    assert [i.name for i in model.graph.input] == ["raw_rows"] and [o.name for o in model.graph.output] == [
        "coordinates"]
    assert model.opset_import[0].version == 17 and model.ir_version == 8
    ops = {node.op_type for node in model.graph.node}
    # Tanh: the robust input's squash (engine/model.py)
    assert ops <= {"Sub", "Div", "Tanh", "MatMul", "Add", "Sigmoid", "Relu", "Identity"}, ops


def importtime_modules(result):
    return {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}


def test_reducer_encode_imports_no_tensorflow(nights, tmp_path):
    project, _, _ = nights
    pd.read_csv(project.root / "Data" / "iris.csv").head(7).to_csv(tmp_path / "seven.csv", index=False)
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "reducer", "encode", "--model",
                             project.models / "iris.keras", tmp_path / "seven.csv", "-o", tmp_path / "out.csv"],
                            cwd=project.root, env=STARTING_ENVIRONMENT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    modules = importtime_modules(result)
    assert "onnxruntime" in modules
    assert not {m for m in modules if m.split(".")[0] in ("tensorflow", "keras", "sklearn")}
    assert len(pd.read_csv(tmp_path / "out.csv")) == 7


def test_import_reducer_stays_light_and_exports_the_encoder():
    script = ("import sys, reducer\n"
              "heavy = [m for m in ('onnxruntime', 'onnx', 'pandas', 'tensorflow') if m in sys.modules]\n"
              "assert not heavy, heavy\n"
              "assert 'Encoder' in reducer.__all__ and reducer.Encoder.__name__ == 'Encoder'\n"
              "assert 'tensorflow' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", script], env=STARTING_ENVIRONMENT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_without_the_onnx_file_encode_falls_back_to_keras_with_one_line(nights, tmp_path):
    project, _, _ = nights
    for suffix in (".keras", ".json"):  # a model published before reducer wrote ONNX files
        shutil.copy(project.models / f"csv_example{suffix}", tmp_path / f"old{suffix}")
    rows = pd.read_csv(project.root / "Data" / "wine.csv")
    rows.to_csv(tmp_path / "rows.csv", index=False)
    result = project.run("encode", "--model", tmp_path / "old.keras", tmp_path / "rows.csv", "-o", tmp_path / "o.csv")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "old.onnx does not exist" in warnings[0] and "TensorFlow" in warnings[0], warnings
    placed = pd.read_csv(tmp_path / "o.csv", **EXACT_READ)
    published = pd.read_csv(project.outputs / "csv_example" / "embedding.csv", **EXACT_READ)
    assert list(placed["id"]) == list(published["id"]) and list(placed["label"]) == list(published["label"])
    np.testing.assert_allclose(placed.filter(like="component_"), published.filter(like="component_"), **TOLERANCE)


def test_encoder_takes_columns_by_name_and_names_what_is_wrong(nights, tmp_path):
    import reducer
    from reducer.errors import DataError, ReducerError

    project, _, _ = nights
    encoder = reducer.Encoder(project.models / "csv_example.keras")  # any of the job's three files
    assert encoder.path == project.models / "csv_example.onnx" and encoder.latent == 2
    assert "onnxruntime" in repr(encoder)
    frame = pd.read_csv(project.root / "Data" / "wine.csv")
    by_name = encoder.transform(frame.sample(frac=1.0, axis=1, random_state=0))
    by_array = encoder.transform(frame[list(encoder.features)].to_numpy())
    as_text = encoder.transform(frame.astype(str))
    assert by_name.dtype == np.float32 and by_name.shape == (len(frame), 2)
    np.testing.assert_array_equal(by_name, by_array)
    np.testing.assert_array_equal(by_name, as_text)
    assert encoder.transform(frame.iloc[:0]).shape == (0, 2)

    with pytest.raises(DataError, match=f"missing feature column\\(s\\) {encoder.features[3]}"):
        encoder.transform(frame.drop(columns=[encoder.features[3]]))
    bad = frame.astype(str)
    bad.loc[4, encoder.features[1]] = "oops"
    with pytest.raises(DataError, match=f"column '{encoder.features[1]}', row 4: expected a number, got 'oops'"):
        encoder.transform(bad)
    with pytest.raises(DataError, match="expected rows x 13 values"):
        encoder.transform(np.zeros((3, 4)))
    with pytest.raises(DataError, match="row 1 holds NaN"):
        encoder.transform(np.vstack([np.zeros(13), np.full(13, np.nan)]))

    shutil.copy(project.models / "csv_example.onnx", tmp_path / "mixed.onnx")  # another job's column names
    shutil.copy(project.models / "iris.json", tmp_path / "mixed.json")
    with pytest.raises(ReducerError, match="not an encoder reducer wrote for 4 columns"):
        reducer.Encoder(tmp_path / "mixed.onnx")
    info = json.loads((project.models / "csv_example.json").read_text())
    info["features"] = list(reversed(info["features"]))
    (tmp_path / "mixed.json").write_text(json.dumps(info))
    with pytest.raises(ReducerError, match="mixed.onnx and its .json name different columns"):
        reducer.Encoder(tmp_path / "mixed.onnx")
    (tmp_path / "broken.onnx").write_bytes(b"not a protobuf at all")
    shutil.copy(project.models / "csv_example.json", tmp_path / "broken.json")
    with pytest.raises(ReducerError, match="broken.onnx: not a model reducer can load"):
        reducer.Encoder(tmp_path / "broken.onnx")


def test_encode_reads_and_writes_a_large_input_in_blocks(nights, tmp_path):
    """More rows than one block (encode.block_rows): the same coordinates as one call on all of
    them, every id in order, one output line per row."""
    import reducer
    from reducer import encode

    project, _, _ = nights
    rows = 2 * encode.block_rows(6) + 1234  # key, 4 features, species
    rng = np.random.default_rng(5)
    iris = pd.read_csv(project.root / "Data" / "iris.csv")
    frame = iris.iloc[rng.integers(0, len(iris), rows)].reset_index(drop=True)
    features = [c for c in frame.columns if c != "species"]
    frame[features] = (frame[features] + rng.normal(scale=0.05, size=(rows, len(features)))).round(3)
    frame.insert(0, "key", [f"k{i:06d}" for i in range(rows)])
    frame.to_csv(tmp_path / "many.csv", index=False)
    result = project.run("encode", "--model", project.models / "iris.onnx", tmp_path / "many.csv", "--id", "key",
                         "-o", tmp_path / "many_out.csv")
    assert result.returncode == 0, result.stderr
    assert f"encoded {rows} rows" in result.stderr
    placed = pd.read_csv(tmp_path / "many_out.csv", **EXACT_READ)
    assert list(placed["id"]) == list(frame["key"])
    expected = reducer.Encoder(project.models / "iris.onnx").transform(frame)
    np.testing.assert_allclose(placed[["component_1", "component_2"]], expected, rtol=1e-6, atol=1e-7)




@pytest.mark.parametrize("marker", ["reducer.Encoder", "onnxruntime.InferenceSession", "keras.models.load_model"])
def test_the_readme_routes_run_verbatim_and_quietly(nights, marker):
    """Each of the README's "Using the encoder from another program" examples, run as written in
    the project (iris), prints nothing of its own and gives the published map."""
    project, _, _ = nights
    script = readme_block(marker) + textwrap.dedent("""
        import numpy as _np, pandas as _pd
        _published = _pd.read_csv("outputs/iris/embedding.csv").filter(like="component_").to_numpy()
        _np.testing.assert_allclose(coordinates, _published, rtol=1e-5, atol=1e-5)
        """)
    environment = {k: v for k, v in STARTING_ENVIRONMENT.items() if not k.startswith(("TF_", "KERAS_"))}
    done = subprocess.run([sys.executable, "-c", script], cwd=project.root, env=environment, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == "", (done.stdout, done.stderr)

