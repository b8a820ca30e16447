"""The README's drop-in plugin example works verbatim."""

from pathlib import Path

import pandas as pd

from conftest import readme_block




def test_plugin_example_is_short():
    assert len(readme_block("# plugins/spirals.py").strip().splitlines()) <= 30


def test_readme_plugin_example_runs_a_job(project):
    (project.root / "plugins" / "spirals.py").write_text(readme_block("# plugins/spirals.py"))
    job = readme_block('name = "spirals"')
    (project.root / "jobs" / "spirals.toml").write_text(job + "[training]\nepochs = 5\n")
    listed = project.run("datasets", "--project", ".")
    assert "spirals" in listed.stdout and "two interleaved spirals" in listed.stdout
    result = project.run("run", "jobs/spirals.toml")
    assert result.returncode == 0, result.stderr
    embedding = pd.read_csv(project.outputs / "spirals" / "embedding.csv")
    assert len(embedding) == 300 and set(embedding["label"]) == {"left", "right"}
    assert (project.models / "spirals.keras").is_file()
    assert Path(project.outputs / "spirals" / "manifest.json").is_file()


def test_readme_plugin_test_runs_verbatim(project, tmp_path, monkeypatch):
    (project.root / "plugins" / "spirals.py").write_text(readme_block("# plugins/spirals.py"))
    monkeypatch.chdir(project.root)  # "run from the project folder"
    namespace = {}
    exec(readme_block("# tests/test_spirals.py"), namespace)
    namespace["test_spirals"](tmp_path / "check")
    assert (tmp_path / "check" / "outputs" / "spirals" / "manifest.json").is_file()


def test_readme_notebook_example_with_reducer_map_runs_verbatim(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Models").mkdir()
    namespace = {}
    exec(readme_block("mapper = reducer.Map("), namespace)
    assert namespace["coordinates"].shape == (150, 2) and namespace["same"].shape == (150, 2)
    assert namespace["other"].get_params()["epochs"] == 20 and not hasattr(namespace["other"], "encoder_")
    assert (tmp_path / "Models" / "iris_notebook.onnx").is_file()
