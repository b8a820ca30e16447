"""Tables out of core: the csv dataset read in chunks into a float32 cache, trained from it in
shuffled chunks, written out in chunks. The cache must hold exactly what the in-memory path
sees, bad rows deep in the file must still name their line (the same message both ways), and a
run must publish the same files the in-memory path would (layout, ids, labels, row digest)."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from conftest import DATA, REPO, Project
from reducer.config import read_job
from reducer.datasets.registry import load_registry
from reducer.errors import DataError
from reducer.publish import sha256_file
from reducer.tables import storage


@pytest.fixture(scope="module")
def csv_dataset():
    return load_registry().get("csv")


def toml_value(value):
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return f'"{value}"' if isinstance(value, str) else str(value)


def csv_job(folder, options):
    """A real job file for the csv dataset with these [dataset] options, read as run reads it."""
    path = folder / "jobs" / "job.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["[dataset]", 'name = "csv"'] + [f"{key} = {toml_value(value)}" for key, value in options.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return read_job(path)


def in_memory(dataset, options, folder):
    job = csv_job(folder / "memory", options)
    return storage.open_table(job, dataset, None, storage.Storage(True, "a test"), None)


def open_cache(dataset, options, folder, chunk_rows=None, job_folder=None):
    """The cached table, built in `folder` (or reused from it), as run does when it streams."""
    options = {**options, **({"chunk_rows": chunk_rows} if chunk_rows else {})}
    job = csv_job(job_folder or folder.parent.parent / "job-files", options)
    return storage.open_table(job, dataset, None, storage.Storage(False, "a test"), folder,
                              sha256_file(options["path"]))


def awkward_csv(path):
    """A byte-order mark, ';' delimiters, blank lines, a quoted label spanning two lines, a
    quoted delimiter, an id column: every way a row and its line can part company."""
    rng = np.random.default_rng(3)
    lines = ["id;x;y;z;kind"]
    for i in range(1200):
        kind = {0: "plain", 1: '"two\nlines"', 2: '"semi;colon"'}[i % 3] if i % 97 == 0 else f"k{i % 4}"
        lines.append(f"s{i};{rng.normal():.5f};{rng.normal() * 50:.3f};{rng.integers(0, 9)};{kind}")
        if i % 250 == 0:
            lines.append("")
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode() + b"\n")
    return path


@pytest.mark.parametrize("source, options", [
    ("wine", {"label": "cultivar", "id": "sample_id"}),
    ("iris", {"normalize": "zscore"}),  # the text column `species` is skipped, as in memory
    ("awkward", {"delimiter": ";", "label": "kind", "id": "id"}),
])
def test_the_cache_holds_what_the_in_memory_path_sees(csv_dataset, tmp_path, source, options):
    path = awkward_csv(tmp_path / "awkward.csv") if source == "awkward" else DATA / f"{source}.csv"
    options = {"path": str(path), **options}
    memory = in_memory(csv_dataset, options, tmp_path)
    cached = open_cache(csv_dataset, options, tmp_path / "cache" / "job", chunk_rows=70)
    assert cached.rows == memory.rows and cached.features == memory.features
    assert np.array_equal(cached.raw(), memory.raw()) and np.array_equal(cached.raw(90, 40), memory.raw(90, 40))
    np.testing.assert_allclose(cached.offset, memory.offset, rtol=1e-6)
    np.testing.assert_allclose(cached.scale, memory.scale, rtol=1e-6)
    np.testing.assert_allclose(cached.normalised_rows(), memory.normalised_rows(), rtol=1e-5, atol=1e-6)
    assert cached.in_unit_range == memory.in_unit_range
    assert cached.sha256 == memory.sha256  # values, labels and ids, in any order
    assert cached.order_sha256 == memory.order_sha256 and cached.order_sha256 != cached.sha256  # in order
    if memory.labels() is not None:
        assert list(cached.labels()) == list(memory.labels())
        assert list(cached.labels(90, 40)) == list(memory.labels(90, 40))
    assert [str(i) for chunk in cached.id_chunks(size=100) for i in chunk] == [str(i) for i in memory.ids()]
    assert [str(i) for i in cached.ids(90, 40)] == [str(i) for i in memory.ids(90, 40)]
    rows = np.array([0, 3, 77, memory.rows - 1])
    assert [str(i) for i in cached.ids_at(rows)] == [str(i) for i in memory.ids_at(rows)]
    (cached_raw, cached_labels), (memory_raw, memory_labels) = cached.take(rows), memory.take(rows)
    assert np.array_equal(cached_raw, memory_raw)
    assert (cached_labels is None) == (memory_labels is None)
    assert cached_labels is None or list(cached_labels) == list(memory_labels)
    for (raw, ids, labels), (raw2, ids2, labels2) in zip(cached.chunks(64), memory.chunks(64)):
        assert np.array_equal(raw, raw2) and [str(i) for i in ids] == [str(i) for i in ids2]
    assert memory.held == "memory" and memory.where == "in memory" and memory.cache_facts() is None
    assert cached.held == "cache" and cached.where.startswith("in the float32 cache, written to ")
    assert cached.cache_facts() == {"cache": str(tmp_path / "cache" / "job"), "cache_reused": False}


def test_both_tables_answer_one_interface_with_the_same_kinds(csv_dataset, tmp_path):
    """Same names, same kinds: what is an attribute of one is an attribute of the other, what
    is a method of one is a method of the other (tables.table.Table)."""
    from reducer.tables.table import Table

    options = {"path": str(DATA / "wine.csv"), "label": "cultivar", "id": "sample_id"}
    memory = in_memory(csv_dataset, options, tmp_path)
    cached = open_cache(csv_dataset, options, tmp_path / "cache" / "job")
    names = [n for n in dir(Table) if not n.startswith("_")]
    assert {"rows", "features", "raw", "labels", "ids", "take", "chunks", "held"} <= set(names)
    for name in names:
        assert callable(getattr(memory, name)) == callable(getattr(cached, name)), name
    # Training asks the table for its rows at once, never where they are held (issue 19 item 4).
    assert memory.resident_rows() is memory.normalised_rows() and cached.resident_rows() is None


def test_no_code_outside_tables_branches_on_where_a_table_is_held():
    """Issue 19 item 4: `table.held` is a fact for the manifest and the log, not a switch; only
    reducer/tables/ compares it (the engine asks `resident_rows()` instead)."""
    import ast

    found = []
    for path in sorted((REPO / "reducer").rglob("*.py")):
        if "tables" in path.relative_to(REPO / "reducer").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and any(
                    isinstance(part, ast.Attribute) and part.attr == "held" for part in [node.left, *node.comparators]):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not found, found


def big_csv(path, edit=None, rows=3000):
    rng = np.random.default_rng(0)
    lines = ["id,a,b,c,label"] + [f"r{i},{rng.normal():.4f},{rng.normal():.4f},{rng.normal():.4f},k{i % 3}"
                                  for i in range(rows)]
    if edit:
        edit(lines)
    path.write_bytes("\n".join(lines).encode("utf-8", errors="surrogateescape") + b"\n")
    return path


MISSING = "(blank, NA or NaN)"


def line(number, text):
    def edit(lines):
        lines[number - 1] = text
    return edit


def quoted_then(number, text):
    def edit(lines):
        lines[5] = 'r4,1,2,3,"a label\non two lines"'  # from here on, line = row + 2
        lines[number - 2] = text
    return edit


@pytest.mark.parametrize("edit, expected", [
    (line(2718, "r2716,1.0,abc,2.0,k1"), "column 'b', row 2716 (line 2718): expected a number, got 'abc'"),
    (line(2718, "r2716,1.0,,2.0,k1"), f"column 'b' has 1 missing cell(s) {MISSING} at row 2716 (line 2718)"),
    (line(2718, "r2716,1.0,NA,2.0,k1"), f"column 'b' has 1 missing cell(s) {MISSING} at row 2716 (line 2718)"),
    (line(2718, "r2716,1.0,1e400,2.0,k1"), "column 'b', row 2716 (line 2718): value '1e400' is infinite"),
    (line(2718, "r2716,1.0,2.0,k1"), "line 2718: 4 field(s), expected 5 as in the header"),
    (line(2718, "r2716,1.0,2.0,3.0,k1,more"), "line 2718: 6 field(s), expected 5 as in the header"),
    (line(2502, "r2500,1.0,2.0,3.0,k1,more"), "line 2502: 6 field(s), expected 5"),  # first row of a block
    (line(2718, "r2716,1.0,2.0,3.0, "), "label column 'label' is blank in 1 row(s), at row 2716 (line 2718)"),
    (line(2718, "r2716,1.0,2.0,3.0,k\udcff"), "line 2718: not utf-8 text (byte 0xff)"),
    (quoted_then(2719, "r2716,1.0,abc,2.0,k1"), "column 'b', row 2716 (line 2719): expected a number"),
])
def test_a_bad_row_deep_in_the_file_names_its_line(csv_dataset, tmp_path, edit, expected):
    path = big_csv(tmp_path / "data.csv", edit)
    options = {"path": str(path), "label": "label", "id": "id"}
    with pytest.raises(DataError) as streamed:
        open_cache(csv_dataset, options, tmp_path / "cache" / "job", chunk_rows=500)
    message = str(streamed.value)
    assert message.startswith((f"{path}: {expected}", f"{path}, {expected}")) and "\n" not in message, message
    with pytest.raises(DataError) as loaded:  # the in-memory path gives the same message
        in_memory(csv_dataset, {**options, "chunk_rows": 500}, tmp_path)
    assert str(loaded.value) == message
    assert not (tmp_path / "cache" / "job").exists() and not list((tmp_path / "cache").iterdir())


def test_blocks_end_at_their_bytes_too_with_the_same_rows_and_messages(csv_dataset, tmp_path, monkeypatch):
    """A block of a wide file ends at csv_reader.BLOCK_BYTES of text, however few its lines (100,000
    lines of 500 columns held at once took 2.1 GB): the same rows, and a bad row's message names the
    same line, whether a block ends at its rows or at its bytes."""
    from reducer.tables import csv_reader

    path = big_csv(tmp_path / "data.csv")
    options = {"path": str(path), "label": "label", "id": "id"}
    whole = in_memory(csv_dataset, options, tmp_path / "rows")
    with csv_reader.read_blocks(options) as reader:
        assert [len(x) for x, _, _ in reader] == [3000]  # one block of 3,000 lines (about 100 KB)
    monkeypatch.setattr(csv_reader, "BLOCK_BYTES", 4096)
    with csv_reader.read_blocks(options) as reader:
        sizes = [len(x) for x, _, _ in reader]
    assert len(sizes) > 20 and sum(sizes) == 3000 and max(sizes) < 200
    cut = in_memory(csv_dataset, options, tmp_path / "bytes")
    assert np.array_equal(cut.raw(), whole.raw()) and list(cut.labels()) == list(whole.labels())
    assert [str(i) for i in cut.ids()] == [str(i) for i in whole.ids()]
    bad = big_csv(tmp_path / "bad.csv", line(2718, "r2716,1.0,abc,2.0,k1"))
    with pytest.raises(DataError, match=r"column 'b', row 2716 \(line 2718\): expected a number, got 'abc'"):
        in_memory(csv_dataset, {**options, "path": str(bad)}, tmp_path / "bad")


def test_the_cache_is_reused_until_the_csv_or_the_job_changes(csv_dataset, tmp_path):
    path = big_csv(tmp_path / "data.csv")
    options = {"path": str(path), "label": "label", "id": "id"}
    folder = tmp_path / "cache" / "job"
    first = open_cache(csv_dataset, options, folder, chunk_rows=700, job_folder=tmp_path)
    written = (folder / "raw.f32").stat().st_mtime_ns
    again = open_cache(csv_dataset, options, folder, chunk_rows=700, job_folder=tmp_path)
    assert not first.reused and again.reused and again.sha256 == first.sha256
    assert (folder / "raw.f32").stat().st_mtime_ns == written

    (folder.parent / ".job.tmp-123-abcd").mkdir()  # what a killed build leaves behind
    # An edit that keeps the file's size and modification time: the content decides, not the stat.
    stat = path.stat()
    lines = path.read_text().split("\n")
    row = lines[9].split(",")  # row 8: one digit of column a becomes another
    digit = next(i for i, ch in enumerate(row[1]) if ch.isdigit() and ch != "0")
    row[1] = row[1][:digit] + ("5" if row[1][digit] != "5" else "6") + row[1][digit + 1:]
    lines[9] = ",".join(row)
    path.write_text("\n".join(lines))
    assert path.stat().st_size == stat.st_size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    changed = open_cache(csv_dataset, options, folder, chunk_rows=700, job_folder=tmp_path)
    assert not changed.reused and changed.sha256 != first.sha256
    assert changed.raw(8, 1)[0, 0] == np.float32(float(row[1]))
    assert sorted(p.name for p in folder.parent.iterdir()) == ["job"]

    relabelled = open_cache(csv_dataset, {**options, "label": "a", "features": ["b", "c"]}, folder,
                            job_folder=tmp_path)
    assert not relabelled.reused and relabelled.features == ("b", "c") and relabelled.label_column == "a"


def streamed_project(root):
    project = Project(root)
    project.copy_data("wine.csv")
    project.job("wine", """
        [dataset]
        name = "csv"
        path = "../Data/wine.csv"
        id = "sample_id"
        label = "cultivar"
        streaming = true
        chunk_rows = 50
        [training]
        epochs = 6
        batch_size = 16
        log_every = 3
        """)
    return project


def test_a_streamed_run_publishes_what_the_in_memory_path_would(csv_dataset, tmp_path):
    project = streamed_project(tmp_path / "project")
    result = project.run("run", "jobs/wine.toml")
    assert result.returncode == 0, result.stderr
    assert "held in the float32 cache, written to" in result.stderr and "the job says streaming = true" in result.stderr
    assert "[wine] epoch =    6 loss = " in result.stderr
    embedding = pd.read_csv(project.outputs / "wine" / "embedding.csv")
    source = pd.read_csv(project.root / "Data" / "wine.csv")
    assert list(embedding.columns) == ["id", "label", "component_1", "component_2"]
    assert list(embedding["id"]) == list(source["sample_id"])
    assert list(embedding["label"]) == list(source["cultivar"])
    assert np.isfinite(embedding[["component_1", "component_2"]].to_numpy()).all()
    raw = (project.outputs / "wine" / "embedding.csv").read_bytes()
    assert b"\r\n" not in raw and raw.endswith(b"\n")
    assert (project.outputs / "wine" / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (project.models / "wine.keras").is_file()

    manifest = json.loads((project.outputs / "wine" / "manifest.json").read_text())
    memory = in_memory(csv_dataset, {"path": str(project.root / "Data" / "wine.csv"), "label": "cultivar",
                                     "id": "sample_id"}, tmp_path)
    assert manifest["dataset"]["rows"] == 178 and manifest["dataset"]["features"] == list(memory.features)
    assert manifest["dataset"]["rows_sha256"] == memory.sha256
    assert manifest["streaming"]["chunk_rows"] == 50 and manifest["streaming"]["cache_reused"] is False
    assert manifest["table"] == {"held": "cache", "reason": "the job says streaming = true"}
    assert len(manifest["training"]["loss_per_epoch"]) == 6
    for entry in manifest["files"].values():
        assert os.path.getsize(entry["path"]) == entry["bytes"]
    assert (project.outputs / ".cache" / "wine" / "raw.f32").stat().st_size == 178 * 13 * 4


def test_a_streamed_run_with_a_bad_row_fails_in_one_line_before_training(tmp_path):
    project = Project(tmp_path / "project")
    big_csv(project.root / "Data" / "data.csv", line(2718, "r2716,1.0,2.0,3.0,k1,more"))
    project.job("deep", """
        [dataset]
        name = "csv"
        path = "../Data/data.csv"
        label = "label"
        streaming = true
        chunk_rows = 400
        """)
    result = project.run("run", "jobs/deep.toml")
    assert result.returncode == 1, result.stderr
    summary = [text for text in result.stdout.splitlines() if text.startswith("  deep: failed")]
    assert summary and "data.csv, line 2718: 6 field(s), expected 5" in summary[0], result.stdout
    assert "Traceback" not in result.stderr and "epoch" not in result.stderr
    assert not (project.outputs / "deep" / "manifest.json").exists()
