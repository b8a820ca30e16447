"""Finding plugins and collecting the datasets they register.

Sources, in order: the built-in datasets (the package reducer.builtin_plugins, which is the
repository's `plugins/` folder), the project's `plugins/` folder, folders from `--plugins` and
`REDUCER_PLUGINS` (os.pathsep-separated), and modules installed packages list under the
entry-point group `reducer`. In a plugin folder, each `.py` file is a plugin and so is each
folder with an `__init__.py` (a package: its relative imports work); names starting with `_`
are helpers, imported only by the plugins that import them. Plugin code is imported only from
these: never from the current folder unasked. One broken plugin is recorded as a problem and
skipped; the others still work. Every `Dataset` is checked as it is registered (`malformed`):
one that breaks the contract is reported with its plugin and skipped, the plugin's other
datasets still count. A drop-in (a file or folder in a plugin folder) and an installed package
registering one name: the drop-in is used, and a note says so.
"""

import hashlib
import importlib
import importlib.util
import math
import numbers
import os
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, List, Optional, Tuple

import pluggy

from reducer.datasets import calls, hookspecs, options
from reducer.datasets.dataset import NORMALIZE_METHODS, Dataset
from reducer.errors import PluginError

ENTRY_POINT_GROUP = "reducer"
PLUGINS_ENV = "REDUCER_PLUGINS"
# The built-in datasets: modules of the repository's plugins/ folder, installed as the package
# reducer.builtin_plugins (pyproject.toml maps it), registered like any other plugin.
BUILTIN_MODULES = ("reducer.builtin_plugins.uci_digits", "reducer.builtin_plugins.iris",
                   "reducer.builtin_plugins.csv_table")
# Drop-ins are imported under this private package, never under their bare name, so that
# `plugins/csv.py` cannot shadow the standard `csv` module: each plugin folder is a package
# reducer._dropins.f_<digest of its path>, and its files and folders are its modules.
DROPIN_PACKAGE = "reducer._dropins"
HOOK_NAMES = ("register_datasets",)
BUILTIN, DROPIN, PACKAGE = "built-in", "drop-in", "package"


@dataclass(frozen=True)
class Registered:
    dataset: Dataset
    source: str  # a file or folder path, or "package NAME VERSION"
    kind: str = DROPIN  # BUILTIN, DROPIN or PACKAGE


@dataclass
class Registry:
    datasets: dict = field(default_factory=dict)  # name -> Registered
    broken: list = field(default_factory=list)  # one line per plugin that failed to load
    duplicates: dict = field(default_factory=dict)  # dataset name -> one-line message
    skipped: dict = field(default_factory=dict)  # dataset name -> why its Dataset was refused (`malformed`)
    notes: list = field(default_factory=list)  # one line per rule applied (a drop-in over a package)

    @property
    def problems(self) -> List[str]:
        return self.broken + list(self.skipped.values()) + list(self.duplicates.values())

    def get(self, name: str) -> Dataset:
        if name in self.duplicates:
            raise PluginError(self.duplicates[name])
        if name not in self.datasets:
            if name in self.skipped:
                raise PluginError(self.skipped[name])
            known = ", ".join(sorted(self.datasets)) or "none"
            count = len(self.problems)  # as many as the warnings said above
            plural = "s" if count > 1 else ""
            failed = f" ({count} plugin problem{plural}: see the warning{plural} above)" if count else ""
            raise PluginError(f"unknown dataset {name!r}{failed}; known datasets: {known}")
        return self.datasets[name].dataset


def plugin_dirs(extra_dirs: Iterable[Any] = (), project_root: Optional[Path] = None) -> List[Path]:
    """Every folder to scan for drop-in plugins, in order, without repeats."""
    dirs = []
    if project_root is not None:
        dirs.append(Path(project_root) / "plugins")
    dirs.extend(Path(d) for d in extra_dirs)
    dirs.extend(Path(d) for d in os.environ.get(PLUGINS_ENV, "").split(os.pathsep) if d)
    unique: List[Path] = []
    for d in dirs:
        resolved = d.resolve()
        if resolved not in unique:
            unique.append(resolved)
    return unique


def missing_folders(folders: Iterable[Any]) -> List[str]:
    """The folders named (--plugins) that are not folders: a typo to refuse, not to skip."""
    return [str(folder) for folder in folders if not Path(folder).is_dir()]


def _folder_package(folder: Path) -> str:
    """The private package whose modules are `folder`'s plugins (made once per process)."""
    if DROPIN_PACKAGE not in sys.modules:
        root = types.ModuleType(DROPIN_PACKAGE)
        root.__path__ = []
        sys.modules[DROPIN_PACKAGE] = root
    name = f"{DROPIN_PACKAGE}.f_{hashlib.sha1(str(folder).encode()).hexdigest()[:10]}"
    if name not in sys.modules:
        package = types.ModuleType(name, f"the plugins of {folder}")
        package.__path__ = [str(folder)]
        sys.modules[name] = package
    return name


def _import_dropin(path: Path) -> types.ModuleType:
    """A drop-in file or folder, as a module of its folder's private package."""
    module_name = f"{_folder_package(path.parent)}.{path.stem if path.is_file() else path.name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    location = path / "__init__.py" if path.is_dir() else path
    spec = importlib.util.spec_from_file_location(
        module_name, location, submodule_search_locations=[str(path)] if path.is_dir() else None)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        for name in [n for n in sys.modules if n == module_name or n.startswith(module_name + ".")]:
            del sys.modules[name]
        raise
    return module


def dropins(folder: Path) -> List[Path]:
    """The plugins in one folder: `.py` files and folders with an `__init__.py`; not `_*`."""
    if not folder.is_dir():
        return []
    found = [path for path in folder.iterdir() if not path.name.startswith(("_", "."))
             and ((path.suffix == ".py" and path.is_file()) or (path / "__init__.py").is_file())]
    return sorted(found, key=lambda path: path.name)


def _load_modules(dirs: Iterable[Path], problems: List[str]) -> List[Tuple[types.ModuleType, str, str]]:
    """(module, source, kind) for the built-ins, every drop-in and entry point that imports cleanly."""
    loaded = []
    for name in BUILTIN_MODULES:
        module = importlib.import_module(name)
        loaded.append((module, str(module.__file__), BUILTIN))
    # In a checkout the project's plugins/ folder is the built-ins' folder: one import each.
    builtin_files = {Path(str(module.__file__)).resolve() for module, _, _ in loaded}
    for folder in dirs:
        for path in dropins(folder):
            if path.resolve() in builtin_files:
                continue
            try:
                with calls.plugin_output(f"plugin {path.name}"):
                    loaded.append((_import_dropin(path), str(path), DROPIN))
            except (Exception, SystemExit) as exc:  # a plugin's bug must not stop the others
                problems.append(f"plugin {path} failed to import: {calls.exception_text(exc)}")
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = entry_point.dist
        source = f"package {dist.name} {dist.version}" if dist else f"entry point {entry_point.value}"
        try:
            with calls.plugin_output(f"plugin {source}"):
                loaded.append((entry_point.load(), source, PACKAGE))
        except (Exception, SystemExit) as exc:
            problems.append(f"plugin {source} ({entry_point.value}) failed to import: {calls.exception_text(exc)}")
    return loaded


def _unknown_hooks(module: types.ModuleType) -> List[str]:
    """Names marked @reducer.hookimpl that are not reducer hooks (a misspelling)."""
    marker = "reducer_impl"  # what pluggy.HookimplMarker("reducer") sets on a function
    return sorted(name for name in dir(module)
                  if hasattr(getattr(module, name, None), marker) and name not in HOOK_NAMES)


def _unmarked_hooks(module: types.ModuleType) -> List[str]:
    """reducer's hooks defined in the module without @reducer.hookimpl: pluggy would skip them
    silently, and the plugin's datasets would be 'unknown' with no word why."""
    marker = "reducer_impl"  # as in _unknown_hooks
    return [name for name in HOOK_NAMES
            if callable(getattr(module, name, None)) and not hasattr(getattr(module, name), marker)]


def load_registry(extra_dirs: Iterable[Any] = (), project_root: Optional[Path] = None) -> Registry:
    """Import every plugin and collect its datasets into a `Registry`."""
    registry = Registry()
    manager = pluggy.PluginManager("reducer")
    manager.add_hookspecs(hookspecs)
    kinds = {}
    for module, source, kind in _load_modules(plugin_dirs(extra_dirs, project_root), registry.broken):
        unmarked = _unmarked_hooks(module)
        if unmarked:
            registry.broken.append(f"plugin {source}: {', '.join(unmarked)} is not marked @reducer.hookimpl, so "
                                   f"reducer never calls it; put @reducer.hookimpl on the line above its def")
            continue
        unknown = _unknown_hooks(module)
        if unknown:
            registry.broken.append(f"plugin {source}: unknown hook {', '.join(map(repr, unknown))} marked "
                                   f"@reducer.hookimpl; reducer's hooks: {', '.join(HOOK_NAMES)}")
            continue
        try:
            manager.register(module, name=source)
        except Exception as exc:  # e.g. a hook taking an argument reducer does not pass
            registry.broken.append(f"plugin {source} is not a valid reducer plugin: {calls.exception_text(exc)}")
            if manager.has_plugin(source):
                manager.unregister(name=source)
            continue
        kinds[source] = kind
    # Each plugin's hook is called on its own so one failure names its plugin and skips it.
    for impl in manager.hook.register_datasets.get_hookimpls():
        source = impl.plugin_name
        found: List[Dataset] = []

        def register(dataset: Any, _found: List[Dataset] = found, _source: str = source) -> None:
            # Never raises into the plugin: one bad call skips that dataset, not the plugin's others.
            if isinstance(dataset, Dataset):
                _found.append(dataset)
            else:
                registry.broken.append(f"plugin {_source}: register() takes a reducer.Dataset, got "
                                       f"{type(dataset).__name__}; skipped")

        try:
            with calls.plugin_output(f"plugin {Path(source).name}"):
                impl.function(*[{"register": register}[name] for name in impl.argnames])
        except (Exception, SystemExit) as exc:
            good = sum(1 for dataset in found if not malformed(dataset))  # a malformed one is skipped below
            kept = f" (the {good} dataset(s) it registered before are kept)" if good else ""
            registry.broken.append(f"plugin {source} failed in register_datasets{calls.raised_at(exc, source)}: "
                                   f"{calls.exception_text(exc)}{kept}")
        for dataset in found:
            problem = malformed(dataset)
            if problem:
                line = f"plugin {source}: dataset {dataset.name!r} skipped: {problem}"
                name = str(dataset.name)
                registry.skipped[name] = f"{registry.skipped[name]}; {line}" if name in registry.skipped else line
                continue
            _add(registry, Registered(dataset, source, kinds.get(source, DROPIN)))
    return registry


# ---------------------------------------------------------------- checking a Dataset


def _column_name(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)  # as the frame has them: text, or 0, 1...


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _affine_part(value: Any) -> Optional[Tuple[float, ...]]:
    """One number or a list of numbers as a tuple of floats, or None when it is neither."""
    if _number(value):
        return (float(value),)
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__len__") or not hasattr(value, "__iter__"):
        return None
    parts = list(value)
    return tuple(float(v) for v in parts) if parts and all(_number(v) for v in parts) else None


def per_feature_width(normalize: Any) -> Optional[int]:
    """How many features a fixed (offset, scale) with per-feature lists is for; None when it has
    none (a method name, or two numbers, which suit any width)."""
    if not isinstance(normalize, (tuple, list)) or len(normalize) != 2:
        return None
    widths = [len(part) for part, given in zip(map(_affine_part, normalize), normalize)
              if part is not None and not _number(given)]
    return widths[0] if widths else None


def _normalize_problem(dataset: Dataset) -> Optional[str]:
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
    features = dataset.features
    if lists and features is None:
        return (f"normalize=(offset, scale) gives one number per feature ({lists[0]}), so features must name "
                f"those {lists[0]} columns in order")
    if lists and features is not None and len(features) != lists[0]:
        return (f"normalize=(offset, scale) gives {lists[0]} numbers per feature, but features names "
                f"{len(features)} columns; expected one number per feature")
    return None


def malformed(dataset: Dataset) -> Optional[str]:
    """What is wrong with a registered `Dataset`, in one line, or None when it keeps the contract
    (reducer/datasets/dataset.py)."""
    if not isinstance(dataset.name, str) or not dataset.name.strip():
        return f"name must be a non-empty string, got {dataset.name!r}"
    if not isinstance(dataset.description, str):
        return f"description must be a string, got {dataset.description!r}"
    if not callable(dataset.load):
        return f"load must be a function load(options) -> DataFrame, got {dataset.load!r}"
    for key in ("validate", "read_blocks", "header"):
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


def _add(registry: Registry, entry: Registered) -> None:
    name, source = entry.dataset.name, entry.source
    if name in registry.duplicates:
        registry.duplicates[name] += f" and {source}"
        return
    if name in registry.datasets and _same_file(registry.datasets[name].source, source):
        return  # the same plugin file in two folders (e.g. a second checkout's plugins/): one plugin
    if name in registry.datasets:
        first = registry.datasets[name]
        kinds = {first.kind, entry.kind}
        if kinds == {DROPIN, PACKAGE}:  # the documented rule: the drop-in beside the jobs wins
            dropin, package = (first, entry) if first.kind == DROPIN else (entry, first)
            registry.datasets[name] = dropin
            registry.notes.append(f"dataset {name!r}: using the drop-in {dropin.source}, not the one "
                                  f"{package.source} registers too (a drop-in wins over a package)")
            return
        del registry.datasets[name]
        registry.duplicates[name] = f"dataset {name!r} is registered twice: by {first.source} and {source}"
        return
    registry.datasets[name] = entry


def _same_file(first: str, second: str) -> bool:
    try:
        return Path(first).read_bytes() == Path(second).read_bytes()
    except OSError:  # "package NAME VERSION" sources are not files
        return False
