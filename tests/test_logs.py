"""The log an operator reads the next morning: global options anywhere, a start banner, one
summary line per job in the order given with its UTC time, a totals line, and warnings tagged
with their job. These runs fail before any training, so they take seconds."""

import argparse
import datetime
import logging
import re
import textwrap
from pathlib import Path

from conftest import TEST_DATA, Project
from reducer import __version__
from reducer.cli import build_parser
from reducer.log import job_context
from reducer.publish import Destination
from reducer.run.pipeline import load_table
from reducer.run.runner import plan

STAMP = r"\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\]"


def failing_project(root):
    """Three jobs that fail fast, each its own way: bad data (in run), an unknown key and a
    missing file (both in the checks before anything runs)."""
    project = Project(root)
    (project.root / "Data" / "bad.csv").write_text("a,b\n1,2\n3,x\n", encoding="utf-8")
    project.job("c_bad_data", '[dataset]\nname = "csv"\npath = "../Data/bad.csv"\n')
    project.job("a_bad_key", '[dataset]\nname = "csv"\npath = "../Data/bad.csv"\n[training]\nepoch = 5\n')
    project.job("b_missing", '[dataset]\nname = "csv"\npath = "../Data/none.csv"\n')
    return project


def test_summary_lists_jobs_in_the_order_given_with_times_and_totals(tmp_path):
    project = failing_project(tmp_path / "project")
    given = ["c_bad_data", "a_bad_key", "b_missing"]
    result = project.run("run", *[f"jobs/{name}.toml" for name in given])
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "summary:" and lines[-1] == "3 jobs: 3 failed"
    assert [line.split(":")[0].strip() for line in lines[1:-1]] == given
    for line in lines[1:-1]:
        assert re.search(rf": failed in \d+\.\ds: .* {STAMP}$", line), line
    banner = result.stderr.splitlines()[0]
    outputs = (project.root / "outputs").resolve()
    assert re.search(rf"INFO reducer {re.escape(__version__)}: run started \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ, "
                     rf"3 job file\(s\), outputs {re.escape(str(outputs))}$", banner), banner


def test_quiet_is_accepted_before_and_after_the_command(tmp_path):
    project = failing_project(tmp_path / "project")
    for args in (["-q", "run", "jobs/b_missing.toml"], ["run", "-q", "jobs/b_missing.toml"],
                 ["run", "jobs/b_missing.toml", "-q"]):
        result = project.run(*args)
        assert result.returncode == 1, (args, result.stderr)  # the job fails; the arguments are fine
        assert "INFO" not in result.stderr and "ERROR" in result.stderr
        assert result.stdout.splitlines()[-1] == "1 job: 1 failed"
    loud = project.run("run", "jobs/b_missing.toml")
    assert "INFO" in loud.stderr
    for command in ("check", "datasets", "history", "report"):
        shown = project.run(command, "--help")
        assert shown.returncode == 0 and "-q, --quiet" in shown.stdout, command


def test_every_argument_of_every_command_is_described():
    parser = build_parser()
    commands, = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands.choices) == {"run", "check", "datasets", "history", "report", "encode", "accept"}
    for name, command in commands.choices.items():
        for action in command._actions:
            assert action.help, f"reducer {name}: {action.dest} has no help"


def test_a_constant_column_is_one_warning_tagged_with_its_job(tmp_path, caplog):
    job = tmp_path / "jobs" / "wine.toml"
    job.parent.mkdir()
    job.write_text(textwrap.dedent(f"""
        [dataset]
        name = "csv"
        path = "{TEST_DATA / 'csv' / 'one_constant.csv'}"
        id = "id"
        label = "label"
        """))
    (spec, dataset, source), = plan([job]).ready
    outputs = tmp_path / "outputs"
    with caplog.at_level(logging.WARNING, logger="reducer"), job_context("wine"):
        load_table(spec, dataset, source, Destination(outputs, tmp_path / "Models"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("[wine] constant column(s) 'b' of "), warnings
    assert warnings[0].endswith(f"{Path(TEST_DATA / 'csv' / 'one_constant.csv')} carry no information; kept, but "
                                "they do not shape the map")


def test_log_lines_carry_the_utc_time_with_its_zone_whatever_tz_says(tmp_path):
    """One clock: the log line's time is UTC with a Z, like the banner's and the summary's, even
    where the local zone is hours away from UTC."""
    project = failing_project(tmp_path / "project")
    result = project.run("run", "jobs/b_missing.toml", env={"TZ": "Asia/Kathmandu"})  # UTC+05:45
    assert result.returncode == 1, result.stderr
    banner = result.stderr.splitlines()[0]
    stamp = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) INFO reducer ", banner)
    assert stamp, banner
    started = re.search(r"run started (\S+Z),", banner).group(1)
    logged = datetime.datetime.strptime(stamp.group(1), "%Y-%m-%dT%H:%M:%SZ")
    # The same moment twice on one line, both in UTC: a local time would be 5 h 45 min off.
    assert abs((datetime.datetime.strptime(started, "%Y-%m-%dT%H:%M:%SZ") - logged).total_seconds()) < 120
    error = next(line for line in result.stderr.splitlines() if " ERROR " in line)
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ERROR ", error), error


def test_a_night_of_many_jobs_logs_no_tensorflow_retracing_warning():
    """Every job builds its own training functions, which TensorFlow counts as retracing one
    function: from the fifth job it logged a 'WARNING:tensorflow:... triggered tf.function
    retracing' line with no time and no job. Six fresh functions, as six jobs make them, in a real
    process: that line is gone, and TensorFlow's other warnings still reach the log."""
    import subprocess
    import sys

    script = textwrap.dedent('''
        from reducer.engine.tf_setup import tf

        def job(k):  # a closure over this job's own values, as pretrain's is
            values = tf.constant([float(k)] * (k + 1))

            @tf.function(autograph=False)
            def run():
                return tf.reduce_sum(values)
            return run

        for k in range(6):
            job(k)()
        tf.get_logger().warning("another tensorflow warning")
    ''')
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "retracing" not in done.stderr
    assert "another tensorflow warning" in done.stderr


def test_a_line_logged_inside_a_job_without_its_tag_gets_it_from_the_formatter():
    """A table's note ("...: skipping text column(s) ...") or a plugin's printed output is logged
    inside the job's context without naming the job: the formatter adds `[job]`, once."""
    import io

    from reducer.log import UtcFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(UtcFormatter())
    logger = logging.getLogger("reducer.test_tags")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        with job_context("mine"):
            logger.info("%s: skipping text column(s) note", "/data/mine.csv")
            logger.info("[mine] published to %s", "outputs/mine")
        logger.info("outside any job")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith("INFO [mine] /data/mine.csv: skipping text column(s) note")
    assert lines[1].endswith("INFO [mine] published to outputs/mine")
    assert lines[2].endswith("INFO outside any job")
