"""A plugin's options schema, as an outside author declares it with `reducer.Option`: defaults
filled in before `validate` and `load`, whole numbers accepted for floats, one-line refusals
from `reducer check`, and `reducer datasets` listing every option."""

import json
import textwrap

import pytest

from conftest import TEST_PLUGINS, Project, run_cli

import reducer
from reducer.datasets.registry import load_registry

SWISS = """
    import numpy as np
    import pandas as pd
    import reducer


    def check(options):
        # what the plugin gets: the defaults filled in, a float where a float is declared
        assert options["rows"] >= 10 and isinstance(options["noise"], float), options
        if options["shape"] == "flat" and options["noise"] > 0.5:
            raise reducer.DataError("a flat roll takes noise up to 0.5")


    def load(options):
        check(options)
        rng = np.random.default_rng(options["seed"])
        t = 1.5 * np.pi * (1 + 2 * rng.random(options["rows"]))
        height = 21 * rng.random(options["rows"]) if options["shape"] == "roll" else np.zeros(options["rows"])
        noise = options["noise"] * rng.normal(size=(options["rows"], 3))
        frame = pd.DataFrame(np.column_stack([t * np.cos(t), height, t * np.sin(t)]) + noise, columns=list("xyz"))
        frame["t"] = t
        return frame


    @reducer.hookimpl
    def register_datasets(register):
        register(reducer.Dataset(
            name="swiss", description="a Swiss roll, label t (a value)", load=load, validate=check,
            label="t", label_type="value",
            options={
                "rows": reducer.Option(int, default=300, min=10, max=100_000, description="how many points"),
                "noise": reducer.Option(float, default=0.05, min=0, description="Gaussian noise added to x, y, z"),
                "shape": reducer.Option(str, default="roll", choices=["roll", "flat"], description="the sheet's shape"),
                "seed": reducer.Option(int, required=True, description="the random generator's seed"),
            }))
    """


@pytest.fixture
def swiss(tmp_path):
    project = Project(tmp_path / "project")
    (project.root / "plugins" / "swiss.py").write_text(textwrap.dedent(SWISS))
    return project


def test_reducer_datasets_lists_the_options_with_defaults_and_descriptions(swiss):
    listed = swiss.run("datasets", "--project", ".")
    assert listed.returncode == 0, listed.stderr
    lines = [line.split() for line in listed.stdout.splitlines()]
    assert ["rows", "int,", "default", "300,", "from", "10", "to", "100000", "how", "many", "points"] in lines
    assert ["noise", "float,", "default", "0.05,", "0", "or", "more", "Gaussian", "noise", "added", "to", "x,", "y,",
            "z"] in lines
    assert ["shape", "str,", "default", '"roll",', "one", "of", '"roll",', '"flat"', "the", "sheet's", "shape"] in lines
    assert ["seed", "int,", "required", "the", "random", "generator's", "seed"] in lines
    assert ["path", "str,", "required", "the", "CSV", "file,", "relative", "to", "the", "job", "file"] in lines

    one = swiss.run("datasets", "swiss", "--project", ".")
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith("swiss  a Swiss roll") and "csv" not in one.stdout.split()
    assert "options every dataset takes:" in one.stdout and "label_type" in one.stdout
    unknown = swiss.run("datasets", "swirl", "--project", ".")
    assert unknown.returncode == 2 and unknown.stderr.strip().endswith("known datasets: csv, iris, swiss, uci_digits")


@pytest.mark.parametrize("lines, expected", [
    ("seed = 1\nsize = 3", "unknown key 'size' in [dataset] for dataset 'swiss'"),
    ("rows = 20", "[dataset] needs seed for dataset 'swiss' (the random generator's seed); expected an integer"),
    ("seed = 1\nrows = 5", "dataset.rows must be from 10 to 100000, got 5"),
    ("seed = 1\nnoise = -1", "dataset.noise must be 0 or more, got -1"),
    ("seed = 1\nshape = \"ball\"", "dataset.shape must be one of roll, flat, got 'ball'"),
    ("seed = 1\nnoise = \"low\"", "dataset.noise must be a number, got 'low'"),
    ("seed = 1\nrows = 20.5", "dataset.rows must be an integer, got 20.5"),
    ("seed = 1\nnoise = true", "dataset.noise must be a number, got true"),  # as TOML writes it, not True
    ("seed = 1\nshape = \"flat\"\nnoise = 1", "a flat roll takes noise up to 0.5"),  # the plugin's validate
])
def test_check_refuses_what_the_declaration_refuses_in_one_line(swiss, lines, expected):
    swiss.job("bad", f'[dataset]\nname = "swiss"\n{lines}\n')
    swiss.job("good", '[dataset]\nname = "swiss"\nseed = 3\nnoise = 0\n')  # 0: an integer for a float
    result = swiss.run("check", "jobs/bad.toml", "jobs/good.toml", "--data")
    assert result.returncode == 1, result.stdout + result.stderr
    bad = [line for line in result.stdout.splitlines() if line.startswith("bad: ")]
    assert len(bad) == 1 and bad[0].startswith(f"bad: invalid: {swiss.root / 'jobs' / 'bad.toml'}: "), result.stdout
    assert expected in bad[0], bad[0]
    assert "good: ok" in result.stdout and "300 rows x 3 columns read and checked" in result.stdout
    assert "Traceback" not in result.stderr


def test_the_plugin_gets_its_defaults_and_a_float_in_a_run(swiss):
    swiss.job("swiss", """
        [dataset]
        name = "swiss"
        seed = 4
        noise = 0
        rows = 120
        [training]
        epochs = 2
        batch_size = 32
        """)
    result = swiss.run("run", "jobs/swiss.toml")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((swiss.outputs / "swiss" / "manifest.json").read_text())
    assert manifest["dataset"]["rows"] == 120
    assert manifest["job"]["dataset"] == {"name": "swiss", "seed": 4, "noise": 0.0, "rows": 120, "shape": "roll",
                                          "normalize": "zscore"}


def test_the_short_form_of_options_keeps_working():
    # {"rows": int}, as plugins written before reducer.Option declare them
    registry = load_registry([TEST_PLUGINS / "good"])
    dataset = registry.get("squares")
    assert dataset.options == {"rows": int}
    from reducer.datasets import options

    assert options.own_specs(dataset) == {"rows": reducer.Option(int)}
    assert options.with_defaults({}, dataset) == {}


@pytest.mark.parametrize("declared, problem", [
    ('reducer.Option(int, default=5, required=True)', "an option with a default cannot be required"),
    ('reducer.Option(int, default=5, min=10)', "the default must be 10 or more; it is 5"),
    ('reducer.Option(str, default="x", choices=["a", "b"])', "the default must be one of a, b; it is 'x'"),
    ('reducer.Option("int")', "must be a type such as int, str, bool, float or list"),
    ('reducer.Option(int, description="two\\nlines")', "description must be one line of text"),
    ('reducer.Option(float, min="0")', "min must be a number or None"),
])
def test_a_malformed_declaration_is_reported_and_its_dataset_skipped(tmp_path, declared, problem):
    (tmp_path / "declared.py").write_text(textwrap.dedent(f"""
        import pandas as pd
        import reducer

        @reducer.hookimpl
        def register_datasets(register):
            register(reducer.Dataset(name="odd", description="x", load=lambda o: pd.DataFrame(),
                                     options={{"size": {declared}}}))
            register(reducer.Dataset(name="fine", description="x", load=lambda o: pd.DataFrame()))
        """))
    registry = load_registry([tmp_path])
    assert "fine" in registry.datasets and "odd" not in registry.datasets
    [line] = registry.problems
    assert "dataset 'odd' skipped: options['size']" in line and problem in line, line
    listed = run_cli("datasets", "--plugins", tmp_path, cwd=tmp_path)
    assert listed.returncode == 1 and problem in listed.stderr and "fine" in listed.stdout
