"""A hostile environment and hostile input (issue 11): files reducer opens or writes that are not
what they seem, and bad things that must fail one job, with one line, never the run.

Real files, real subprocesses, real signals. One module-wide run (`hostile_run`) holds a job that
trains on awkward ids and labels beside one job per bad thing; the encoder it saves feeds the
`reducer encode` tests.
"""

import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

from conftest import Project, REPO, STARTING_ENVIRONMENT, TEST_PLUGINS, assert_one_line, run_cli

REGISTRATION = TEST_PLUGINS / "hostile_registration"
INTERRUPTS = TEST_PLUGINS / "hostile_interrupts"
# The read the README's Outputs section gives: ids and labels come back exactly as written.
EXACT_READ = dict(dtype={"id": str, "label": str}, keep_default_na=False)
IDS = ["007", "010", "NA", "1e5", "-0", "00"]
LABELS = ["NA", "$\\nosuchcmd$", "$\\alpha$", "None", "_hidden", "1e3"]


def summary(result):
    """name -> the job's summary line from `reducer run` (or its line from `reducer check`)."""
    found = {}
    for line in result.stdout.splitlines():
        name, _, rest = line.strip().partition(": ")
        if rest and name != "summary":
            found[name] = rest
    return found


# ---------------------------------------------------------------- one run, many bad things


def awkward_table(path):
    """60 rows in three clusters; ids and labels that pandas would turn into numbers or NaN."""
    rng = np.random.default_rng(3)
    rows = []
    for k in range(60):
        centre = (k % 3) * 4.0
        values = centre + rng.normal(size=4)
        ident = IDS[k] if k < len(IDS) else f"{k:04d}"  # "0007", not "007" again: ids are unique
        rows.append([ident, *(f"{v:.4f}" for v in values), LABELS[k % len(LABELS)]])
    frame = pd.DataFrame(rows, columns=["id", "x1", "x2", "x3", "x4", "label"])
    frame.to_csv(path, index=False)
    return frame


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    project = Project(tmp_path_factory.mktemp("hostile") / "project")
    frame = awkward_table(project.root / "Data" / "awkward.csv")
    project.job("awkward", """
        [dataset]
        name = "csv"
        path = "../Data/awkward.csv"
        id = "id"
        label = "label"
        [training]
        epochs = 5
        batch_size = 16
        """)
    data = project.root / "Data"
    (data / "loop_a.csv").symlink_to("loop_b.csv")
    (data / "loop_b.csv").symlink_to("loop_a.csv")
    project.job("path_loop", '[dataset]\nname = "csv"\npath = "../Data/loop_a.csv"\n')
    (project.root / "jobs" / "job_loop.toml").symlink_to("job_loop.toml")
    project.job("no_such_user", '[dataset]\nname = "csv"\npath = "~nosuchuser_of_reducer/x.csv"\n')
    project.job("interrupting", '[dataset]\nname = "interrupts_in_load"\n')
    project.job("option_as_text", '[dataset]\nname = "option_as_text"\n')
    project.job("option_as_generic", '[dataset]\nname = "option_as_generic"\n')
    project.job("wrong_normalisation", '[dataset]\nname = "normalize_wrong_length"\n')
    result = project.run("run", "jobs/*.toml", "--plugins", REGISTRATION, "--plugins", INTERRUPTS)
    return project, frame, result


BAD_JOBS = {
    "path_loop": ["dataset.path", "loop_a.csv is a symbolic link loop"],
    "job_loop": ["job_loop.toml is a symbolic link loop", "expected a job file"],
    "no_such_user": ["dataset.path", "cannot expand '~nosuchuser_of_reducer/x.csv'",
                     "there is no user 'nosuchuser_of_reducer'"],
    "interrupting": ["dataset 'interrupts_in_load'", "interrupting.py", "failed to load at line",
                     "KeyboardInterrupt (raised by the plugin's code: no Ctrl-C came): the plugin gave up"],
    "option_as_text": ["dataset.name: plugin", "malformed_datasets.py: dataset 'option_as_text' skipped: "
                       "options['rows'] must be a type such as int", "got 'int'"],
    "option_as_generic": ["dataset 'option_as_generic' skipped: options['tags'] must be a type", "got list[str]"],
    "wrong_normalisation": ["dataset 'normalize_wrong_length' skipped: normalize=(offset, scale) gives 2 numbers "
                            "per feature, but features names 3 columns"],
}


def test_each_bad_thing_fails_its_own_job_with_one_line_and_the_others_run(hostile_run):
    project, _, result = hostile_run
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output and "internal error" not in output, output
    jobs = summary(result)
    assert jobs["awkward"].startswith("ok in"), output
    for name, parts in BAD_JOBS.items():
        assert jobs[name].startswith("failed in"), (name, output)
        assert all(part in jobs[name] for part in parts), (name, parts, jobs[name])


def test_labels_are_drawn_as_typed_not_as_math(hostile_run):
    """`$\\nosuchcmd$` failed the whole run (matplotlib's math text); every label is literal now."""
    project, _, result = hostile_run
    assert summary(result)["awkward"].startswith("ok in"), result.stdout + result.stderr
    plot = project.outputs / "awkward" / "plot.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_embedding_reads_back_ids_and_labels_exactly(hostile_run):
    project, frame, _ = hostile_run
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    outputs = readme[readme.index("## Outputs"):readme.index("### Map quality")]
    assert 'dtype={"id": str, "label": str}, keep_default_na=False' in outputs
    embedding = pd.read_csv(project.outputs / "awkward" / "embedding.csv", **EXACT_READ)
    assert list(embedding["id"]) == list(frame["id"])
    assert list(embedding["label"]) == list(frame["label"])
    assert embedding["component_1"].dtype == np.float64


# ---------------------------------------------------------------- reducer encode


def encode(project, *args, **kwargs):
    return project.run("encode", "--model", project.models / "awkward.keras", *args, **kwargs)


def test_encode_matches_columns_by_name_and_writes_standard_output(hostile_run, tmp_path):
    project, frame, _ = hostile_run
    shuffled = frame[["label", "x4", "id", "x2", "x1", "x3"]]
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    result = encode(project, tmp_path / "shuffled.csv", "-o", "-")
    assert result.returncode == 0, result.stderr
    placed = pd.read_csv(io.StringIO(result.stdout), **EXACT_READ)
    published = pd.read_csv(project.outputs / "awkward" / "embedding.csv", **EXACT_READ)
    assert list(placed["id"]) == list(published["id"]) and list(placed["label"]) == list(published["label"])
    # onnxruntime's float32 kernels round differently from Keras' (onnx_export checks 1e-5 relative):
    # a coordinate near 0 can differ by a few float32 steps of the map's larger values.
    np.testing.assert_allclose(placed[["component_1", "component_2"]], published[["component_1", "component_2"]],
                               rtol=1e-6, atol=1e-6)
    assert "encoded 60 rows" in result.stderr and "into standard output" in result.stderr
    assert list(published["id"]) == list(frame["id"])


def test_encode_without_the_model_description_refuses_instead_of_matching_by_position(hostile_run, tmp_path):
    project, frame, _ = hostile_run
    model = tmp_path / "alone.keras"
    model.write_bytes((project.models / "awkward.keras").read_bytes())
    frame[["x4", "x3", "x2", "x1"]].to_csv(tmp_path / "reordered.csv", index=False)
    result = run_cli("encode", "--model", model, tmp_path / "reordered.csv", "-o", tmp_path / "out.csv")
    assert_one_line(result, "alone.json", "never matches them by position")
    assert not (tmp_path / "out.csv").exists()


def test_encode_never_replaces_a_symbolic_link_or_a_folder(hostile_run, tmp_path):
    project, frame, _ = hostile_run
    frame.to_csv(tmp_path / "rows.csv", index=False)
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    link = tmp_path / "link.csv"
    link.symlink_to(precious)
    result = encode(project, tmp_path / "rows.csv", "-o", link)
    assert_one_line(result, "link.csv: a symbolic link", "never replaces or follows")
    assert link.is_symlink() and precious.read_text() == "keep me\n"
    (tmp_path / "folder.csv").mkdir()
    assert_one_line(encode(project, tmp_path / "rows.csv", "-o", tmp_path / "folder.csv"), "folder.csv: a folder")


def test_encode_writes_through_a_fifo_and_leaves_it_a_fifo(hostile_run, tmp_path):
    """The issue's `-o /dev/null`: a special file is written through, never replaced by a regular
    one (a FIFO stands in for /dev/null, which a failing test as root would destroy)."""
    project, frame, _ = hostile_run
    frame.to_csv(tmp_path / "rows.csv", index=False)
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = encode(project, tmp_path / "rows.csv", "-o", fifo)
    assert result.returncode == 0, result.stderr
    reader.join(timeout=60)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    lines = received[0].decode().splitlines()
    assert lines[0] == "id,label,component_1,component_2" and len(lines) == 61


def test_encode_refuses_a_file_that_is_not_a_model_with_one_line(hostile_run, tmp_path):
    project, frame, _ = hostile_run
    frame.to_csv(tmp_path / "rows.csv", index=False)
    (tmp_path / "fake.keras").write_bytes(b"not a zip file at all\n")
    (tmp_path / "fake.json").write_bytes((project.models / "awkward.json").read_bytes())
    result = run_cli("encode", "--model", tmp_path / "fake.keras", tmp_path / "rows.csv", "-o", tmp_path / "o.csv")
    assert_one_line(result, "fake.keras: not a model reducer can load")
    assert not (tmp_path / "o.csv").exists()


def test_encode_data_errors_name_the_input_file(hostile_run, tmp_path):
    project, frame, _ = hostile_run
    bad = frame.copy()
    bad.loc[4, "x2"] = "oops"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    line = assert_one_line(encode(project, tmp_path / "bad.csv", "-o", tmp_path / "o.csv"), "column 'x2'")
    assert f"{tmp_path / 'bad.csv'}: column 'x2', row 4 (line 6): expected a number, got 'oops'" in line
    assert_one_line(encode(project, tmp_path / "bad.csv", "--id", "ident", "-o", tmp_path / "o.csv"),
                    "bad.csv: id column 'ident' not found")


def special_input(tmp_path, kind):
    if kind == "fifo":
        os.mkfifo(tmp_path / "rows.csv")
    elif kind == "larger than the limit":  # sparse: takes no disk
        with open(tmp_path / "rows.csv", "wb") as handle:
            handle.truncate((1 << 30) + 1)
    else:
        return "/dev/zero"
    return tmp_path / "rows.csv"


@pytest.mark.parametrize("kind, parts", [("fifo", ["is a FIFO (named pipe); expected a CSV file"]),
                                         ("/dev/zero", ["/dev/zero is a character device"]),
                                         ("larger than the limit", ["1.0 GiB", "takes at most 1 GiB"])])
def test_encode_reads_only_a_regular_file_of_bounded_size(tmp_path, kind, parts):
    (tmp_path / "m.keras").write_bytes(b"never opened: the input is refused first")
    (tmp_path / "m.json").write_text('{"features": ["a", "b"], "id_column": null, "label_column": null}')
    result = run_cli("encode", "--model", tmp_path / "m.keras", special_input(tmp_path, kind),
                     "-o", tmp_path / "o.csv", timeout=60)
    assert_one_line(result, *parts)


def test_encode_help_describes_every_argument():
    result = run_cli("encode", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for argument, words in [("INPUT.csv", "the rows to place"), ("--model MODEL.keras", "a saved encoder"),
                            ("-o OUT.csv, --output OUT.csv", "where to write"),
                            ("--id COLUMN", "id column of INPUT"), ("--label COLUMN", "label column of INPUT")]:
        assert f"{argument} {words}" in text, (argument, text)
    assert "'-' for standard output" in text and "FIFO is written through" in text


# ---------------------------------------------------------------- the lock


@pytest.mark.parametrize("kind, parts", [
    ("symbolic link", ["is a symbolic link"]),
    ("hard link", ["has 2 names"]),
    ("someone's file", ["holds text reducer did not write"]),
    ("fifo", ["is not a plain file"]),
])
def test_the_lock_file_is_never_followed_nor_overwritten(project, tmp_path, kind, parts):
    project.iris_job(epochs=1)
    project.outputs.mkdir()
    lock = project.outputs / ".reducer.lock"
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    if kind == "symbolic link":
        lock.symlink_to(precious)
    elif kind == "hard link":
        os.link(precious, lock)
    elif kind == "fifo":
        os.mkfifo(lock)
    else:
        lock.write_text("keep me\n")
        precious = lock
    result = project.run("run", "jobs/iris.toml", timeout=120)
    assert_one_line(result, str(lock), *parts, "it was left as it is")
    assert precious.read_text() == "keep me\n"
    assert not (project.models / "iris.keras").exists()


# ---------------------------------------------------------------- input paths


def bad_input(project, kind):
    if kind == "fifo":
        os.mkfifo(project.root / "Data" / "pipe.csv")
        return "../Data/pipe.csv", "pipe.csv is a FIFO (named pipe); expected a regular file"
    if kind == "/dev/zero":
        return "/dev/zero", "/dev/zero is a character device; expected a regular file"
    (project.root / "Data" / "null.csv").symlink_to("/dev/null")
    return "../Data/null.csv", "/dev/null is a character device"  # the link resolved: the file it names


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "link to /dev/null"])
def test_an_input_that_is_not_a_regular_file_is_refused_before_it_is_opened(project, kind):
    """A FIFO hung the run for good while it held the lock; /dev/zero read until memory ran out."""
    path, message = bad_input(project, kind)
    project.iris_job(epochs=1)
    project.job("bad", f'[dataset]\nname = "csv"\npath = "{path}"\nlabel = "species"\n')
    for command in (["check"], ["check", "--data"]):
        result = project.run(*command, "jobs/bad.toml", "jobs/iris.toml", timeout=60)
        assert_one_line(result, "bad: invalid:", "dataset.path", message)
        assert "iris: ok" in result.stdout
    result = project.run("run", "jobs/bad.toml", timeout=60)
    assert_one_line(result, "bad: failed in", "dataset.path", message)
    assert not (project.outputs / ".cache" / "bad").exists()


def test_a_file_without_line_ends_is_refused_not_read_whole(project):
    with open(project.root / "Data" / "one_line.csv", "wb") as handle:
        handle.write(b"a," * (33 << 20))  # 66 MiB and never a line end
    project.job("one_line", '[dataset]\nname = "csv"\npath = "../Data/one_line.csv"\n')
    result = project.run("check", "--data", "jobs/one_line.toml", timeout=120)
    assert_one_line(result, "one_line: invalid:", "one_line.csv, line 1: a record longer than 64 MiB")


# ---------------------------------------------------------------- job files and names


def test_a_very_long_job_name_is_refused_before_training(project):
    project.iris_job(name="n" * 250, epochs=1)  # the default name: the file's, 250 + 5 bytes
    project.job("named", f'name = "{"m" * 101}"\n[dataset]\nname = "iris"\n')
    for command in ("check", "run"):
        result = project.run(command, "jobs/*.toml", timeout=120)
        assert_one_line(result, "n" * 250 + ".toml", "is 250 characters long; at most 100")
        assert_one_line(result, "named.toml: name is 101 characters long; at most 100")
    assert not project.models.exists() or not list(project.models.iterdir())


def test_a_job_file_that_does_not_exist_is_a_usage_error(project):
    project.iris_job(epochs=1)
    for command in ("check", "run"):
        result = project.run(command, "jobs/iris.toml", "jobs/irs.toml", timeout=60)
        assert_one_line(result, "no such job file: jobs/irs.toml", code=2)
        assert not result.stdout
    assert not project.outputs.exists()


def test_job_names_that_differ_only_in_case_are_refused(project):
    project.iris_job(name="iris", epochs=1)
    project.job("other", 'name = "Iris"\n[dataset]\nname = "iris"\n')
    project.job("wine", '[dataset]\nname = "iris"\n')
    result = project.run("check", "jobs/*.toml")
    jobs = summary(result)
    assert result.returncode == 1 and jobs["wine"].startswith("ok"), result.stdout
    for name in ("iris", "Iris"):
        assert jobs[name].startswith("invalid:"), jobs
        assert "job names 'iris' and 'Iris' differ only in case" in jobs[name], jobs


def test_job_names_that_differ_only_in_case_record_their_attempt_in_one_folder(project):
    """Refused for the clash, the two jobs' attempt is recorded once: in the folder one of them
    already has, else under the first name; never a second folder differing only in case."""
    project.iris_job(name="iris", epochs=1)
    project.job("other", 'name = "Iris"\n[dataset]\nname = "iris"\n')
    result = project.run("run", "jobs/iris.toml", "jobs/other.toml")
    assert result.returncode == 1, result.stdout
    assert sorted(p.name for p in project.outputs.iterdir() if p.is_dir()) == ["Iris"]  # "I" < "i"
    status = json.loads((project.outputs / "Iris" / "status.json").read_text())
    assert status["status"] == "failed" and "differ only in case" in status["reason"]
    shutil.rmtree(project.outputs / "Iris")
    (project.outputs / "iris").mkdir()
    assert project.run("run", "jobs/iris.toml", "jobs/other.toml").returncode == 1
    assert sorted(p.name for p in project.outputs.iterdir() if p.is_dir()) == ["iris"]
    assert (project.outputs / "iris" / "status.json").exists()


def test_a_seed_beyond_32_bits_is_refused_at_check(project):
    project.iris_job(epochs=1, extra=f"seed = {2**63 - 1}")
    assert_one_line(project.run("check", "jobs/iris.toml"), "training.seed must be from 0 to 4294967295")


# ---------------------------------------------------------------- plugins


def test_malformed_datasets_are_reported_with_their_plugin_and_skipped(tmp_path):
    result = run_cli("datasets", "--plugins", REGISTRATION, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    source = str(REGISTRATION / "malformed_datasets.py")
    for name in ("option_as_text", "option_as_generic", "normalize_wrong_length", "normalize_lists_differ",
                 "normalize_without_features", "normalize_zero_scale", "normalize_unknown", "load_not_callable",
                 "validate_not_callable"):
        assert_one_line(result, f"plugin {source}: dataset {name!r} skipped: ")
        assert not re.search(rf"^{name} ", result.stdout, flags=re.M)
    assert re.search(r"^fixed_per_feature ", result.stdout, flags=re.M) and re.search(r"^iris ", result.stdout,
                                                                                        flags=re.M)


def test_job_features_must_fit_a_fixed_per_feature_normalisation(project):
    project.job("fits", '[dataset]\nname = "fixed_per_feature"\nrows = 3\n')
    project.job("narrower", '[dataset]\nname = "fixed_per_feature"\nfeatures = ["a", "b"]\n')
    project.job("renormalised", '[dataset]\nname = "fixed_per_feature"\nfeatures = ["a", "b"]\nnormalize = "zscore"\n')
    result = project.run("check", "jobs/*.toml", "--plugins", REGISTRATION)
    jobs = summary(result)
    assert jobs["fits"].startswith("ok") and jobs["renormalised"].startswith("ok"), result.stdout
    assert "dataset.features names 2 column(s), but dataset 'fixed_per_feature' normalises exactly 3" \
        in jobs["narrower"]


def test_a_plugin_that_raises_keyboard_interrupt_in_validate_fails_its_job_only(project):
    project.iris_job(epochs=1)
    project.job("interrupting", '[dataset]\nname = "interrupts_in_validate"\n')
    result = project.run("check", "jobs/*.toml", "--plugins", INTERRUPTS)
    assert_one_line(result, "interrupting: invalid:", "failed to validate its options: KeyboardInterrupt")
    assert "iris: ok" in result.stdout


def test_a_real_ctrl_c_while_plugin_code_runs_still_stops_the_run(project, tmp_path):
    marker = tmp_path / "loading"
    project.job("waits", f'[dataset]\nname = "waits_in_load"\nmarker = "{marker}"\n')
    environment = {**{k: v for k, v in STARTING_ENVIRONMENT.items() if k != "REDUCER_PLUGINS"},
                   "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "reducer", "run", "jobs/waits.toml", "--plugins", INTERRUPTS],
                               cwd=project.root, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, stdin=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not marker.exists() and time.time() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert marker.exists(), process.communicate(timeout=10)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert "reducer: interrupted" in stderr and "Traceback" not in stderr
