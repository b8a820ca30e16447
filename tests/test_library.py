"""The library owns the whole run (`reducer.run_jobs`: plan, lock, train, publish, report), and
every command finds the project the way `run` does, from any folder.

A real project with two tiny jobs, run from a Python program in a subprocess (as a notebook or
an orchestrator would), then looked at with the real CLI from `/`, as cron runs it.
"""

import json
import subprocess
import sys
import textwrap

import pytest

from conftest import STARTING_ENVIRONMENT, Project, run_cli

PROGRAM = textwrap.dedent("""
    import json, sys
    import reducer

    results = reducer.run_jobs(sys.argv[1:])
    print(json.dumps({"order": [r.name for r in results], "status": [r.status for r in results],
                      "outputs": str(results.outputs), "report": str(results.report),
                      "dir": dir(reducer), "all": reducer.__all__}))
    """)


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """run_jobs([zeta, broken, alpha]) from Python: results in that order, the report written."""
    project = Project(tmp_path_factory.mktemp("library") / "project")
    project.iris_job("zeta", epochs=3, objective="reconstruction")  # the objective is not the point
    project.job("broken", "[dataset\n")
    project.iris_job("alpha", epochs=3, objective="reconstruction")
    jobs = [project.root / "jobs" / f"{name}.toml" for name in ("zeta", "broken", "alpha")]
    done = subprocess.run([sys.executable, "-c", PROGRAM, *map(str, jobs)], cwd="/", capture_output=True,
                          text=True, env={**STARTING_ENVIRONMENT, "PYTHONUNBUFFERED": "1"}, timeout=600)
    assert done.returncode == 0, done.stderr
    return project, json.loads(done.stdout.splitlines()[-1])


def test_run_jobs_from_python_writes_the_report_and_keeps_the_given_order(ran):
    project, seen = ran
    assert seen["order"] == ["zeta", "broken", "alpha"]  # as given, the failed file in its place
    assert seen["status"] == ["ok", "failed", "ok"]
    assert seen["outputs"] == str(project.outputs) and seen["report"] == str(project.outputs / "index.html")
    index = (project.outputs / "index.html").read_text(encoding="utf-8")
    for name, state in (("zeta", "ok"), ("alpha", "ok"), ("broken", "failed")):
        assert f'<span class="badge {state}">{state}</span>' in index.split(f'id="job-{name}"')[1][:200]
    assert (project.outputs / "alpha" / "map.html").is_file()


def test_dir_reducer_shows_the_public_api(ran):
    _, seen = ran
    assert seen["dir"] == sorted(seen["all"])
    assert {"run_jobs", "check_jobs", "JobResult", "Encoder", "read_manifest", "PublishedRecordError"} <= set(
        seen["dir"])
    assert not {"Path", "importlib", "pluggy"} & set(seen["dir"])


def test_history_and_report_take_job_files_from_any_folder(ran):
    project, _ = ran
    job = project.root / "jobs" / "alpha.toml"
    past = run_cli("history", job, cwd="/")
    assert past.returncode == 0, past.stderr
    assert past.stdout.startswith("alpha:\n") and " ok " in past.stdout
    by_name = run_cli("history", "--json", "alpha", "--project", project.root, cwd="/")
    assert by_name.returncode == 0 and json.loads(by_name.stdout)["alpha"][0]["status"] == "ok"
    assert run_cli("history", "alpha", cwd=project.root).returncode == 0  # a job name, ./outputs, as before
    rebuilt = run_cli("report", job, cwd="/")
    assert rebuilt.returncode == 0, rebuilt.stderr
    # 3: the job file that does not parse has its status under its file's stem (issue 20)
    assert rebuilt.stdout.startswith(f"wrote {project.outputs / 'index.html'}: 3 job(s)")
    assert run_cli("report", "--project", project.root, cwd="/").returncode == 0


def test_history_of_a_job_file_that_does_not_parse_shows_why_last_night_failed(ran):
    """`reducer history jobs/broken.toml` is what a user runs to see why last night failed, and it
    answered with the parse error alone. The run recorded the failure under the file's stem, so
    history shows that job, with one warning line naming the file's problem (exit 0: the history
    was shown; the job's own failure is the run's exit code, and is on its line)."""
    project, _ = ran
    broken = project.root / "jobs" / "broken.toml"
    past = run_cli("history", broken, cwd="/")
    assert past.returncode == 0, past.stderr
    head, night = past.stdout.splitlines()
    assert head == "broken:" and night.split()[1] == "failed"
    assert f"{broken}, line 1, column 9: invalid TOML: Expected ']'" in night  # the reason the run recorded
    (warning,) = past.stderr.splitlines()
    assert warning == (f"warning: {broken}, line 1, column 9: invalid TOML: Expected ']' at the end of a table "
                       f"declaration; showing the history of 'broken', the name a run records this file's failures "
                       f"under (its file's stem)")
    listed = run_cli("history", "--json", "-q", "jobs/broken.toml", "jobs/alpha.toml", cwd=project.root)
    assert listed.returncode == 0 and listed.stderr.startswith("warning: ")
    nights = json.loads(listed.stdout)
    assert [n["status"] for n in nights["broken"]] == ["failed"] and nights["alpha"][0]["status"] == "ok"


def test_not_found_names_the_absolute_folder_it_looked_in(ran, tmp_path):
    project, _ = ran
    missing = run_cli("history", "nosuchjob", cwd="/")
    assert missing.returncode == 2 and missing.stderr.strip() == "reducer: no job 'nosuchjob' in /outputs"
    elsewhere = run_cli("history", "zeta", "--outputs", "out", cwd=tmp_path)
    assert elsewhere.stderr.strip() == f"reducer: no job 'zeta' in {tmp_path / 'out'}"
    # A job file that does not parse, never run: its own one line, exit 1 (a bad job file); one
    # that does not exist and has no history: exit 2, as `run` says of it, naming where it looked.
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "never.toml").write_text("[dataset\n")
    never = run_cli("history", tmp_path / "jobs" / "never.toml", cwd="/")
    assert never.returncode == 1 and never.stdout == "" and "Traceback" not in never.stderr
    assert never.stderr.strip() == (f"reducer: {tmp_path / 'jobs' / 'never.toml'}, line 1, column 9: invalid TOML: "
                                    f"Expected ']' at the end of a table declaration")
    gone = run_cli("history", "jobs/gone.toml", cwd=tmp_path)
    assert gone.returncode == 2 and gone.stderr.strip() == (f"reducer: {tmp_path / 'jobs' / 'gone.toml'}: no such job "
                                                            f"file, and no job 'gone' in {tmp_path / 'outputs'}")
    typo = run_cli("run", "jobs/irs.toml", cwd=tmp_path)
    assert typo.returncode == 2 and f"no such job file: jobs/irs.toml ({tmp_path / 'jobs' / 'irs.toml'})" in typo.stderr
    nothing = run_cli("report", cwd=tmp_path)
    assert nothing.returncode == 2 and nothing.stderr.strip() == f"reducer: no outputs folder {tmp_path / 'outputs'}"
