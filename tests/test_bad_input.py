"""Every kind of bad input gets one line that names the file and the row, column or key, and
says what was expected. Fixtures are real files: tests/data/csv/, tests/data/jobs/ and the
plugins in tests/plugins/hostile/.

Most checks call the library the way `reducer run` does (`runner.plan`, then
`pipeline.load_table`); a few go through the real CLI to show the line a cron log gets. Every
CSV fixture is read both ways a table can be held (in memory, in the float32 cache) and must
give the same message both ways.
"""

import logging
import re
import shutil
import textwrap
from pathlib import Path

import pytest

from conftest import TEST_DATA, TEST_PLUGINS, run_cli
from reducer.errors import DataError, ReducerError
from reducer.publish import Destination
from reducer.run.pipeline import load_table
from reducer.run.runner import plan

CSV = TEST_DATA / "csv"
JOBS = TEST_DATA / "jobs"
HOSTILE = TEST_PLUGINS / "hostile"


def csv_job(tmp_path, fixture, **options):
    """A job file in a temporary folder naming a CSV fixture by absolute path."""
    lines = ['[dataset]', 'name = "csv"', f'path = "{CSV / fixture}"']
    lines += [f"{key} = {str(value).lower() if isinstance(value, bool) else repr(value)}".replace("'", '"')
              for key, value in options.items()]
    path = tmp_path / "jobs" / f"{Path(fixture).stem}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load(job_path, plugins=()):
    """What `reducer run` does before training: check the job, load and check its rows."""
    the_plan = plan([job_path], plugins)
    assert not the_plan.failed, the_plan.failed[0].reason
    (job, dataset, source), = the_plan.ready
    outputs = Path(job_path).parent.parent / "outputs"
    return load_table(job, dataset, source, Destination(outputs, outputs.parent / "Models"))[1]


def message_of(job_path, plugins=()):
    with pytest.raises(ReducerError) as caught:
        load(job_path, plugins)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# fixture, job options, the parts the one-line message must contain (the file is always checked)
CSV_CASES = [
    ("empty.csv", {}, ["the file is empty", "expected a header line"]),
    ("blank_lines_only.csv", {}, ["the file is empty"]),
    ("header_only.csv", {}, ["only a header line, no data rows", "expected at least 2 rows"]),
    ("single_row.csv", {}, ["1 data row", "expected at least 2 rows"]),
    ("non_numeric.csv", {"label": "label", "id": "id"},
     ["column 'b'", "row 2 (line 5)", "expected a number", "got 'abc'"]),
    ("missing_cells.csv", {"label": "label", "id": "id"},
     ["column 'c'", "3 missing cell(s)", "row 1 (line 3)", "row 3 (line 5)", "expected a number in every row"]),
    ("inf.csv", {"label": "label", "id": "id"}, ["column 'b'", "row 1 (line 3)", "'inf'", "expected a finite number"]),
    ("overflow_1e400.csv", {"label": "label", "id": "id"},
     ["column 'c'", "row 2 (line 4)", "'1e400'", "expected a finite number"]),
    ("beyond_float32.csv", {"label": "label", "id": "id"}, ["column 'b'", "row 2 (line 4)", "'1e39'", "float32"]),
    ("too_wide.csv", {"label": "label", "id": "id"},
     ["column 'c' spans -3e+25 to 4e+25", "needs one at most 1e+19", "divide the column by a power of ten"]),
    ("too_narrow.csv", {"label": "label", "id": "id"},
     ["column 'b' spans 1e-09 to 2.5e-09", "needs one at least 1e-07", "multiply the column by a power of ten"]),
    ("all_constant.csv", {"label": "label", "id": "id"}, ["every feature column is constant (a, b, c)",
                                                          "expected at least one column whose values vary"]),
    ("good.csv", {"label": "species"}, ["label column 'species' not found", "the columns are: id, a, b, c, label"]),
    ("good.csv", {"id": "sample"}, ["id column 'sample' not found", "the columns are: id, a, b, c, label"]),
    ("good.csv", {"features": ["a", "petal"]}, ["feature column 'petal' not found", "the columns are: id, a"]),
    ("semicolons.csv", {}, ["line 1", "contains ';'", 'set delimiter = ";" in [dataset]']),
    ("tabs.csv", {}, ["line 1", "contains tab", r'set delimiter = "\t" in [dataset]']),
    ("ragged_long.csv", {}, ["line 4", "6 field(s), expected 5 as in the header"]),
    ("ragged_short.csv", {}, ["line 5", "3 field(s), expected 5 as in the header"]),
    ("latin1.csv", {"label": "label"}, ["line 2", "not utf-8 text", "byte 0xe9", 'encoding = "latin-1"']),
    ("duplicate_columns.csv", {}, ["line 1", "column 'a' appears twice in the header"]),
    ("blank_label.csv", {"label": "label", "id": "id"},
     ["label column 'label' is blank in 1 row(s)", "row 1 (line 3)", "expected a label in every row"]),
]


@pytest.mark.parametrize("fixture, options, parts", CSV_CASES,
                         ids=[f"{c[0]}-{'-'.join(c[1]) or 'defaults'}" for c in CSV_CASES])
def test_bad_csv_is_one_line_naming_file_and_place_whichever_way_it_is_held(tmp_path, fixture, options, parts):
    memory_job = csv_job(tmp_path / "memory", fixture, **options, streaming=False).resolve()
    in_memory = message_of(memory_job)
    assert in_memory.startswith(f"{memory_job}: ") and str(CSV / fixture) in in_memory  # the job, then the file
    for part in parts:
        assert part in in_memory, in_memory
    cache_job = csv_job(tmp_path / "cache", fixture, **options, streaming=True).resolve()
    cached = message_of(cache_job)
    assert cached.removeprefix(str(cache_job)) == in_memory.removeprefix(str(memory_job))
    assert not list((tmp_path / "cache" / "outputs" / ".cache").glob("*"))  # no half-built cache left


@pytest.mark.parametrize("streaming", [False, True], ids=["in memory", "in the cache"])
def test_a_bad_cell_is_an_error_with_fields_and_its_line_is_built_from_them(tmp_path, streaming):
    """Issue 19 item 5: the error carries the job, the file, the column, the row and the line as
    fields, and its one line is composed from them (nothing pieced together as text)."""
    job = csv_job(tmp_path, "non_numeric.csv", label="label", id="id", streaming=streaming).resolve()
    with pytest.raises(DataError) as caught:
        load(job)
    error = caught.value
    assert (error.job, Path(error.path), error.column, error.row, error.line) == (job, CSV / "non_numeric.csv", "b", 2, 5)
    assert error.reason == "expected a number, got 'abc'"
    assert str(error) == f"{job}: {CSV / 'non_numeric.csv'}: column 'b', row 2 (line 5): expected a number, got 'abc'"
    assert str(error.replaced(row=7, line=None)).endswith(": column 'b', row 7: expected a number, got 'abc'")


def test_a_missing_label_column_names_its_role_and_column_as_fields(tmp_path):
    job = csv_job(tmp_path, "good.csv", label="species").resolve()
    with pytest.raises(DataError) as caught:
        load(job)
    assert (caught.value.role, caught.value.column, caught.value.row) == ("label", "species", None)
    assert str(caught.value).endswith("good.csv: label column 'species' not found; the columns are: id, a, b, c, label")


def test_a_utf8_byte_order_mark_just_works(tmp_path):
    table = load(csv_job(tmp_path, "bom.csv", id="id", label="label"))
    assert table.id_column == "id"  # not "\ufeffid"
    assert table.features == ("a", "b", "c") and list(table.ids()) == ["s1", "s2", "s3", "s4"]


def test_non_utf8_file_reads_with_the_suggested_encoding(tmp_path):
    table = load(csv_job(tmp_path, "latin1.csv", label="label", id="id", encoding="latin-1"))
    assert list(table.labels()) == ["café", "thé", "café"]


def test_the_right_delimiter_reads_the_file(tmp_path):
    table = load(csv_job(tmp_path, "semicolons.csv", delimiter=";", id="id", label="label"))
    assert table.features == ("a", "b", "c") and table.raw().shape == (3, 3)


def test_one_constant_column_works_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="reducer"):
        table = load(csv_job(tmp_path, "one_constant.csv", id="id", label="label"))
    assert table.features == ("a", "b", "c")
    warning, = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert str(CSV / "one_constant.csv") in warning and "'b'" in warning and "constant" in warning


def test_huge_but_representable_values_are_normalised(tmp_path):
    table = load(csv_job(tmp_path, "huge_values.csv", id="id", label="label", normalize="minmax"))
    assert table.normalised_rows().min() == 0.0 and table.normalised_rows().max() == 1.0  # minmax over 1e12 .. 1e15 magnitudes


# job fixture(s), the parts the message must contain
JOB_CASES = [
    (["malformed.toml"], ["line 3, column 8", "invalid TOML"]),
    (["misspelled_key.toml"], ["unknown key 'epoch' in [training]", "valid keys: epochs, batch_size",
                               "did you mean 'epochs'?"]),
    (["misspelled_section.toml"], ["unknown key 'trainig'", "valid keys: name, dataset, model, training",
                                   "did you mean 'training'?"]),
    (["misspelled_dataset_option.toml"], ["unknown key 'delimeter' in [dataset] for dataset 'csv'",
                                          "valid keys: name, label, id, features, normalize, label_type, keep, "
                                          "path, delimiter",
                                          "did you mean 'delimiter'?"]),
    (["epochs_zero.toml"], ["training.epochs must be greater than 0, got 0"]),
    (["batch_zero.toml"], ["training.batch_size must be greater than 0, got 0"]),
    (["latent_five.toml"], ["model.latent must be one of 2, 3, got 5"]),
    (["negative_learning_rate.toml"], ["training.learning_rate must be greater than 0, got -0.01"]),
    (["epochs_text.toml"], ["training.epochs must be an integer, got 'ten'"]),
    (["header_text.toml"], ["dataset.header must be true/false, got 'yes'"]),
    # a TOML boolean is shown as the file writes it, not as Python's True
    (["latent_true.toml"], ["model.latent must be an integer, got true"]),
    (["missing_data_file.toml"], ["dataset.path: no such file", "no_such_file.csv"]),
    (["unknown_dataset.toml"], ["dataset.name: unknown dataset 'irls'", "known datasets: csv, iris, uci_digits"]),
]


@pytest.mark.parametrize("fixtures, parts", JOB_CASES, ids=[c[0][0] for c in JOB_CASES])
def test_bad_job_file_is_one_line_naming_file_and_key(fixtures, parts):
    the_plan = plan([JOBS / name for name in fixtures])
    assert not the_plan.ready
    (failed,) = the_plan.failed
    assert failed.status == "failed" and "\n" not in failed.reason
    assert str(JOBS / fixtures[0]) in failed.reason
    for part in parts:
        assert part in failed.reason, failed.reason


def test_duplicate_job_names_fail_both_before_training_and_keep_the_others():
    the_plan = plan([JOBS / "twin_a.toml", JOBS / "good.toml", JOBS / "twin_b.toml"])
    assert [job.name for job, _, _ in the_plan.ready] == ["good"]
    reasons = [r.reason for r in the_plan.failed]
    assert len(reasons) == 2 and all("job name 'twin' is used by more than one job file" in r for r in reasons)
    assert all(str(JOBS / "twin_a.toml") in r and str(JOBS / "twin_b.toml") in r for r in reasons)


def hostile_job(tmp_path, dataset):
    path = tmp_path / "jobs" / f"{dataset}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[dataset]\nname = "{dataset}"\n', encoding="utf-8")
    return path


def _line_of(path, text):
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_plugin_that_raises_while_loading_names_plugin_file_and_line(tmp_path):
    plugin = HOSTILE / "hostile_load_raises.py"
    message = message_of(hostile_job(tmp_path, "hostile_raises"), [HOSTILE])
    assert f"dataset 'hostile_raises' (plugin {plugin}) failed to load" in message
    assert f"at line {_line_of(plugin, 'raise ConnectionError')} of hostile_load_raises.py" in message
    assert "ConnectionError: sensor feed offline" in message


def test_plugin_that_calls_sys_exit_fails_its_job_only(tmp_path):
    message = message_of(hostile_job(tmp_path, "hostile_exits"), [HOSTILE])
    assert "dataset 'hostile_exits'" in message and "SystemExit: giving up" in message


def test_plugin_that_fails_to_import_is_named_when_a_job_needs_it(tmp_path):
    the_plan = plan([hostile_job(tmp_path, "lab_sensors")], [HOSTILE])
    (failed,) = the_plan.failed
    # The job's line stays short; the plugin's problem is logged once, above every job's line.
    count = len(the_plan.registry.problems)  # as many as the warnings above say
    assert f"unknown dataset 'lab_sensors' ({count} plugin problem{'s' if count > 1 else ''}: see the warning" \
        in failed.reason
    assert "\n" not in failed.reason and "labsensors" not in failed.reason
    [problem] = [p for p in the_plan.registry.problems if "bad_import_raises.py" in p]
    assert f"plugin {HOSTILE / 'bad_import_raises.py'} failed to import" in problem
    assert "needs the 'labsensors' package" in problem


SHAPE_CASES = [
    ("hostile_list", ["load() must return a pandas DataFrame, got list"]),
    ("hostile_transposed", ["label column 'kind' not found", "the columns are: 0, 1, 2",
                            "(40 columns in all)"]),
    ("hostile_short_label", ["label column 'kind' is blank in 10 row(s)", "row 30",
                             "the label list is shorter than the rows?"]),
    ("hostile_duplicate_columns", ["column name(s) 'a' appear more than once"]),
    ("hostile_no_rows", ["0 data rows; expected at least 2 rows"]),
]


@pytest.mark.parametrize("dataset, parts", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_plugin_returning_the_wrong_shape_is_named(tmp_path, dataset, parts):
    message = message_of(hostile_job(tmp_path, dataset), [HOSTILE])
    assert f"dataset '{dataset}'" in message
    for part in parts:
        assert part in message, message


def test_the_cli_prints_one_line_per_bad_job_and_no_traceback(tmp_path):
    """Through the real command: bad jobs never reach TensorFlow, and the log stays readable."""
    project = tmp_path / "project"
    shutil.copytree(JOBS, project / "jobs")
    shutil.copytree(CSV, project / "csv")
    (project / "jobs" / "bad_data.toml").write_text(textwrap.dedent("""
        [dataset]
        name = "csv"
        path = "../csv/non_numeric.csv"
        """))
    (project / "jobs" / "offline.toml").write_text('[dataset]\nname = "hostile_raises"\n')
    wanted = ["malformed", "misspelled_key", "unknown_dataset", "bad_data", "offline"]
    result = run_cli("run", *[f"jobs/{name}.toml" for name in wanted], "--plugins", HOSTILE, cwd=project)
    assert result.returncode == 1, result.stderr
    summary = result.stdout.splitlines()[:-1]  # the last line is the totals
    assert summary[0] == "summary:" and len(summary) == 1 + len(wanted)
    for name in wanted:
        line, = [s for s in summary if s.startswith(f"  {name}: failed in ")]
        assert str(project / "jobs" / f"{name}.toml") in line or str(project / "csv") in line \
            or "hostile_load_raises.py" in line
    assert "Traceback" not in result.stderr and "epoch =" not in result.stderr
    assert re.search(r"non_numeric\.csv: column 'b', row 2 \(line 5\): expected a number, got 'abc'", result.stdout)
    assert [p.name for p in (project / "outputs" / "bad_data").iterdir()] and \
        not (project / "outputs" / "bad_data" / "manifest.json").exists()  # only the attempt's status record
