"""Smoke tests of benchmarks/: every script runs with tiny sizes (--tiny), as a real subprocess
from the repository, exits 0 and prints (or writes, --json) the figures it is meant to. They
check that the scripts still work with the package as it is, not the figures' values (the
machine is shared); where a number is deterministic (PCA's metrics on iris) it is compared."""

import hashlib
import json
import math
import re
import subprocess
import sys

import pytest

from conftest import COMPILE_CACHE, REPO, STARTING_ENVIRONMENT

BENCHMARKS = REPO / "benchmarks"
SCRIPTS = ("quality.py", "speed.py", "scale.py", "load.py", "continuity.py", "encode.py", "neighbors.py", "big.py",
           "map_page.py", "big_variants.py")


def readme_digest():
    return hashlib.sha256((BENCHMARKS / "README.md").read_bytes()).hexdigest()


def run_script(name, *args, tmp_path, timeout=300):
    """`python benchmarks/NAME ARGS` from the repository root; temporary folders under tmp_path."""
    env = {key: value for key, value in STARTING_ENVIRONMENT.items() if key != "REDUCER_PLUGINS"}
    env.update(PYTHONUNBUFFERED="1", TMPDIR=str(tmp_path))
    if COMPILE_CACHE["folder"] is not None:  # the suite's compiled-code cache (conftest.py; scale.py drops it)
        env["REDUCER_XLA_CACHE_DIR"] = str(COMPILE_CACHE["folder"])
    before = readme_digest()
    result = subprocess.run([sys.executable, str(BENCHMARKS / name), *map(str, args)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, (f"{name} exited {result.returncode}:\n{result.stdout[-3000:]}\n"
                                    f"{result.stderr[-3000:]}")
    assert readme_digest() == before, f"{name} changed benchmarks/README.md"
    return result


def table_rows(text, first_cell=None):
    """The cells of each Markdown table row of `text` (header and rule rows left out)."""
    def rule(line):
        return line.startswith("|") and "-" in line and set(line) <= set("|-: ")

    rows = []
    lines = text.splitlines()
    for line, following in zip(lines, lines[1:] + [""]):
        if not line.startswith("|") or rule(line) or rule(following):
            continue  # not a row, a rule row, or a header (the row above a rule)
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if first_cell is None or cells[0] == first_cell:
            rows.append(cells)
    return rows


def number(text):
    return float(text.replace(",", "").rstrip("x"))


@pytest.mark.parametrize("name, options", [
    ("quality.py", ["--seeds", "--skip-seed-preset", "--parametric", "--tiny", "--defaults", "--tables", "--time",
                    "--large", "--json", "--small", "--small-rows", "--set", "--skip-tsne", "--outliers"]),
    ("speed.py", ["--epochs", "--skip-fit", "--tiny"]),
    ("scale.py", ["--rows", "--columns", "--epochs", "--keep", "--folder", "--compare", "--tiny"]),
    ("load.py", ["--rows", "--columns", "--repeats", "--tiny"]),
])
def test_help_lists_the_documented_options(name, options, tmp_path):
    output = run_script(name, "--help", tmp_path=tmp_path, timeout=120).stdout
    for option in options:
        assert option in output, f"{name} --help does not list {option}"


def test_every_script_has_a_smoke_test():
    assert {path.name for path in BENCHMARKS.glob("*.py")} == set(SCRIPTS)


def test_quality_tiny(tmp_path):
    output = run_script("quality.py", "--tiny", tmp_path=tmp_path).stdout
    rows = table_rows(output, "iris")
    methods = [row[1] for row in rows]
    # The seed's reconstruction objective and settings on iris (jobs/iris.toml is a default job now)
    assert methods == ["PCA", "seed preset (iris, reconstruction)", "neighbour preset (iris_neighbors.toml)"], output
    for row in rows:
        trust5, trust12, knn = (number(cell) for cell in row[5:8])
        assert 0.5 < trust5 <= 1 and 0.5 < trust12 <= 1 and 0.3 < knn <= 1, row
        assert number(row[3]) >= 0, row
    # PCA on iris is deterministic: the numbers in benchmarks/README.md's Quality table
    assert rows[0][5:8] == ["0.9649", "0.9770", "0.9533"], rows[0]
    assert rows[1][2] == "1" and rows[2][2] == "1"  # the seeds
    assert "instead of their own" in output  # the tiny epochs are said, not passed off as the presets'


@pytest.fixture(scope="module")
def quality_defaults(tmp_path_factory):
    """One run of quality.py's second mode with every part of it: --defaults --time --large
    --small --outliers --tiny (its stdout, its --json figures)."""
    tmp_path = tmp_path_factory.mktemp("quality_defaults")
    figures = tmp_path / "defaults.json"
    output = run_script("quality.py", "--defaults", "--time", "--large", "--small", "--outliers", "--tiny", "--json",
                        figures,
                        tmp_path=tmp_path, timeout=600).stdout
    return output, json.loads(figures.read_text())


def test_quality_small_tiny(quality_defaults):
    """--small --tiny: the default job on a 15-row table of three separated groups, a real run;
    one line with each group's spread, the nearest-neighbour distance and the coordinates' size
    (issue 23)."""
    output, result = quality_defaults
    [line] = [line for line in output.splitlines() if line.startswith("| 15 | reducer default | 1 |")]
    cells = [cell.strip() for cell in line.strip("|").split("|")]
    spreads = [float(value.rstrip("%")) for value in cells[3].split(",")]
    assert len(spreads) == 3 and all(0 <= value <= 100 for value in spreads), line
    assert float(cells[5]) <= 50 and cells[8] in ("met", "MISSED"), line
    assert "small tables:" in output and "instead of their own" in output
    assert result["small"]["lines"] == [line] and result["small"]["missed"] in (0, 1)


def test_quality_outliers_tiny(quality_defaults):
    """--outliers --tiny: three groups beside three far rows, the default job with the robust
    input and without, real runs: one line each (issue 23, ninth session)."""
    output, result = quality_defaults
    lines = [line for line in output.splitlines() if line.startswith("| 300 + 3 at +1000 |")]
    assert [line.split("|")[2].strip() for line in lines] == ["robust input", "plain"], output
    for line in lines:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert cells[2] == "1" and 0 <= float(cells[3].rstrip("%")) <= 100, line
        assert 0 <= float(cells[4].rstrip("%")) <= 100 and 0.5 < float(cells[5]) <= 1, line
    assert result["outliers"] == lines


def test_quality_defaults_tiny(quality_defaults):
    """--defaults --time --large --tiny: the default job (dataset and seed only) through plan and
    run_jobs, the seed's reconstruction job, a value label (diabetes: kNN R^2), the verdict lines,
    digits end to end, and a 2,000 x 10 CSV through `reducer run`."""
    output, result = quality_defaults
    iris, diabetes = table_rows(output, "iris"), table_rows(output, "diabetes")
    assert [row[1] for row in iris] == ["PCA", "reducer default", "reducer seed (reconstruction)"], output
    assert [row[1] for row in diabetes] == ["PCA", "reducer default", "reducer seed (reconstruction)"], output
    assert [row[2] for row in iris] == ["-", "1", "1"]
    # Scored in the default job's space: iris z-scored (Job.for_dataset), PCA deterministic
    assert iris[0][5:8] == ["0.9742", "0.9799", "0.9133"], iris[0]
    for row in iris:
        trust5, trust12, knn = (number(cell) for cell in row[5:8])
        assert 0.5 < trust5 <= 1 and 0.5 < trust12 <= 1 and 0.3 < knn <= 1 and row[8] == "", row
    for row in diabetes:  # a value label: kNN R^2, no kNN accuracy
        assert row[7] == "" and -1 < number(row[8]) <= 1 and 0.5 < number(row[5]) <= 1, row
    assert re.search(r"^- iris: .*seed 1: trust@5 [\d.]+ vs [\d.]+ \([+-][\d.]+\), kNN acc\. ", output, re.M)
    assert re.search(r"^- diabetes: .*kNN R\^2 >= .*seed 1: .*kNN R\^2 [\d.]+ vs", output, re.M)
    # The default job left its objective and settings to reducer, which sized them to the table
    assert re.search(r"^- iris: 150 x 4, normalised zscore; the default job sized to: .*objective = neighbors", output,
                     re.M)
    agree = [float(m) for m in re.findall(r"own manifests agree with the scores here within ([\d.e+-]+)", output)]
    assert len(agree) == 2 and max(agree) < 1e-6, output
    assert re.search(r"end to end, .*: \*\*[\d.]+x\*\* the seed's", output)
    assert "instead of their own" in output
    large = table_rows(output, "2,000 x 10")
    assert len(large) == 1 and 0 < number(large[0][1]) and 100 < number(large[0][3]) < 8192, large
    assert result["large"]["objective"] == "neighbors" and result["large"]["quality"]["rows"] == 2000
    assert set(result["verdicts"]) == {"iris", "diabetes"} and result["time"]["ratio"] > 0
    assert result["time"]["cpu_ratio"] > 0 and all(cpu > 0 for cpu in result["time"]["default_cpus"])
    assert re.search(r"CPU seconds \(user \+ system\) median [\d.]+ and [\d.]+: [\d.]+x", output)


def test_quality_set_names_a_setting_and_sizes_the_rest(tmp_path):
    """--defaults --set: the default job of each table also names the setting (a candidate
    default measured on every table, issue 23), every other setting still sized from the table,
    and the output says the figures are not the default's; a malformed --set stops at once."""
    output = run_script("quality.py", "--defaults", "--tables", "iris", "--seeds", "1", "--skip-seed-preset",
                        "--skip-others", "--epochs", "2", "--set", "model.reconstruction_weight=5", "--set",
                        "model.min_dist=0.1", tmp_path=tmp_path).stdout
    assert [row[1] for row in table_rows(output, "iris")] == ["PCA", "reducer default"], output
    assert "- iris: the default job with reconstruction_weight = 5, min_dist = 0.1 named (--set)" in output
    [sized] = re.findall(r"^- iris: 150 x 4, normalised zscore; the default job sized to: (.*)$", output, re.M)
    assert "n_neighbors = 10" in sized and "min_dist" not in sized and "reconstruction_weight" not in sized, sized
    assert re.search(r"^- iris: .*\(With --set model\.reconstruction_weight=5, --set model\.min_dist=0\.1: not the "
                     r"default\.\)$", output, re.M), output
    for arguments, message in ((["--defaults", "--set", "reconstruction_weight=5"], "expected model.KEY=VALUE"),
                               (["--defaults", "--set", "training.seed=3"], "not settings to vary"),
                               (["--set", "model.min_dist=0.1"], "only with --defaults")):
        result = subprocess.run([sys.executable, str(BENCHMARKS / "quality.py"), *arguments], cwd=REPO,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode != 0 and message in result.stderr and "Traceback" not in result.stderr, result


def test_quality_real_table_or_its_skip(tmp_path):
    """--defaults --tables penguins (issue 23's real tables): read from the palmerpenguins package
    where it is installed (342 rows with every cell, 4 numeric columns, 3 species; a real run),
    otherwise skipped with a note naming the package to install, exit 0 (CI installs '.[test]'
    only, not the packages that ship the real tables)."""
    import importlib.util

    output = run_script("quality.py", "--defaults", "--tables", "penguins", "--seeds", "1", "--skip-seed-preset",
                        "--skip-others", "--epochs", "2", tmp_path=tmp_path).stdout
    if importlib.util.find_spec("palmerpenguins") is None:
        assert ("- penguins: skipped: the palmerpenguins package that ships it is not installed "
                "(`pip install palmerpenguins`") in output, output
        assert table_rows(output, "penguins") == [], output
        return
    assert [row[1] for row in table_rows(output, "penguins")] == ["PCA", "reducer default"], output
    assert re.search(r"^- penguins: 342 x 4, normalised zscore; the default job sized to: .*; label a class",
                     output, re.M), output
    assert re.search(r"^- penguins: .*seed 1: trust@5 [\d.]+ vs [\d.]+ \([+-][\d.e+-]+\), kNN acc\. ", output,
                     re.M), output


def test_speed_tiny(tmp_path):
    output = run_script("speed.py", "--tiny", tmp_path=tmp_path).stdout
    assert output.startswith("machine: ")
    rows = {row[0]: row for row in table_rows(output)}
    fit, engine = rows["Keras fit, batch 8, 2 epochs"], rows["reducer engine, same"]
    fit_loss, engine_loss = number(fit[2]), number(engine[2])
    assert 0 < fit_loss < 1 and 0 < engine_loss < 1
    assert abs(engine_loss / fit_loss - 1) < 0.05, (fit, engine)  # same weights, same model
    assert number(fit[1]) > 0 and number(engine[1]) > 0
    assert "first call" in engine[3]
    ratio = rows["ratio fit / engine"]
    assert number(ratio[1]) > 0
    end_to_end = [row for name, row in rows.items() if name.startswith("`reducer run jobs/digits.toml` end to end")]
    assert len(end_to_end) == 1 and "(2 epochs), run 1" in end_to_end[0][0], end_to_end
    assert number(end_to_end[0][2]) == pytest.approx(engine_loss, rel=1e-5)  # the same training, bit for bit
    assert re.search(r"peak RSS \d+ MiB; stages: load [\d.]+, tensorflow_import", end_to_end[0][3])
    for command in ("reducer --help", "reducer datasets", "reducer check jobs/digits.toml"):
        row = rows[f"`{command}` (best of 1)"]
        assert 0 < number(row[1]) < 30 and row[3] == "TensorFlow imported: no", row
    assert "GFLOP" in output


def test_scale_tiny(tmp_path):
    figures = tmp_path / "scale.json"
    folder = tmp_path / "work"
    output = run_script("scale.py", "--tiny", "--folder", folder, "--json", figures, tmp_path=tmp_path).stdout
    assert not folder.exists()  # removed without --keep
    runs = json.loads(figures.read_text())["runs"]
    assert [(r["rows"], r["run"], r["returncode"]) for r in runs] == [(2000, "cold", 0), (2000, "cache reused", 0)]
    assert [r["cache_reused"] for r in runs] == [False, True]
    for r in runs:
        assert r["table"]["held"] == "cache" and r["table"]["reason"] == "the job says streaming = true"
        assert r["seconds"] > 0 and r["cpu_seconds"] > 0 and 100 < r["peak_rss_mib"] < 8192
        assert {"load", "train", "save"} <= set(r["stages"]) and math.isfinite(r["final_loss"])
    printed = table_rows(output, "2,000")
    assert [row[1] for row in printed] == ["cold", "cache reused"]
    assert [row[-1] for row in printed] == ["0", "0"]


def test_scale_compare_tiny(tmp_path):
    figures = tmp_path / "compare.json"
    output = run_script("scale.py", "--tiny", "--compare", "--json", figures, tmp_path=tmp_path).stdout
    result = json.loads(figures.read_text())
    assert [(r["variant"], r["returncode"]) for r in result["runs"]] == [("auto", 0), ("streaming", 0)]
    auto, streamed = result["summary"]["auto"], result["summary"]["streaming"]
    # A tiny file: reducer holds it in memory by itself; streaming = true forces the cache.
    assert auto["held"] == ["memory"] and "within the limit" in auto["reason"]
    assert "held in memory" in auto["held_log_line"] and "[auto_2000] 2000 rows x 8 columns" in auto["held_log_line"]
    assert streamed["held"] == ["cache"] and "held in the float32 cache" in streamed["held_log_line"]
    assert streamed["wall_ratio_to_streaming"] == 1.0 and auto["wall_ratio_to_streaming"] > 0
    assert 100 < auto["max_peak_rss_mib"] < 8192
    summary = {row[0]: row for row in table_rows(output) if len(row) == 7}
    assert summary["auto"][1] == "memory" and summary["streaming"][1] == "cache"
    assert summary["streaming"][3] == "1.00x"
    assert "manifest table.reason: the job says streaming = true" in output
    assert not list(tmp_path.glob("reducer-scale-*"))  # its temporary folder is gone


def test_load_tiny(tmp_path):
    figures = tmp_path / "load.json"
    output = run_script("load.py", "--tiny", "--json", figures, tmp_path=tmp_path).stdout
    summary = json.loads(figures.read_text())["summary"]
    assert list(summary) == ["pandas.read_csv", "storage.open_table", "pipeline.load_table"]
    assert summary["pandas.read_csv"]["ratio_to_read_csv"] == 1.0
    for figures_ in summary.values():
        assert len(figures_["seconds"]) == 2 and all(s > 0 for s in figures_["seconds"])
        assert figures_["ratio_to_read_csv"] > 0
    rows = {row[0]: row for row in table_rows(output)}
    assert set(rows) == {"`pandas.read_csv`", "`storage.open_table`", "`pipeline.load_table`"}
    assert "2,000 rows x 5 features (the job says streaming = false)" in output
    assert not list(tmp_path.glob("reducer-load-*"))


def test_continuity_tiny(tmp_path):
    figures = tmp_path / "continuity.json"
    output = run_script("continuity.py", "--tiny", "--json", figures, tmp_path=tmp_path, timeout=900).stdout
    result = json.loads(figures.read_text())
    wine, digits, shipped = result["wine"], result["digits"], result["shipped"]
    nights = result["nights"]["wine"]  # issue 21: ten nights of a default-settings job
    assert [n["status"] for n in nights] == ["ok"] * 7 + ["unchanged", "ok", "ok"]
    assert [n["rows"] for n in nights[:6]] == [133, 140, 126, 139, 139, 145]
    assert all(n["sizing_kept"] and n["warm"] for n in nights[1:7])  # growth within the band: warm
    assert not nights[8]["sizing_kept"] and not nights[8]["warm"]  # a written setting: sized again, cold
    assert all(0 <= n["median_displacement"] < 1 for n in nights[1:7])
    # --tiny: the cold run beside night 2 only (the full run has one beside every changed night)
    assert nights[1]["cold_trustworthiness"] > 0 and not any("cold_trustworthiness" in n for n in nights[2:])
    assert "nights without a change of written settings: displacement <= " in output
    assert "(1 of 6 nights run cold too)" in output
    assert (wine["drift"]["shared_rows"], wine["drift"]["added_rows"]) == (148, 30)
    assert wine["warm_start"]["from"] and 0 <= wine["drift"]["median_displacement"] < 1
    assert digits["drift"]["shared_rows"] == 1797 and digits["warm_start"]["from"]
    assert shipped["unchanged_jobs"] == 5 and shipped["unchanged_imported_tensorflow"] is False
    assert "| wine, neighbours, 17% replaced + shuffled |" in output and "5 jobs unchanged" in output


def test_encode_tiny(tmp_path):
    figures = tmp_path / "encode.json"
    output = run_script("encode.py", "--tiny", "--json", figures, tmp_path=tmp_path, timeout=600).stdout
    result = json.loads(figures.read_text())
    assert result["ok"] and result["tensorflow_imported"] is False and result["onnx_keras_max_difference"] <= 1e-5
    small = result["small"]
    assert list(small) == ['`python -c "import tensorflow"`', "`reducer encode`, 10 rows (ONNX)",
                           "`reducer encode`, 10 rows, Keras fallback (no .onnx)"]
    for figures_ in small.values():
        assert len(figures_["seconds"]) == 1 and figures_["median_seconds"] > 0 and figures_["peak_rss_mib"] > 10
    assert small['`python -c "import tensorflow"`']["ratio_to_tensorflow_import"] == 1.0
    large = result["large"]
    assert (large["rows"], large["columns"], large["output_lines"]) == (2000, 8, 2001) and large["rows_per_second"] > 0
    assert "TensorFlow imported by the ONNX run: no" in output and "| 2,000 rows x 8 columns |" in output
    for option in ("--rows", "--columns", "--repeats", "--tiny", "--json"):
        assert option in run_script("encode.py", "--help", tmp_path=tmp_path, timeout=120).stdout
    assert not list(tmp_path.glob("reducer-encode-*"))


def test_neighbors_tiny(tmp_path):
    output = run_script("neighbors.py", "--tiny", tmp_path=tmp_path).stdout
    rows = {row[0]: row for row in table_rows(output)}
    assert set(rows) == {"exact", "reducer"}, output
    assert number(rows["exact"][-1]) == 1.0  # recall@10: exact search finds every nearest row
    assert number(rows["reducer"][-1]) == 1.0  # 3,000 rows: reducer searches exactly too
    assert number(rows["reducer"][3]) >= number(rows["reducer"][1])  # its graph stage: search and fuzzy graph



def test_big_variants_tiny(tmp_path):
    output = run_script("big_variants.py", "--tiny", tmp_path=tmp_path).stdout
    rows = {row[0]: row for row in table_rows(output)}
    assert len(rows) == 3 and "PCA" in rows, output
    for name, row in rows.items():
        if name != "PCA":
            assert 0 < number(row[3]) <= 1 and 0 < number(row[4]) <= 1 and number(row[5]) > 0, output

def test_big_tiny(tmp_path):
    output = run_script("big.py", "--tiny", tmp_path=tmp_path).stdout
    rows = {row[0]: row for row in table_rows(output)}
    assert rows["reducer"][1] == "neighbors", output
    trust5, knn = number(rows["reducer"][5]), number(rows["reducer"][6])
    assert trust5 > number(rows["PCA"][5]) and 0 < knn <= 1, output
    assert "estimate: neighbour map: about " in output and "exact neighbour search" in output


def test_map_page_tiny(tmp_path):
    output = run_script("map_page.py", "--tiny", tmp_path=tmp_path).stdout
    assert "map.html" in output and "points drawn 500" in output, output
    assert re.search(r"search 'C04' over 500 points: \d+ matches", output), output
    assert "colour by 'spend'" in output, output


def test_quality_cube_table_has_a_value_label(tmp_path):
    """--defaults --tables cube6 (issue 23, eleventh session): rows uniform in a cube of 6 columns,
    the label a value (kNN R^2, not accuracy)."""
    output = run_script("quality.py", "--defaults", "--tables", "cube6", "--seeds", "1", "--skip-seed-preset",
                        "--skip-others", "--epochs", "2", tmp_path=tmp_path).stdout
    assert [row[1] for row in table_rows(output, "cube6")] == ["PCA", "reducer default"], output
    assert re.search(r"^- cube6: 400 x 6, normalised zscore; the default job sized to: .*; label a value$", output,
                     re.M), output
    assert re.search(r"^- cube6: .*seed 1: trust@5 [\d.]+ vs [\d.]+ \([+-][\d.e+-]+\), kNN R\^2 ", output,
                     re.M), output


def test_quality_tables_of_copies_and_columns_mostly_of_one_value(tmp_path):
    """--defaults --tables empty_half (issue 23, twelfth session): 500 empty rows, a class of
    their own, beside four blobs; the generators of counts and ratings give what they say."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import quality as bench
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    import numpy as np

    x, y = bench.counts(**bench.GENERATED["counts"][1])
    assert x.shape == (1200, 12) and np.mean(x == 0) > 0.5 and np.all(x == np.rint(x)) and set(y) == set(range(5))
    x, y = bench.ratings(**bench.GENERATED["ratings"][1])
    assert set(np.unique(x)) <= {1.0, 2.0, 3.0, 4.0, 5.0} and len(np.unique(x, axis=0)) == 1021  # 979 repeated
    output = run_script("quality.py", "--defaults", "--tables", "empty_half", "--seeds", "1", "--skip-seed-preset",
                        "--skip-others", "--epochs", "2", tmp_path=tmp_path).stdout
    assert [row[1] for row in table_rows(output, "empty_half")] == ["PCA", "reducer default"], output
    assert re.search(r"^- empty_half: 1000 x 6, normalised zscore; the default job sized to: .*; label a class$", output,
                     re.M), output
