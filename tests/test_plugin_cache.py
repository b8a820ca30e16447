"""Plugins written as an outside author would, night after night: the float32 cache follows the
plugin's options and code, and a dataset without an input file reducer can hash is read again
every night, its rows deciding whether the job is `unchanged`."""

import json
import textwrap

from conftest import Project

# A drop-in reading "x,y,z" lines from `path`, keeping the first `limit` of them: an option
# that changes the rows without changing the file.
LINES_PLUGIN = """
    import numpy as np
    import pandas as pd
    import reducer


    class Blocks:
        def __init__(self, options, chunk_rows):
            self.path, self.limit, self.chunk_rows = options["path"], options.get("limit"), chunk_rows
            self.features, self.label_column, self.id_column = ["x", "y", "z"], None, None

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def __iter__(self):
            with open(self.path) as handle:
                rows = [[float(v) for v in line.split(",")] for line in handle if line.strip()]
            rows = rows[:self.limit] if self.limit else rows
            for start in range(0, len(rows), self.chunk_rows):
                yield np.asarray(rows[start:start + self.chunk_rows]), None, None


    def load(options):
        with Blocks(options, 10**9) as blocks:
            return pd.DataFrame(np.concatenate([v for v, _, _ in blocks]), columns=blocks.features)


    @reducer.hookimpl
    def register_datasets(register):
        register(reducer.Dataset(name="lines", description="x,y,z lines", load=load, read_blocks=Blocks,
                                 options={"path": str, "limit": int}))
    """

# A stand-in for a database: rows from a table file named by an option, no `path`.
TABLE_PLUGIN = """
    import contextlib
    import numpy as np
    import pandas as pd
    import reducer

    SCALE = 1.0


    def rows(options):
        with open(options["tables_path"] + "/" + options["table"] + ".txt") as handle:
            return np.asarray([[float(v) * SCALE for v in line.split()] for line in handle if line.strip()])


    @contextlib.contextmanager
    def read_blocks(options, chunk_rows):
        class Blocks:
            features, label_column, id_column = ["a", "b"], None, None

            def __iter__(self):
                values = rows(options)
                for start in range(0, len(values), chunk_rows):
                    yield values[start:start + chunk_rows], None, None

        yield Blocks()


    @reducer.hookimpl
    def register_datasets(register):
        register(reducer.Dataset(name="db_table", description="rows of a table",
                                 load=lambda options: pd.DataFrame(rows(options), columns=["a", "b"]),
                                 read_blocks=read_blocks, options={"tables_path": str, "table": str}))
    """

TRAINING = """
    [model]
    objective = "reconstruction"
    [training]
    epochs = 2
    batch_size = 32
    log_every = 1
    """


def plugin(project, name, text):
    path = project.root / "plugins" / f"{name}.py"
    path.write_text(textwrap.dedent(text))
    return path


def manifest(project, job):
    return json.loads((project.outputs / job / "manifest.json").read_text())


def summary(result, job):
    return next((line for line in result.stdout.splitlines() if line.startswith(f"  {job}: ")), result.stdout)


def test_a_cached_plugin_table_follows_its_options_and_code(tmp_path):
    project = Project(tmp_path / "project")
    plugin(project, "lines", LINES_PLUGIN)
    (project.root / "Data" / "points.txt").write_text(
        "".join(f"{i % 7},{(i * 3) % 11},{i % 5 + i / 100}\n" for i in range(300)))
    job = """
        [dataset]
        name = "lines"
        path = "../Data/points.txt"
        limit = {limit}
        streaming = true
        chunk_rows = 64
        """ + TRAINING
    project.job("lines", job.format(limit=300))
    first = project.run("run", "jobs/lines.toml")
    assert first.returncode == 0, first.stderr
    assert manifest(project, "lines")["dataset"]["rows"] == 300
    assert "in the float32 cache, written to" in first.stderr

    project.job("lines", job.format(limit=150))  # the same file, another option
    fewer = project.run("run", "jobs/lines.toml")
    assert fewer.returncode == 0, fewer.stderr
    assert manifest(project, "lines")["dataset"]["rows"] == 150
    assert "in the float32 cache, written to" in fewer.stderr and "reused from" not in fewer.stderr
    assert "unchanged" not in summary(fewer, "lines")

    same = project.run("run", "jobs/lines.toml")
    assert "lines: unchanged" in summary(same, "lines"), same.stdout
    assert "reused from" in same.stderr

    # The plugin's code changes (its rows too: every value doubled): read again, trained again.
    code = project.root / "plugins" / "lines.py"
    code.write_text(code.read_text().replace("float(v) for v", "2 * float(v) for v"))
    edited = project.run("run", "jobs/lines.toml")
    assert edited.returncode == 0, edited.stderr
    assert "unchanged" not in summary(edited, "lines")
    assert "in the float32 cache, written to" in edited.stderr
    assert "the dataset's plugin code" in edited.stderr and "the rows" in edited.stderr


def test_a_dataset_without_an_input_file_is_read_every_night(tmp_path):
    project = Project(tmp_path / "project")
    plugin(project, "db_table", TABLE_PLUGIN)
    tables = project.root / "Data" / "tables"
    tables.mkdir()
    (tables / "items.txt").write_text("".join(f"{i % 9} {(i * 7) % 13}\n" for i in range(200)))
    project.job("items", """
        [dataset]
        name = "db_table"
        tables_path = "../Data/tables"
        table = "items"
        streaming = true
        """ + TRAINING)
    first = project.run("run", "jobs/items.toml")
    assert first.returncode == 0, first.stderr
    assert manifest(project, "items")["dataset"]["rows"] == 200

    same = project.run("run", "jobs/items.toml")  # read again: the same rows, so unchanged
    assert "items: unchanged" in summary(same, "items"), same.stdout
    assert "written to" in same.stderr and "reused from" not in same.stderr

    with open(tables / "items.txt", "a") as handle:  # the source gains rows; no file reducer hashes
        handle.write("".join(f"{i % 4} {i % 6}\n" for i in range(40)))
    grown = project.run("run", "jobs/items.toml")
    assert grown.returncode == 0, grown.stderr
    assert "unchanged" not in summary(grown, "items") and "the rows" in grown.stderr
    assert manifest(project, "items")["dataset"]["rows"] == 240
