"""One table path: where a table is held is decided from its size (or forced by the job), said
in the log and the manifest; `reducer check` refuses what `run` would, and `check --data` reads
every row; the neighbour objective runs on a cached table."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import DATA, TEST_PLUGINS, Project, run_cli
from reducer.config import read_job
from reducer.datasets.registry import load_registry
from reducer.tables import storage


def wine_job(project, name="wine", extra=""):
    project.copy_data("wine.csv")
    return project.job(name, f"""
        [dataset]
        name = "csv"
        path = "../Data/wine.csv"
        id = "sample_id"
        label = "cultivar"
        {extra}
        [training]
        epochs = 4
        log_every = 2
        """)


def test_the_size_of_the_input_decides_where_the_table_is_held(project):
    csv = load_registry().get("csv")
    job = read_job(wine_job(project))
    size = (project.root / "Data" / "wine.csv").stat().st_size
    roomy = storage.choose(job, csv, available=64 << 30)
    assert roomy.in_memory and "within the limit" in roomy.reason
    tight = storage.choose(job, csv, available=size * storage.BYTES_PER_INPUT_BYTE * storage.MEMORY_SHARE - 4)
    assert not tight.in_memory and "above the limit" in tight.reason
    forced = storage.choose(read_job(wine_job(project, "forced", "streaming = false")), csv, available=10)
    assert forced.in_memory and forced.reason == "the job says streaming = false"
    iris = storage.choose(job, load_registry().get("iris"))
    assert iris.in_memory and "loads its rows into memory" in iris.reason


@pytest.fixture(scope="module")
def held_both_ways(tmp_path_factory):
    """One run of two wine jobs: the table held in memory (reducer decides), and in the cache with
    the neighbour objective (the job says streaming = true)."""
    project = Project(tmp_path_factory.mktemp("tables") / "project")
    wine_job(project, "wine")
    wine_job(project, "cached", extra="streaming = true\nchunk_rows = 64\n[model]\nobjective = \"neighbors\"")
    return project, project.run("run", "jobs/wine.toml", "jobs/cached.toml")


def test_a_run_says_where_its_table_is_held_in_the_log_and_the_manifest(held_both_ways):
    project, result = held_both_ways
    assert result.returncode == 0, result.stderr
    assert "[wine] 178 rows x 13 columns from dataset 'csv', held in memory (input" in result.stderr
    manifest = json.loads((project.outputs / "wine" / "manifest.json").read_text())
    assert manifest["table"]["held"] == "memory" and "within the limit" in manifest["table"]["reason"]
    assert "streaming" not in manifest


def test_the_neighbour_objective_runs_on_a_cached_table(held_both_ways):
    project, result = held_both_ways
    assert result.returncode == 0, result.stderr
    manifest = json.loads((project.outputs / "cached" / "manifest.json").read_text())
    assert manifest["table"]["held"] == "cache" and manifest["training"]["engine"] == "reducer neighbour loop (XLA)"
    embedding = pd.read_csv(project.outputs / "cached" / "embedding.csv")
    assert len(embedding) == 178 and np.isfinite(embedding[["component_1", "component_2"]]).all().all()


def test_check_refuses_what_run_would_refuse(project):
    wine_job(project, "chunks", "chunk_rows = 0")
    wine_job(project, "delimiter", 'delimiter = ";;"')
    wine_job(project, "encoding", 'encoding = "klingon"')
    project.job("seed", '[dataset]\nname = "iris"\n[training]\nseed = 9223372036854775807\n')
    project.job("iris_streaming", '[dataset]\nname = "iris"\nstreaming = true\n')
    result = project.run("check", "jobs/*.toml")
    assert result.returncode == 1
    lines = {line.split(":")[0]: line for line in result.stdout.splitlines()}
    assert "dataset.chunk_rows must be 1 or more, got 0" in lines["chunks"]
    assert "delimiter must be one character, got ';;'" in lines["delimiter"]
    assert "unknown encoding 'klingon'" in lines["encoding"]
    assert "training.seed must be from 0 to 4294967295" in lines["seed"]
    assert "unknown key 'streaming' in [dataset] for dataset 'iris'" in lines["iris_streaming"]
    assert "applies to datasets that can be read in blocks" in lines["iris_streaming"]
    ran = project.run("run", "jobs/chunks.toml")  # run refuses it with the same line
    assert ran.returncode == 1 and lines["chunks"].split("invalid: ")[1] in ran.stdout


def test_check_reads_the_header_and_refuses_columns_the_input_lacks(project):
    """Without --data, check reads the CSV's first lines: a label, id or feature the header
    lacks is refused with the line run prints, naming the column and the file."""
    for name, right, wrong in (("label", "cultivar", "bacth"), ("id", "sample_id", "sampleid")):
        path = wine_job(project, name)
        path.write_text(path.read_text().replace(f'"{right}"', f'"{wrong}"'))
    wine_job(project, "features", 'features = ["alcohol", "colour"]')
    wine_job(project, "fine")
    result = project.run("check", "jobs/*.toml")
    assert result.returncode == 1, result.stderr
    lines = {line.split(":")[0]: line for line in result.stdout.splitlines()}
    data = project.root / "Data" / "wine.csv"
    assert lines["label"].startswith(f"label: invalid: {project.root / 'jobs' / 'label.toml'}: {data}: label column "
                                     f"'bacth' not found; the columns are: sample_id, alcohol,"), lines["label"]
    assert f"{data}: id column 'sampleid' not found" in lines["id"]
    assert f"{data}: feature column 'colour' not found" in lines["features"]
    assert lines["fine"].startswith("fine: ok")
    assert "tensorflow" not in result.stderr.lower() and not (project.outputs / ".cache").exists()
    ran = project.run("run", "jobs/label.toml")  # run refuses it with the same line
    assert ran.returncode == 1 and lines["label"].split("invalid: ")[1] in ran.stdout


def test_check_refuses_a_bad_cell_in_the_first_rows_it_reads_with_runs_line(project):
    """check reads a CSV's first 2,000 rows to find its columns: a cell there that run refuses (a
    text column named in features, a blank label) is refused by check too, with run's line
    (job file, data file, column, row and line); a bad cell further down is --data's."""
    wine = pd.read_csv(DATA / "wine.csv")
    wine.insert(2, "note", ["batch A"] * len(wine))
    wine.to_csv(project.root / "Data" / "noted.csv", index=False)
    blank = wine.drop(columns="note")
    blank.loc[7, "cultivar"] = ""
    blank.to_csv(project.root / "Data" / "blank.csv", index=False)
    for name, extra in (("noted", 'features = ["alcohol", "note"]'), ("blank", "")):
        job = wine_job(project, name, extra)
        job.write_text(job.read_text().replace("wine.csv", f"{name}.csv"))
    result = project.run("check", "jobs/noted.toml", "jobs/blank.toml")
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = {line.split(":")[0]: line.split(": invalid: ")[1] for line in result.stdout.splitlines()}
    assert lines["noted"] == (f"{project.root / 'jobs' / 'noted.toml'}: {project.root / 'Data' / 'noted.csv'}: "
                              f"column 'note', row 0 (line 2): expected a number, got 'batch A'"), lines["noted"]
    assert lines["blank"].startswith(f"{project.root / 'jobs' / 'blank.toml'}: {project.root / 'Data' / 'blank.csv'}: "
                                     f"label column 'cultivar' is blank in 1 row(s), at row 7 (line 9)"), lines["blank"]
    ran = project.run("run", "jobs/noted.toml", "jobs/blank.toml")  # run refuses them with the same lines
    assert ran.returncode == 1 and lines["noted"] in ran.stdout and lines["blank"] in ran.stdout, ran.stdout
    assert not (project.outputs / "noted" / "manifest.json").exists()
    assert not (project.outputs / "blank" / "manifest.json").exists()


def test_a_label_among_the_features_is_refused_naming_both_keys(project):
    """A column is a feature or the label: check (before reading a row) and run refuse a label
    the features name, whoever set the label, with one line naming both keys."""
    wine_job(project, "wine_both", 'features = ["alcohol", "cultivar"]')
    project.job("iris_both", '[dataset]\nname = "iris"\nfeatures = ["sepal_length", "species"]\n')
    result = project.run("check", "jobs/wine_both.toml", "jobs/iris_both.toml")
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = {line.split(":")[0]: line.split(": invalid: ")[1] for line in result.stdout.splitlines()}
    assert lines["wine_both"] == (f"{project.root / 'jobs' / 'wine_both.toml'}: dataset.features names 'cultivar', "
                                  f"the label column (dataset.label); a column is a feature or the label, not both: "
                                  f"remove it from features, or name another label"), lines["wine_both"]
    assert "dataset.features names 'species', the label column (the label dataset 'iris' sets)" in lines["iris_both"]
    ran = project.run("run", "jobs/wine_both.toml", "jobs/iris_both.toml")
    assert ran.returncode == 1 and lines["wine_both"] in ran.stdout and lines["iris_both"] in ran.stdout, ran.stdout
    assert not (project.outputs / "wine_both" / "manifest.json").exists()


def refused_alike(project, name, expected):
    """check says `name: invalid: <expected>`, and run fails with the same line, no traceback."""
    checked = project.run("check", f"jobs/{name}.toml")
    assert checked.returncode == 1 and checked.stdout.strip() == f"{name}: invalid: {expected}", checked.stdout
    ran = project.run("run", f"jobs/{name}.toml")
    assert ran.returncode == 1 and expected in ran.stdout and "Traceback" not in ran.stderr, ran.stdout


def test_a_label_that_is_the_id_is_refused_naming_both_keys(project):
    """The id names each row and the label colours the map: one column cannot be both. check
    refuses it before reading a row, run with the same line, nothing published."""
    job = wine_job(project, "same")
    job.write_text(job.read_text().replace('label = "cultivar"', 'label = "sample_id"'))
    expected = (f"{job}: dataset.label and dataset.id both name column 'sample_id'; expected two different "
                f"columns (the id names each row, the label colours the map and is measured)")
    refused_alike(project, "same", expected)
    assert not (project.outputs / "same" / "manifest.json").exists()


def test_keeping_the_label_or_the_id_again_is_refused(project):
    """embedding.csv has the label and the id already, by role: keeping one of them again put it
    there twice and listed it twice under the map page's "colour by". check and run refuse it."""
    job = wine_job(project, "twice")
    text = job.read_text()
    for column, key in (("cultivar", "label"), ("sample_id", "id")):
        job.write_text(text.replace("[dataset]\n", f'[dataset]\nkeep = ["{column}"]\n'))
        expected = (f"{job}: dataset.keep names '{column}', the {key} column (dataset.{key}), which "
                    f"embedding.csv has already as its '{key}'; expected the names of other columns")
        refused_alike(project, "twice", expected)


def test_check_reads_a_load_only_datasets_header_and_refuses_what_run_refuses(project):
    """A dataset without read_blocks that offers `header` (the built-in iris and uci_digits do,
    and a plugin may): check refuses a label or feature its columns lack, with run's line,
    without loading the rows (this plugin's load would fail)."""
    project.copy_data("iris.csv")
    project.job("iris_typo", '[dataset]\nname = "iris"\npath = "../Data/iris.csv"\nlabel = "spceies"\n')
    project.job("digits_typo", '[dataset]\nname = "uci_digits"\nfeatures = ["pixel_0_0", "pixel_8_0"]\n')
    project.job("iris_keep", '[dataset]\nname = "iris"\npath = "../Data/iris.csv"\nkeep = ["sepal_lenght"]\n')
    (project.root / "plugins" / "headed.py").write_text(
        "import pandas as pd\nimport reducer\n\n"
        "def load(options):\n    raise RuntimeError('load is slow: check must not call it')\n\n"
        "def header(options):\n"
        "    frame = pd.DataFrame(columns=['key', 'x', 'y', 'kind'])\n"
        "    frame.attrs['source'] = 'the warehouse'\n    return frame\n\n"
        "@reducer.hookimpl\ndef register_datasets(register):\n"
        "    register(reducer.Dataset(name='headed', description='columns from header()', load=load, "
        "header=header, id='key', label='kind'))\n")
    project.job("headed_typo", '[dataset]\nname = "headed"\nid = "kee"\n')
    project.job("headed_fine", '[dataset]\nname = "headed"\nfeatures = ["x", "y"]\n')
    result = project.run("check", "jobs/*.toml")
    assert result.returncode == 1, result.stderr
    lines = {line.split(":")[0]: line for line in result.stdout.splitlines()}
    iris_line = (f"{project.root / 'jobs' / 'iris_typo.toml'}: {project.root / 'Data' / 'iris.csv'}: label column "
                 f"'spceies' not found; the columns are: sepal_length, sepal_width, petal_length, petal_width, species")
    assert lines["iris_typo"] == f"iris_typo: invalid: {iris_line}", lines["iris_typo"]
    assert "feature column 'pixel_8_0' not found; the columns are: pixel_0_0" in lines["digits_typo"]
    assert lines["headed_typo"].endswith("headed_typo.toml: the warehouse: id column 'kee' not found; the columns "
                                         "are: key, x, y, kind"), lines["headed_typo"]
    assert lines["headed_fine"].startswith("headed_fine: ok"), lines["headed_fine"]
    keep_line = lines["iris_keep"].split("invalid: ")[1]
    assert keep_line.endswith("iris.csv: dataset.keep: kept column 'sepal_lenght' not found; the columns are: "
                              "sepal_length, sepal_width, petal_length, petal_width, species"), keep_line
    assert "tensorflow" not in result.stderr.lower()
    ran = project.run("run", "jobs/iris_typo.toml", "jobs/iris_keep.toml")  # run refuses them with the same lines
    assert ran.returncode == 1 and iris_line in ran.stdout and keep_line in ran.stdout, ran.stdout


def test_check_data_finds_a_bad_cell_deep_in_a_csv_with_its_line(project):
    rng = np.random.default_rng(1)
    rows = [f"{rng.normal():.4f},{rng.normal():.4f},k{i % 3}" for i in range(5000)]
    rows[4321] = "1.0,oops,k1"
    (project.root / "Data" / "deep.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    project.job("deep", '[dataset]\nname = "csv"\npath = "../Data/deep.csv"\nlabel = "label"\nchunk_rows = 1000\n')
    quick = project.run("check", "jobs/deep.toml")
    assert quick.returncode == 0 and "deep: ok" in quick.stdout
    thorough = project.run("check", "--data", "jobs/deep.toml")
    assert thorough.returncode == 1
    assert "deep.csv: column 'b', row 4321 (line 4323): expected a number, got 'oops'" in thorough.stdout
    assert "tensorflow" not in thorough.stderr.lower()
    assert not (project.outputs / ".cache").exists()  # check writes nothing
    good = Project(project.root.parent / "good")
    wine_job(good)
    checked = good.run("check", "--data", "jobs/wine.toml")
    assert checked.returncode == 0 and "178 rows x 13 columns read and checked" in checked.stdout


def test_datasets_imports_no_plugin_from_the_current_folder_unasked(tmp_path):
    folder = tmp_path / "untrusted"
    (folder / "plugins").mkdir(parents=True)
    shutil.copy(TEST_PLUGINS / "good" / "squares.py", folder / "plugins" / "squares.py")
    (folder / "plugins" / "evil.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').write('x')\n")
    listed = run_cli("datasets", cwd=folder)
    assert listed.returncode == 0 and "squares" not in listed.stdout and "iris" in listed.stdout
    assert not (tmp_path / "ran").exists()
    asked = run_cli("datasets", "--project", ".", cwd=folder)
    assert "squares" in asked.stdout and (tmp_path / "ran").exists()


def test_built_in_sample_data_is_the_repository_data_folder():
    import reducer

    assert (reducer.DATA / "iris.csv").read_bytes() == (DATA / "iris.csv").read_bytes()


@pytest.mark.parametrize("streaming", ["false", "true"], ids=["in memory", "in the cache"])
def test_a_column_constant_in_float32_is_kept_as_constant_not_refused(project, streaming):
    """A column of 5 + 1e-12 noise (issue 23, twelfth session) is one value in float32, the
    precision the model sees: it is warned of as constant and kept with scale 1, like any
    constant column; its float64 spread (1e-12) used to fail the job as a scale under 1e-7."""
    frame = pd.read_csv(project.copy_data("wine.csv"))
    frame["steady"] = 5.0 + 1e-12 * np.random.default_rng(0).normal(size=len(frame))
    frame.to_csv(project.root / "Data" / "steady.csv", index=False)
    project.job("steady", f'[dataset]\nname = "csv"\npath = "../Data/steady.csv"\nid = "sample_id"\n'
                f'label = "cultivar"\nstreaming = {streaming}\n[training]\nepochs = 2\n')
    result = project.run("run", "jobs/steady.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[steady] constant column(s) 'steady' of " in result.stderr
    manifest = json.loads((project.outputs / "steady" / "manifest.json").read_text())
    dataset = manifest["dataset"]
    assert dataset["features"][-1] == "steady" and dataset["scale"][-1] == 1.0, dataset
