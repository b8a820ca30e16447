"""[dataset] keep: columns carried verbatim into embedding.csv after label, for every dataset."""

import pandas as pd

from reducer import read_embedding, read_manifest

QUICK = """
[model]
objective = "reconstruction"
[training]
epochs = 3
batch_size = 32
[quality]
enabled = false
"""


def flowers(project):
    """iris with an id, a name (text, with a comma and quotes) and a numeric code per row."""
    frame = pd.read_csv(project.copy_data("iris.csv"))
    frame.insert(0, "flower", [f"F{k:04d}" for k in range(len(frame))])
    frame["name"] = [f'flower "{k}", of {s}' for k, s in zip(range(len(frame)), frame["species"])]
    frame["garden"] = ["north" if k % 3 else "south" for k in range(len(frame))]
    path = project.root / "Data" / "flowers.csv"
    frame.to_csv(path, index=False)
    return frame


def test_csv_job_keeps_columns_after_label(project):
    frame = flowers(project)
    project.job("flowers", """
        [dataset]
        name = "csv"
        path = "../Data/flowers.csv"
        id = "flower"
        label = "species"
        features = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
        keep = ["name", "garden"]
        """ + QUICK)
    checked = project.run("check", "jobs/flowers.toml")
    assert checked.returncode == 0, checked.stderr
    result = project.run("run", "jobs/flowers.toml")
    assert result.returncode == 0, result.stderr
    written = pd.read_csv(project.outputs / "flowers" / "embedding.csv", dtype=str, keep_default_na=False)
    assert list(written.columns) == ["id", "label", "name", "garden", "component_1", "component_2"]
    assert list(written["id"]) == list(frame["flower"]) and list(written["name"]) == list(frame["name"])
    assert list(written["garden"]) == list(frame["garden"])
    embedding = read_embedding(project.outputs / "flowers" / "embedding.csv")
    assert list(embedding.kept) == ["name", "garden"] and embedding.kept["name"][1] == 'flower "1", of setosa'
    page = (project.outputs / "flowers" / "map.html").read_text()
    assert "garden" in page and "F0007" in page


def test_plugin_dataset_keeps_columns(project):
    """The iris plugin loads a DataFrame (no read_blocks): keep works there too, with no plugin change."""
    project.copy_data("iris.csv")
    project.job("iris", """
        [dataset]
        name = "iris"
        path = "../Data/iris.csv"
        keep = ["sepal_length"]
        """ + QUICK)
    result = project.run("run", "jobs/iris.toml")
    assert result.returncode == 0, result.stderr
    written = pd.read_csv(project.outputs / "iris" / "embedding.csv", dtype=str)
    assert list(written.columns) == ["id", "label", "sepal_length", "component_1", "component_2"]
    source = pd.read_csv(project.root / "Data" / "iris.csv", dtype=str)
    assert list(written["sepal_length"]) == list(source["sepal_length"])


def test_keep_refusals_are_one_line_and_publish_nothing(project):
    flowers(project)
    cases = {
        "missing": ('keep = ["nickname"]', "dataset.keep 'nickname': "),
        "missing_role": ('keep = ["nickname"]', "flowers.csv: kept column 'nickname' not found; the columns are: "),
        "clash": ('keep = ["component_1"]', "dataset.keep names 'component_1', a column embedding.csv has"),
        "label": ('keep = ["label"]', "dataset.keep names 'label'"),
        "twice": ('keep = ["name", "name"]', "dataset.keep names 'name' more than once"),
        "type": ("keep = [1]", "dataset.keep must be a list of column names"),
    }
    for name, (line, expected) in cases.items():
        project.job(name, f"""
            [dataset]
            name = "csv"
            path = "../Data/flowers.csv"
            label = "species"
            {line}
            """ + QUICK)
        for command in ("check", "run"):
            result = project.run(command, f"jobs/{name}.toml")
            assert result.returncode != 0, (name, command)
            assert expected in result.stdout + result.stderr, (name, command, result.stdout, result.stderr)
            assert "Traceback" not in result.stderr
        assert not (project.outputs / name / "embedding.csv").exists()


def test_kept_columns_from_the_float32_cache_and_a_plugin_refusal(project):
    """A table held on disk (streaming = true) keeps its columns as one in memory does; a plugin
    dataset's missing kept column is refused by `check --data` and `run`, naming it."""
    frame = flowers(project)
    project.job("cached", """
        [dataset]
        name = "csv"
        path = "../Data/flowers.csv"
        id = "flower"
        label = "species"
        keep = ["garden", "sepal_length"]  # a feature kept too: its text, verbatim
        streaming = true
        chunk_rows = 40
        """ + QUICK)
    result = project.run("run", "jobs/cached.toml")
    assert result.returncode == 0, result.stderr
    assert read_manifest(project.outputs / "cached" / "manifest.json").table["held"] == "cache"
    written = pd.read_csv(project.outputs / "cached" / "embedding.csv", dtype=str)
    assert list(written.columns) == ["id", "label", "garden", "sepal_length", "component_1", "component_2"]
    assert list(written["garden"]) == list(frame["garden"])
    source = pd.read_csv(project.root / "Data" / "flowers.csv", dtype=str)
    assert list(written["sepal_length"]) == list(source["sepal_length"])
    project.job("iris_missing", """
        [dataset]
        name = "iris"
        path = "../Data/iris.csv"
        keep = ["petal_colour"]
        """ + QUICK)
    for command in (("check", "--data"), ("run",)):
        refused = project.run(*command, "jobs/iris_missing.toml")
        assert refused.returncode != 0 and "petal_colour" in refused.stdout + refused.stderr, command
        assert "Traceback" not in refused.stderr
    assert not (project.outputs / "iris_missing" / "embedding.csv").exists()


def test_a_blank_kept_cell_is_refused_with_the_reason(project):
    (project.root / "Data" / "gaps.csv").write_text("a,b,name\n1,2,x\n3,4,\n5,7,z\n", encoding="utf-8")
    project.job("gaps", """
        [dataset]
        name = "csv"
        path = "../Data/gaps.csv"
        keep = ["name"]
        """ + QUICK)
    result = project.run("check", "--data", "jobs/gaps.toml")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "dataset.keep 'name': " in result.stdout and "at row 1 (line 3)" in result.stdout
    assert "a kept column is read as a label, so it needs a value in every row" in result.stdout
    assert "gaps.csv: kept column 'name' is blank in 1 row(s)" in result.stdout  # its part: kept, not the label
