"""Plugins as an outside author lays them out: a folder plugin with relative imports, `_` helper
files, an installed package with an entry point; and what reducer says when they go wrong (one
line, once, without its private module names; prints kept out of the summary)."""

import json
import textwrap

import pytest

from conftest import Project, run_cli

from reducer.datasets.code import code_digest
from reducer.datasets.registry import load_registry

TRAINING = """
    [model]
    objective = "reconstruction"
    [training]
    epochs = 2
    batch_size = 16
    """


def write(folder, files):
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


HELIX = {
    "helix/__init__.py": """
        import reducer

        from .shapes import helix_frame
        from . import settings


        @reducer.hookimpl
        def register_datasets(register):
            register(reducer.Dataset(name="helix", description="a helix, label turn", load=helix_frame,
                                     label="turn", options=settings.OPTIONS))
        """,
    "helix/shapes.py": """
        import numpy as np
        import pandas as pd

        from .settings import TURNS


        def helix_frame(options):
            print("making", options["rows"], "rows")  # a plugin that talks: the log gets it
            t = np.linspace(0, TURNS * 2 * np.pi, options["rows"])
            return pd.DataFrame({"x": np.cos(t), "y": np.sin(t), "z": t / 10,
                                 "turn": (t // (2 * np.pi)).astype(int).astype(str)})
        """,
    "helix/settings.py": """
        import reducer

        TURNS = 3
        OPTIONS = {"rows": reducer.Option(int, default=90, min=10, description="points on the helix")}
        """,
}


def test_a_folder_plugin_with_relative_imports_runs_and_its_code_is_followed(tmp_path):
    project = Project(tmp_path / "project")
    write(project.root / "plugins", HELIX)
    project.job("helix", '[dataset]\nname = "helix"\n' + textwrap.dedent(TRAINING))
    listed = project.run("datasets", "--project", ".")
    assert listed.returncode == 0, listed.stderr
    assert "helix" in listed.stdout and str(project.root / "plugins" / "helix") in listed.stdout
    assert "points on the helix" in listed.stdout

    first = project.run("run", "jobs/helix.toml")
    assert first.returncode == 0, first.stderr
    assert "making" not in first.stdout  # standard output is reducer's summary alone
    assert "dataset 'helix' printed: making 90 rows" in first.stderr
    manifest = json.loads((project.outputs / "helix" / "manifest.json").read_text())
    assert manifest["dataset"]["rows"] == 90 and manifest["dataset"]["source"] == str(project.root / "plugins" / "helix")

    same = project.run("run", "jobs/helix.toml")
    assert "helix: unchanged" in same.stdout, same.stdout
    # A file of the folder other than __init__.py changes: the plugin's code changed.
    settings = project.root / "plugins" / "helix" / "settings.py"
    settings.write_text(settings.read_text().replace("TURNS = 3", "TURNS = 4"))
    edited = project.run("run", "jobs/helix.toml")
    assert edited.returncode == 0, edited.stderr
    assert "helix: unchanged" not in edited.stdout and "the dataset's plugin code" in edited.stderr


def test_underscore_files_are_helpers_a_drop_in_imports_not_plugins(tmp_path):
    write(tmp_path, {
        "_shared.py": """
            import reducer

            ROWS = 12

            @reducer.hookimpl
            def register_datasets(register):  # a helper is never loaded as a plugin
                raise AssertionError("a helper was loaded as a plugin")
            """,
        "counted.py": """
            import pandas as pd
            import reducer
            from . import _shared
            from ._shared import ROWS

            @reducer.hookimpl
            def register_datasets(register):
                register(reducer.Dataset(name="counted", description="n and n + 1",
                                         load=lambda o: pd.DataFrame({"n": range(ROWS), "m": range(1, ROWS + 1)})))
            """,
    })
    registry = load_registry([tmp_path])
    assert registry.problems == [], registry.problems
    assert len(registry.get("counted").load({})) == 12
    before = code_digest(str(tmp_path / "counted.py"))
    (tmp_path / "_shared.py").write_text((tmp_path / "_shared.py").read_text().replace("ROWS = 12", "ROWS = 13"))
    assert code_digest(str(tmp_path / "counted.py")) != before  # its helper is part of its code


def test_a_missing_plugins_folder_is_a_usage_error(tmp_path):
    project = Project(tmp_path / "project")
    project.iris_job()
    for command in (("run", "jobs/iris.toml"), ("check", "jobs/iris.toml"), ("datasets",)):
        result = project.run(*command, "--plugins", "no_such_folder")
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.strip() == "reducer: --plugins no_such_folder: no such folder; nothing was done"
        assert result.stdout == "" and not project.outputs.exists()


def test_registration_problems_skip_only_what_failed_and_leak_no_private_names(tmp_path):
    write(tmp_path, {
        "misspelled.py": """
            import reducer

            @reducer.hookimpl
            def register_dataset(register):
                pass
            """,
        "half_good.py": """
            import pandas as pd
            import reducer

            def frame(options):
                return pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [3.0, 1.0, 2.0]})

            @reducer.hookimpl
            def register_datasets(register):
                print("registering")
                register("not a dataset")
                register(reducer.Dataset(name="first", description="kept", load=frame))
                register(reducer.Dataset(name="second", description="kept too", load=frame))
                raise RuntimeError("the third needs a server")
            """,
    })
    registry = load_registry([tmp_path])
    assert {"first", "second"} <= set(registry.datasets)
    problems = "\n".join(registry.problems)
    assert "reducer._dropins" not in problems and "f_" not in problems.replace("half_good", "")
    assert f"plugin {tmp_path / 'misspelled.py'}: unknown hook 'register_dataset'" in problems
    assert "register() takes a reducer.Dataset, got str; skipped" in problems
    assert (f"plugin {tmp_path / 'half_good.py'} failed in register_datasets at line 14 of half_good.py: "
            f"RuntimeError: the third needs a server (the 2 dataset(s) it registered before are kept)") in problems

    listed = run_cli("datasets", "--plugins", tmp_path, cwd=tmp_path)
    assert listed.returncode == 1
    assert "registering" not in listed.stdout and "plugin half_good.py printed: registering" in listed.stderr
    assert "first" in listed.stdout and "reducer._dropins" not in listed.stderr


def test_a_plugin_that_fails_after_a_malformed_dataset_does_not_say_it_is_kept(tmp_path):
    """Registered, then skipped as malformed: the failure's line must not call it kept."""
    (tmp_path / "badreg.py").write_text(
        "import reducer\n\n@reducer.hookimpl\ndef register_datasets(register):\n"
        "    register(reducer.Dataset(name='odd', description='no loader', load=None))\n"
        "    raise RuntimeError('then it broke')\n")
    problems = "\n".join(load_registry([tmp_path]).problems)
    assert "RuntimeError: then it broke" in problems and "registered before are kept" not in problems
    assert "dataset 'odd' skipped" in problems


def test_a_hook_without_its_hookimpl_marker_is_a_plugin_problem_not_silence(tmp_path):
    """pluggy skips a register_datasets that lacks @reducer.hookimpl without a word; reducer says
    so, naming the plugin file, and the job that needs its dataset points at that warning."""
    project = Project(tmp_path / "project")
    (project.root / "plugins" / "nohook.py").write_text(
        "import reducer\n\ndef register_datasets(register):\n    pass\n")
    project.job("needs_it", '[dataset]\nname = "nohook"\n')
    result = project.run("check", "jobs/needs_it.toml")
    assert result.returncode == 1
    assert "nohook.py: register_datasets is not marked @reducer.hookimpl, so reducer never calls it" in result.stderr
    assert "unknown dataset 'nohook' (1 plugin problem: see the warning above)" in result.stdout


def test_each_failed_job_is_one_short_line_and_plugin_problems_are_logged_once(tmp_path):
    project = Project(tmp_path / "project")
    for k in range(3):
        (project.root / "plugins" / f"broken_{k}.py").write_text(f"raise ImportError('plugin {k} needs a server')\n")
        project.job(f"job_{k}", f'[dataset]\nname = "from_broken_{k}"\n')
    project.iris_job(epochs=2)
    result = project.run("check", "jobs/*.toml")
    assert result.returncode == 1
    lines = [line for line in result.stdout.splitlines() if line.startswith("job_")]
    assert len(lines) == 3
    for line in lines:
        assert "(3 plugin problems: see the warnings above)" in line and "needs a server" not in line
    for k in range(3):
        assert result.stderr.count(f"plugin {k} needs a server") == 1
    assert "iris: ok" in result.stdout


@pytest.fixture
def installed_package(tmp_path):
    """A real installed distribution on PYTHONPATH: a package plus its .dist-info with an entry point."""
    site = tmp_path / "site"
    write(site, {
        "blobs_plugin/__init__.py": """
            import numpy as np
            import pandas as pd
            import reducer

            from .centres import CENTRES

            def blobs(options):
                rng = np.random.default_rng(0)
                rows = [rng.normal(c, 0.3, size=3) for c in CENTRES for _ in range(20)]
                return pd.DataFrame(rows, columns=["a", "b", "c"])

            @reducer.hookimpl
            def register_datasets(register):
                register(reducer.Dataset(name="blobs", description="from the package", load=blobs))
            """,
        "blobs_plugin/centres.py": "CENTRES = [0.0, 3.0, 6.0]\n",
        "blobs_plugin-2.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: blobs-plugin\nVersion: 2.0\n",
        "blobs_plugin-2.0.dist-info/entry_points.txt": "[reducer]\nblobs = blobs_plugin\n",
        "blobs_plugin-2.0.dist-info/RECORD": "blobs_plugin/__init__.py,,\nblobs_plugin/centres.py,,\n",
    })
    return site


def test_an_installed_package_is_followed_by_its_files_and_a_drop_in_wins_its_name(tmp_path, installed_package,
                                                                                 monkeypatch):
    monkeypatch.syspath_prepend(str(installed_package))
    registry = load_registry()
    assert registry.datasets["blobs"].source == "package blobs-plugin 2.0"
    before = code_digest("package blobs-plugin 2.0")
    centres = installed_package / "blobs_plugin" / "centres.py"
    centres.write_text("CENTRES = [0.0, 3.0, 9.0]\n")  # edited in place, the version unchanged
    assert code_digest("package blobs-plugin 2.0") not in (before, "package blobs-plugin 2.0")

    project = Project(tmp_path / "project")
    (project.root / "plugins" / "local_blobs.py").write_text(textwrap.dedent("""
        import pandas as pd
        import reducer

        @reducer.hookimpl
        def register_datasets(register):
            register(reducer.Dataset(name="blobs", description="the project's own",
                                     load=lambda o: pd.DataFrame({"a": [1.0, 2.0, 4.0], "b": [0.0, 1.0, 0.5]})))
        """))
    project.job("blobs", '[dataset]\nname = "blobs"\n')
    checked = project.run("check", "jobs/blobs.toml", "--data", env={"PYTHONPATH": str(installed_package)})
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"dataset blobs from {project.root / 'plugins' / 'local_blobs.py'}; 3 rows" in checked.stdout
    assert ("dataset 'blobs': using the drop-in " + str(project.root / "plugins" / "local_blobs.py")
            + ", not the one package blobs-plugin 2.0 registers too") in checked.stderr
