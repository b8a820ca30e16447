"""A plugin's `read_blocks`, as an outside author writes it: reducer checks every block (width,
numbers, finite cells, ids and labels), a bad block fails its job alone in one line naming the job
file, the dataset, the block and the row; raw numbers are fine; the reader may say its size."""

import json
import textwrap
from pathlib import Path

import pytest

from conftest import Project

from reducer.publish import Destination
from reducer.run.pipeline import load_table
from reducer.run.runner import plan

# 300 rows in blocks of 100 as plain lists; `fault` spoils block 2 one way or another.
FEED = """
    import reducer


    class Feed:
        label_column, id_column = "kind", "key"

        def __init__(self, options, chunk_rows):
            self.fault = options["fault"]
            self.features = ["x", "y", "z"]
            if options["size_hint"]:
                self.rows_hint = options["size_hint"]

        def __enter__(self):
            if hasattr(self, "rows_hint"):
                self.rows = self.rows_hint  # what the reader says it holds: reducer's size hint
            return self

        def __exit__(self, *exc):
            return False

        def __iter__(self):
            for block in range(3):
                start = block * 100
                values = [[k % 7, (k * 3) % 11, k % 5 + 0.5] for k in range(start, start + 100)]
                ids = [f"k{k}" for k in range(start, start + 100)]
                labels = ["odd" if k % 2 else "even" for k in range(start, start + 100)]
                if block == 1:
                    if self.fault == "narrow":
                        values = [row[:2] for row in values]
                    elif self.fault == "nan":
                        values[42][1] = float("nan")
                    elif self.fault == "text":
                        values[3][0] = "abc"
                    elif self.fault == "short_ids":
                        ids = ids[:-1]
                    elif self.fault == "blank_id":
                        ids[17] = " "
                    elif self.fault == "no_labels":
                        labels = None
                    elif self.fault == "raises":
                        raise ConnectionError("the feed went away")
                    elif self.fault == "pair":
                        yield values, ids
                        continue
                yield values, ids, labels


    @reducer.hookimpl
    def register_datasets(register):
        register(reducer.Dataset(
            name="feed", description="300 rows in 3 blocks", load=lambda options: None, read_blocks=Feed,
            options={"fault": reducer.Option(str, default="none", description="how block 2 goes wrong"),
                     "size_hint": reducer.Option(int, default=0, description="the rows the reader says")}))
    """

FAULTS = {
    "narrow": "block 2 (rows 100-199): 2 column(s), expected 3 (x, y, z)",
    "nan": "block 2 (rows 100-199): column 'y', row 142: NaN (missing)",
    "text": "block 2: values must be numbers",
    "short_ids": "block 2 (rows 100-199): 99 ids for 100 row(s); expected one id per row",
    "blank_id": "block 2 (rows 100-199): id column 'key', row 117: the id is missing or blank (1 row(s) of the block)",
    "no_labels": "block 2 (rows 100-199): no labels, expected one per row for label column 'kind'",
    "raises": "failed to read its rows at line ",
    "pair": "block 2 is a tuple of 2; expected a tuple (values, ids, labels)",
}


@pytest.fixture
def feed(tmp_path):
    project = Project(tmp_path / "project")
    (project.root / "plugins" / "feed.py").write_text(textwrap.dedent(FEED))
    for fault in ["none", *FAULTS]:
        project.job(f"feed_{fault}", f"""
            [dataset]
            name = "feed"
            fault = "{fault}"
            [model]
            objective = "reconstruction"
            [training]
            epochs = 2
            batch_size = 32
            """)
    return project


def bad_lines(result, prefix):
    return {line.split(":")[0]: line for line in result.stdout.splitlines() if line.startswith(prefix)}


def test_check_data_reports_every_broken_block_in_one_line_and_goes_on(feed):
    result = feed.run("check", "jobs/*.toml", "--data")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = bad_lines(result, "feed_")
    assert lines["feed_none"].startswith("feed_none: ok") and "300 rows x 3 columns" in lines["feed_none"]
    for fault, expected in FAULTS.items():
        line = lines[f"feed_{fault}"]
        job_file = feed.root / "jobs" / f"feed_{fault}.toml"
        assert line.startswith(f"feed_{fault}: invalid: {job_file}: dataset 'feed'"), line
        assert expected in line, line
    assert "ConnectionError: the feed went away" in lines["feed_raises"]
    assert "feed.py" in lines["feed_raises"]


def test_run_fails_the_broken_jobs_alone_and_publishes_the_good_one(feed):
    result = feed.run("run", "jobs/feed_none.toml", "jobs/feed_narrow.toml", "jobs/feed_nan.toml")
    assert result.returncode == 1, result.stderr
    assert "internal error" not in result.stdout and "Traceback" not in result.stderr
    summary = bad_lines(result, "  feed_")
    assert summary["  feed_none"].startswith("  feed_none: ok")
    assert FAULTS["narrow"] in summary["  feed_narrow"] and FAULTS["nan"] in summary["  feed_nan"]
    manifest = json.loads((feed.outputs / "feed_none" / "manifest.json").read_text())
    assert manifest["dataset"]["rows"] == 300 and manifest["dataset"]["id_column"] == "key"
    assert not (feed.outputs / "feed_narrow" / "manifest.json").exists()


def opened(project, job):
    """The table as `reducer run` opens it (the storage decision included), with no training."""
    (job_path,) = [project.root / "jobs" / f"{job}.toml"]
    the_plan = plan([job_path])
    assert not the_plan.failed, the_plan.failed[0].reason
    (entry,) = the_plan.ready
    return load_table(*entry, Destination(project.outputs, project.models))


def test_the_readers_size_hint_decides_memory_or_cache(feed):
    for name, hint in (("small", 300), ("huge", 2_000_000_000)):
        feed.job(name, f'[dataset]\nname = "feed"\nsize_hint = {hint}\n')
    _, table, place, _, _ = opened(feed, "small")
    assert place.in_memory and table.held == "memory"
    assert place.reason.startswith("dataset 'feed' says 300 rows x 3 columns, which would need about")
    _, table, place, _, _ = opened(feed, "huge")
    assert not place.in_memory and table.held == "cache" and table.rows == 300
    assert "says 2,000,000,000 rows x 3 columns" in place.reason and "above the limit" in place.reason
    assert Path(table.cache_facts()["cache"]).parent == feed.outputs / ".cache"
    _, table, place, _, _ = opened(feed, "feed_none")  # no hint: memory, as before
    assert place.in_memory and "gives no size" in place.reason


def test_a_bad_block_is_an_error_with_fields_rows_counted_from_0(feed):
    """Issue 19 items 5 and 9: the job file, the dataset and block, the column and the row are
    fields of the error, its line is built from them, and rows count from 0 as everywhere."""
    from reducer.errors import DataError

    with pytest.raises(DataError) as caught:
        opened(feed, "feed_nan")
    error = caught.value
    assert (error.job, error.place, error.column, error.row) == (
        feed.root / "jobs" / "feed_nan.toml", "dataset 'feed': block 2 (rows 100-199)", "y", 142)
    assert str(error) == (f"{feed.root / 'jobs' / 'feed_nan.toml'}: dataset 'feed': block 2 (rows 100-199): "
                          f"column 'y', row 142: NaN (missing), in 1 cell(s) of the block; expected finite numbers")
