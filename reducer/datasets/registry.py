"""Finding plugins and collecting the datasets they register.

Sources, in order: the built-in datasets (the package reducer.builtin_plugins, which is the
repository's `plugins/` folder), the project's `plugins/` folder, folders from `--plugins` and
`REDUCER_PLUGINS` (os.pathsep-separated), and modules installed packages list under the
entry-point group `reducer`. Plugin code is imported only from these: never from the current
folder unasked. One broken plugin is recorded as a problem and skipped; the others still work.
Every `Dataset` is checked as it is registered (`malformed`): one that breaks the contract is
reported with its plugin and skipped, so that no job finds out half way through a run.
"""

import hashlib
import importlib
import importlib.util
import math
import numbers
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pluggy

from reducer.datasets import hookspecs, options
from reducer.datasets.dataset import NORMALIZE_METHODS, Dataset
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
    skipped: dict = field(default_factory=dict)  # dataset name -> why its Dataset was refused (`malformed`)

    @property
    def problems(self):
        return self.broken + list(self.skipped.values()) + list(self.duplicates.values())

    def get(self, name):
        if name in self.duplicates:
            raise PluginError(self.duplicates[name])
        if name not in self.datasets:
            if name in self.skipped:
                raise PluginError(self.skipped[name])
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
            problem = malformed(dataset)
            if problem:
                line = f"plugin {source}: dataset {dataset.name!r} skipped: {problem}"
                name = str(dataset.name)
                registry.skipped[name] = f"{registry.skipped[name]}; {line}" if name in registry.skipped else line
                continue
            _add(registry, dataset, source)
    return registry


# ---------------------------------------------------------------- checking a Dataset


def _column_name(value):
    return isinstance(value, (str, int)) and not isinstance(value, bool)  # as the frame has them: text, or 0, 1...


def _number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _affine_part(value):
    """One number or a list of numbers as a tuple of floats, or None when it is neither."""
    if _number(value):
        return (float(value),)
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__len__") or not hasattr(value, "__iter__"):
        return None
    parts = list(value)
    return tuple(float(v) for v in parts) if parts and all(_number(v) for v in parts) else None


def per_feature_width(normalize):
    """How many features a fixed (offset, scale) with per-feature lists is for; None when it has
    none (a method name, or two numbers, which suit any width)."""
    if not isinstance(normalize, (tuple, list)) or len(normalize) != 2:
        return None
    widths = [len(part) for part, given in zip(map(_affine_part, normalize), normalize)
              if part is not None and not _number(given)]
    return widths[0] if widths else None


def _normalize_problem(dataset):
    normalize = dataset.normalize
    if isinstance(normalize, str):
        return None if normalize in NORMALIZE_METHODS else (
            f"normalize must be one of {', '.join(NORMALIZE_METHODS)} or (offset, scale), got {normalize!r}")
    if not isinstance(normalize, (tuple, list)) or len(normalize) != 2:
        return f"normalize must be one of {', '.join(NORMALIZE_METHODS)} or (offset, scale), got {normalize!r}"
    offset, scale = (_affine_part(part) for part in normalize)
    if offset is None or scale is None:
        return (f"normalize=(offset, scale) must hold finite numbers, or lists of them (one per feature), "
                f"got {normalize!r}")
    if any(s == 0 for s in scale):
        return f"normalize=(offset, scale): scale must be non-zero, got {normalize[1]!r}"
    lists = [len(part) for part, given in zip((offset, scale), normalize) if not _number(given)]
    if len(set(lists)) > 1:
        return (f"normalize=(offset, scale): offset has {lists[0]} numbers and scale {lists[1]}; expected one "
                f"per feature")
    if lists and dataset.features is None:
        return (f"normalize=(offset, scale) gives one number per feature ({lists[0]}), so features must name "
                f"those {lists[0]} columns in order")
    if lists and len(dataset.features) != lists[0]:
        return (f"normalize=(offset, scale) gives {lists[0]} numbers per feature, but features names "
                f"{len(dataset.features)} columns; expected one number per feature")
    return None


def malformed(dataset):
    """What is wrong with a registered `Dataset`, in one line, or None when it keeps the contract
    (reducer/datasets/dataset.py)."""
    if not isinstance(dataset.name, str) or not dataset.name.strip():
        return f"name must be a non-empty string, got {dataset.name!r}"
    if not isinstance(dataset.description, str):
        return f"description must be a string, got {dataset.description!r}"
    if not callable(dataset.load):
        return f"load must be a function load(options) -> DataFrame, got {dataset.load!r}"
    for key in ("validate", "read_blocks"):
        value = getattr(dataset, key)
        if value is not None and not callable(value):
            return f"{key} must be a function or None, got {value!r}"
    for key in ("label", "id"):
        value = getattr(dataset, key)
        if value is not None and not _column_name(value):
            return f"{key} must be a column name or None, got {value!r}"
    features = dataset.features
    if features is not None and (not isinstance(features, (list, tuple)) or not features
                                 or not all(map(_column_name, features))):
        return f"features must be a non-empty list of column names or None, got {features!r}"
    if dataset.label_type not in (None, "class", "value"):
        return f"label_type must be \"class\", \"value\" or None, got {dataset.label_type!r}"
    if not isinstance(dataset.options, Mapping):
        return f"options must be a dict of option name -> reducer.Option (or type), got {dataset.options!r}"
    for key, spec in dataset.options.items():
        problem = options.declaration_problem(key, spec)
        if problem:
            return problem
    return _normalize_problem(dataset)


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
