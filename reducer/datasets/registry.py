"""Finding plugins and collecting the datasets they register.

Sources, in order: the built-in datasets (the package reducer.builtin_plugins, which is the
repository's `plugins/` folder), the project's `plugins/` folder, folders from `--plugins` and
`REDUCER_PLUGINS` (os.pathsep-separated), and modules installed packages list under the
entry-point group `reducer`. Plugin code is imported only from these: never from the current
folder unasked. One broken plugin is recorded as a problem and skipped; the others still work.
"""

import hashlib
import importlib
import importlib.util
import os
import re
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pluggy

from reducer.datasets import hookspecs
from reducer.datasets.dataset import Dataset
from reducer.errors import PluginError

ENTRY_POINT_GROUP = "reducer"
PLUGINS_ENV = "REDUCER_PLUGINS"
# The built-in datasets: modules of the repository's plugins/ folder, installed as the package
# reducer.builtin_plugins (pyproject.toml maps it), registered like any other plugin.
BUILTIN_MODULES = ("reducer.builtin_plugins.uci_digits", "reducer.builtin_plugins.iris",
                   "reducer.builtin_plugins.csv_table")
# Drop-in files are imported under this private package, never under their bare name, so that
# `plugins/csv.py` cannot shadow the standard `csv` module.
DROPIN_PACKAGE = "reducer._dropins"


@dataclass(frozen=True)
class Registered:
    dataset: Dataset
    source: str  # a file path or "package NAME VERSION"


@dataclass
class Registry:
    datasets: dict = field(default_factory=dict)  # name -> Registered
    broken: list = field(default_factory=list)  # one line per plugin that failed to load
    duplicates: dict = field(default_factory=dict)  # dataset name -> one-line message

    @property
    def problems(self):
        return self.broken + list(self.duplicates.values())

    def get(self, name):
        if name in self.duplicates:
            raise PluginError(self.duplicates[name])
        if name not in self.datasets:
            known = ", ".join(sorted(self.datasets)) or "none"
            raise PluginError(f"unknown dataset {name!r}; known datasets: {known}")
        return self.datasets[name].dataset


def plugin_dirs(extra_dirs=(), project_root=None):
    """Every folder to scan for drop-in `.py` files, in order, without repeats."""
    dirs = []
    if project_root is not None:
        dirs.append(Path(project_root) / "plugins")
    dirs.extend(Path(d) for d in extra_dirs)
    dirs.extend(Path(d) for d in os.environ.get(PLUGINS_ENV, "").split(os.pathsep) if d)
    unique = []
    for d in dirs:
        resolved = d.resolve()
        if resolved not in unique:
            unique.append(resolved)
    return unique


def _import_dropin(path):
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", path.stem)
    module_name = f"{DROPIN_PACKAGE}.{stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _load_modules(dirs, problems):
    """(module, source) for the built-ins, every drop-in file and entry point that imports cleanly."""
    loaded = []
    for name in BUILTIN_MODULES:
        module = importlib.import_module(name)
        loaded.append((module, module.__file__))
    # In a checkout the project's plugins/ folder is the built-ins' folder: one import each.
    builtin_files = {Path(module.__file__).resolve() for module, _ in loaded}
    for folder in dirs:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_") or path.resolve() in builtin_files:
                continue
            try:
                loaded.append((_import_dropin(path), str(path)))
            except (Exception, SystemExit) as exc:  # a plugin's bug must not stop the others
                problems.append(f"plugin {path} failed to import: {type(exc).__name__}: {exc}")
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = entry_point.dist
        source = f"package {dist.name} {dist.version}" if dist else f"entry point {entry_point.value}"
        try:
            loaded.append((entry_point.load(), source))
        except (Exception, SystemExit) as exc:
            problems.append(f"plugin {source} ({entry_point.value}) failed to import: "
                            f"{type(exc).__name__}: {exc}")
    return loaded


def load_registry(extra_dirs=(), project_root=None):
    """Import every plugin and collect its datasets into a `Registry`."""
    registry = Registry()
    manager = pluggy.PluginManager("reducer")
    manager.add_hookspecs(hookspecs)
    for module, source in _load_modules(plugin_dirs(extra_dirs, project_root), registry.broken):
        try:
            manager.register(module, name=source)
            manager.check_pending()
        except Exception as exc:  # e.g. a misspelled hook name
            registry.broken.append(f"plugin {source} is not a valid reducer plugin: {exc}")
            if manager.has_plugin(source):
                manager.unregister(name=source)
    # Each plugin's hook is called on its own so one failure names its plugin and skips it.
    for impl in manager.hook.register_datasets.get_hookimpls():
        source = impl.plugin_name
        found = []

        def register(dataset, _found=found):
            if not isinstance(dataset, Dataset):
                raise PluginError(f"register() takes a reducer.Dataset, got {type(dataset).__name__}")
            _found.append(dataset)

        try:
            impl.function(*[{"register": register}[name] for name in impl.argnames])
        except (Exception, SystemExit) as exc:
            registry.broken.append(f"plugin {source} failed in register_datasets: "
                                     f"{type(exc).__name__}: {exc}")
            continue
        for dataset in found:
            _add(registry, dataset, source)
    return registry


def _add(registry, dataset, source):
    name = dataset.name
    if name in registry.duplicates:
        registry.duplicates[name] += f" and {source}"
        return
    if name in registry.datasets and _same_file(registry.datasets[name].source, source):
        return  # the same plugin file in two folders (e.g. a second checkout's plugins/): one plugin
    if name in registry.datasets:
        first = registry.datasets.pop(name).source
        registry.duplicates[name] = f"dataset {name!r} is registered twice: by {first} and {source}"
        return
    registry.datasets[name] = Registered(dataset, source)


def _same_file(first, second):
    try:
        return Path(first).read_bytes() == Path(second).read_bytes()
    except OSError:  # "package NAME VERSION" sources are not files
        return False
