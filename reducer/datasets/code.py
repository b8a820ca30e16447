"""What a plugin's code is, as one digest: a changed plugin reads its rows again and trains again.

A plugin's `source` (registry.Registered.source) names where its code lives: a drop-in file
(its `_`-prefixed helper files beside it count too: they are the drop-in's helpers), a folder
plugin (every file under the folder), or an installed package ("package NAME VERSION": its
name, version and the content of its installed files, so that an edit to an installed file is
seen even when the version stays). The digest goes into the float32 cache's key
(tables/cache.py) and the published run's fingerprint (continuity.py).
"""

import hashlib
import importlib.util
from importlib import metadata
from pathlib import Path
from typing import Iterable, Optional

PACKAGE_PREFIX = "package "
SKIPPED_SUFFIXES = (".pyc", ".pyo")


def _folder_files(folder: Path) -> list:
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix not in SKIPPED_SUFFIXES)


def _digest_files(files: Iterable[Path], root: Optional[Path], digest: "hashlib._Hash") -> None:
    for path in files:
        name = str(path.relative_to(root)) if root is not None else path.name
        try:
            content = path.read_bytes()
        except OSError:
            content = b"(unreadable)"
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())


def _package_files(name: str) -> list:
    """The installed files of distribution `name`, and the files of the modules its reducer entry
    points name (an editable install lists only a .pth file: its code is in its source tree)."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return []
    found = set()
    for item in dist.files or ():
        path = Path(str(dist.locate_file(item)))
        if path.is_file() and path.suffix not in SKIPPED_SUFFIXES and ".dist-info" not in str(item):
            found.add(path)
    for entry_point in dist.entry_points:
        if entry_point.group != "reducer":
            continue
        top = entry_point.value.split(":")[0].strip().split(".")[0]
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.origin:
            continue
        origin = Path(spec.origin)
        found.update(_folder_files(origin.parent) if spec.submodule_search_locations else [origin])
    return sorted(found)


def code_digest(source: Optional[str]) -> str:
    """"sha256:..." of the plugin's code named by `source`; the source itself when nothing there
    can be read (an entry point whose package metadata is gone)."""
    if not source:
        return ""
    digest = hashlib.sha256()
    if source.startswith(PACKAGE_PREFIX):
        parts = source[len(PACKAGE_PREFIX):].split(" ")
        files = _package_files(parts[0])
        digest.update(source.encode() + b"\0")
        _digest_files(files, None, digest)
        return "sha256:" + digest.hexdigest() if files else source
    path = Path(source)
    if path.is_dir():
        _digest_files(_folder_files(path), path, digest)
    elif path.is_file():
        helpers = [p for p in sorted(path.parent.glob("_*.py")) if p.name != "__init__.py" and p != path]
        if not helpers:  # the file alone: the digest published runs of one-file plugins already hold
            return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
        _digest_files([path, *helpers], path.parent, digest)
    else:
        return source
    return "sha256:" + digest.hexdigest()
