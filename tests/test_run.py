"""`reducer run` end to end in a real subprocess, and what it leaves on disk."""

import hashlib
import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from conftest import Project


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One real run of three small jobs: iris (2-D), iris (3-D), and the generic CSV on wine."""
    project = Project(tmp_path_factory.mktemp("run") / "project")
    project.iris_job("iris", epochs=12)
    project.iris_job("iris3d", epochs=6, extra="[model]\nlatent = 3\n").write_text(
        textwrap.dedent("""
            [dataset]
            name = "iris"
            path = "../Data/iris.csv"
            [model]
            latent = 3
            [training]
            epochs = 6
            """))
    project.copy_data("wine.csv")
    project.job("wine", """
        [dataset]
        name = "csv"
        path = "../Data/wine.csv"
        id = "sample_id"
        label = "cultivar"
        [training]
        epochs = 10
        batch_size = 16
        """)
    # From another folder, as cron runs it: paths must not depend on the current directory.
    result = project.run("run", project.root / "jobs" / "*.toml", cwd=project.root.parent)
    return project, result


def test_run_succeeds_with_one_summary_line_per_job(finished):
    project, result = finished
    assert result.returncode == 0, result.stderr
    for name in ("iris", "iris3d", "wine"):
        assert f"  {name}: ok in " in result.stdout
    assert "\r" not in result.stderr and "Traceback" not in result.stderr


def test_loss_lines_in_the_log(finished):
    _, result = finished
    assert "[iris] epoch =    5 loss = " in result.stderr
    assert "[iris] epoch =   12 loss = " in result.stderr


def test_embedding_csv_layout(finished):
    project, _ = finished
    iris = pd.read_csv(project.outputs / "iris" / "embedding.csv")
    assert list(iris.columns) == ["id", "label", "component_1", "component_2"]
    assert list(iris["id"]) == list(range(150))
    source = pd.read_csv(project.root / "Data" / "iris.csv")
    assert list(iris["label"]) == list(source["species"])
    assert iris[["component_1", "component_2"]].dtypes.eq(float).all()
    raw = (project.outputs / "iris" / "embedding.csv").read_bytes()
    assert b"\r\n" not in raw and raw.endswith(b"\n")

    wine = pd.read_csv(project.outputs / "wine" / "embedding.csv")
    assert list(wine.columns) == ["id", "label", "component_1", "component_2"]
    assert wine["id"].iloc[0] == "wine-001" and wine["label"].iloc[-1] == "cultivar_3"

    three = pd.read_csv(project.outputs / "iris3d" / "embedding.csv")
    assert list(three.columns)[-3:] == ["component_1", "component_2", "component_3"]


def test_plot_is_a_png(finished):
    project, _ = finished
    for name in ("iris", "iris3d", "wine"):
        assert (project.outputs / name / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_manifest_records_the_run(finished):
    project, _ = finished
    manifest = json.loads((project.outputs / "wine" / "manifest.json").read_text())
    job = manifest["job"]
    # No objective named: the neighbour objective, its settings sized to 178 x 13, what the job
    # names (epochs, batch_size) kept, the columns z-scored; all of it recorded.
    assert job["model"]["objective"] == "neighbors" and job["model"]["hidden"] == [96, 96]
    assert job["model"]["output_activation"] == "linear" and job["dataset"]["normalize"] == "zscore"
    assert job["training"]["epochs"] == 10 and job["training"]["batch_size"] == 16
    assert job["training"]["learning_rate"] == 0.01 and job["training"]["negative_samples"] == 36
    assert manifest["dataset"]["rows"] == 178 and manifest["dataset"]["columns"] == 13
    data_file = project.root / "Data" / "wine.csv"
    assert manifest["dataset"]["input_file"]["sha256"] == hashlib.sha256(data_file.read_bytes()).hexdigest()
    assert set(manifest["versions"]) >= {"python", "tensorflow", "keras", "numpy", "pandas", "reducer"}
    assert manifest["seed"] == 1
    assert len(manifest["training"]["loss_per_epoch"]) == 10
    assert manifest["training"]["final_loss"] == manifest["training"]["loss_per_epoch"][-1]
    assert set(manifest["seconds"]) >= {"load", "train", "save", "plot"}
    for entry in manifest["files"].values():
        with open(entry["path"], "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == entry["sha256"]
    assert {e["path"] for e in manifest["files"].values()} >= {
        str(project.models / "wine.keras"), str(project.outputs / "wine" / "embedding.csv"),
        str(project.outputs / "wine" / "plot.png")}
    assert list((project.outputs / "wine" / "history").glob("*-manifest.json"))


def test_saved_encoder_reloads_in_a_fresh_process_without_reducer(finished):
    project, _ = finished
    script = textwrap.dedent(f"""
        import sys, keras, pandas as pd
        assert "reducer" not in sys.modules
        encoder = keras.models.load_model({str(project.models / "wine.keras")!r})
        rows = pd.read_csv({str(project.root / "Data" / "wine.csv")!r}).drop(columns=["sample_id", "cultivar"])
        pd.DataFrame(encoder.predict(rows.to_numpy("float32"), verbose=0)).to_csv(sys.stdout, index=False)
        assert "reducer" not in sys.modules
        """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr
    from io import StringIO

    reloaded = pd.read_csv(StringIO(result.stdout)).to_numpy()
    published = pd.read_csv(project.outputs / "wine" / "embedding.csv")[["component_1", "component_2"]]
    np.testing.assert_allclose(reloaded, published.to_numpy(), rtol=1e-6, atol=1e-7)


def test_same_job_same_seed_same_numbers(finished, tmp_path):
    project, _ = finished
    again = project.run("run", "jobs/iris.toml", "--outputs", tmp_path / "out", "--models", tmp_path / "models")
    assert again.returncode == 0, again.stderr
    first = (project.outputs / "iris" / "embedding.csv").read_bytes()
    assert (tmp_path / "out" / "iris" / "embedding.csv").read_bytes() == first
    assert (tmp_path / "models" / "iris.keras").is_file() and not (project.root / "out").exists()


def test_encode_places_new_rows_like_the_run(finished, tmp_path):
    project, _ = finished
    new_rows = pd.read_csv(project.root / "Data" / "wine.csv").iloc[:20]
    new_rows.to_csv(tmp_path / "new.csv", index=False)
    result = project.run("encode", "--model", project.models / "wine.keras", tmp_path / "new.csv",
                         "-o", tmp_path / "placed.csv")
    assert result.returncode == 0, result.stderr
    placed = pd.read_csv(tmp_path / "placed.csv")
    published = pd.read_csv(project.outputs / "wine" / "embedding.csv").iloc[:20]
    assert list(placed.columns) == ["id", "label", "component_1", "component_2"]
    assert list(placed["id"]) == list(published["id"])
    np.testing.assert_allclose(placed[["component_1", "component_2"]], published[["component_1", "component_2"]],
                               rtol=1e-6, atol=1e-7)


def test_check_validates_without_training(finished):
    project, _ = finished
    result = project.run("check", "jobs/*.toml")
    assert result.returncode == 0, result.stderr
    assert "iris: ok" in result.stdout and "wine: ok" in result.stdout
