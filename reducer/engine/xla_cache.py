"""Compiled training loops kept between runs, so that tonight's run of a job does not spend 2-3 s
compiling what last night's run compiled: TensorFlow's persistent XLA cache
(`--tf_xla_persistent_cache_directory`), made safe to share.

Where: <outputs>/.cache/.xla/<machine key>/ (a job name cannot start with a dot, so no
streaming job's data cache, <outputs>/.cache/<job>/, can take the folder). TensorFlow names an
entry by its program alone, so the machine key hashes what else an executable depends on
(TensorFlow's version, the user's XLA_FLAGS, the CPU's model and instruction sets): an outputs
folder shared between machines must not hand an AVX-512 executable to a CPU without it.

Why the private folders: TensorFlow fails a training call outright when it cannot read an
entry, cannot use one that reads fine, or cannot write one, so it never sees the shared
folder. Each process gets a private folder of hard links to the shared entries; TensorFlow
writes new entries there; `publish` checks each new one is whole and links it into the shared
folder (never overwriting). Entries found cut off are removed before TensorFlow sees them; when
TensorFlow fails on a cached program anyway, runner.py drops the cached programs and runs the
job again (`unusable_cached_program`, `drop_cached_programs`). A killed process leaves only its
private folder, which the next run removes.

Must be enabled before TensorFlow is imported (it reads TF_XLA_FLAGS then). REDUCER_XLA_CACHE=0
turns it off. REDUCER_XLA_CACHE_DIR=FOLDER keeps the shared folders in FOLDER/.xla/<machine key>/
for every outputs folder (many projects on one machine; the test suite's runs share one; only
FOLDER/.xla/ is ever pruned). Nothing here may fail a job: on any file system trouble the run
goes on uncached.
"""

import atexit
import contextlib
import fcntl
import hashlib
import logging
import os
import platform
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Optional, Union

if TYPE_CHECKING:
    from reducer.errors import OutputError

log = logging.getLogger("reducer")

ENV_SWITCH = "REDUCER_XLA_CACHE"
ENV_FOLDER = "REDUCER_XLA_CACHE_DIR"  # <it>/.xla instead of <outputs>/.cache/.xla, for every outputs folder
FOLDER = ".xla"
CACHE_FLAG = "--tf_xla_persistent_cache_directory"
SUFFIX = ".pb"
PRIVATE_PREFIX = "private-"
MAKING_PREFIX = ".making-"
# tf_setup.py's defaults, exactly: the same flag with another value is the user's, and counts.
REDUCER_XLA_FLAGS = ("--xla_cpu_multi_thread_eigen=false", "--xla_cpu_experimental_ynn_fusion_type=")
MIN_FREE_BYTES = 64 * 2**20  # room for entries (~0.3 MB each) with a wide margin
KEEP_ENTRIES = 200  # newest by publication; one job needs one or two
UNUSED_KEY_S = 30 * 86400  # a machine key's folder changes each run that uses it
STALE_AFTER_S = 60  # a half-made private folder this old belongs to a dead process

_state: dict[str, Any] = {"private": None, "shared": None, "lock_fd": None, "handled": set(), "linked": set()}


def machine_key() -> str:
    """What an executable depends on besides its program, hashed."""
    import importlib.metadata

    # XLA_FLAGS as the user set it: without the defaults tf_setup adds (a process that imported
    # it passes them on to its children), with the switch that turns them off.
    user_flags = [flag for flag in os.environ.get("XLA_FLAGS", "").split() if flag not in REDUCER_XLA_FLAGS]
    parts = [platform.machine(), platform.system(), " ".join(user_flags),
             os.environ.get("REDUCER_XLA_DEFAULTS", "1")]
    for name in ("tensorflow", "tensorflow-cpu"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            parts.append(f"{name} {importlib.metadata.version(name)}")
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(("model name", "flags", "Features")):
                    parts.append(line.strip())
                if not line.strip():  # the first processor describes them all
                    break
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def enable(outputs_root: Union[str, Path]) -> Optional[Path]:
    """Point TensorFlow at a private cache folder under `outputs_root`; returns it, or None when
    the cache stays off (switched off, TensorFlow already imported, the user's own cache flag,
    or the folder cannot be used). Once per process: later calls return the first folder."""
    if _state["private"] is not None:
        return _state["private"]
    if os.environ.get(ENV_SWITCH, "1") == "0" or "tensorflow" in sys.modules:
        return None
    if CACHE_FLAG in os.environ.get("TF_XLA_FLAGS", ""):
        return None  # the user runs TensorFlow's cache their own way
    shared = Path(os.environ.get(ENV_FOLDER) or Path(outputs_root) / ".cache") / FOLDER / machine_key()
    try:
        private = _make_private_folder(shared)
    except OSError as exc:
        log.warning("compiled-code cache off for this run: cannot use %s: %s", shared, exc.strerror or exc)
        close()
        return None
    os.environ["TF_XLA_FLAGS"] = f"{os.environ.get('TF_XLA_FLAGS', '')} {CACHE_FLAG}={private}".strip()
    # Every cache hit makes TensorFlow log "E... Error parsing text-format ..." (it tries the text
    # format first); only fatal C++ messages then. Errors still reach the log as exceptions.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return private


def _make_private_folder(shared: Path) -> Optional[Path]:
    shared.mkdir(parents=True, exist_ok=True)
    free = os.statvfs(shared)
    if free.f_bavail * free.f_frsize < MIN_FREE_BYTES:  # TensorFlow fails the training call on ENOSPC
        raise OSError(f"less than {MIN_FREE_BYTES // 2**20} MiB free")
    _remove_stale_private_folders(shared)
    for other in shared.parent.iterdir():  # another TensorFlow or CPU, not seen for a month
        with contextlib.suppress(OSError):
            if other != shared and other.is_dir() and time.time() - other.stat().st_mtime > UNUSED_KEY_S:
                shutil.rmtree(other, ignore_errors=True)
    # Made under a temporary name and renamed once locked: a `private-` folder whose lock is
    # free belongs to a dead process, whatever its age.
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    making = shared / f"{MAKING_PREFIX}{token}"
    making.mkdir()
    fd = os.open(making / "owner.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)  # held while this process lives; the kernel frees it on death
    private = shared / f"{PRIVATE_PREFIX}{token}"
    os.rename(making, private)
    _state.update(private=private, shared=shared, lock_fd=fd)
    atexit.register(close)
    for entry in sorted(shared.glob("*" + SUFFIX)):
        if not entry.is_file():
            continue
        if not is_whole_entry(entry):
            log.warning("removed a damaged compiled-code cache entry: %s", entry)
            with contextlib.suppress(OSError):
                entry.unlink()
            continue
        try:
            os.link(entry, private / entry.name)
        except FileNotFoundError:  # pruned by another run meanwhile
            continue
        except OSError:  # no hard links here (or not allowed to this user): a copy
            shutil.copyfile(entry, private / entry.name)
        _state["linked"].add(entry.name)
    return private


def _remove_stale_private_folders(shared: Path) -> None:
    for folder in shared.glob(MAKING_PREFIX + "*"):  # a process killed in the instant before its rename
        with contextlib.suppress(OSError):
            if time.time() - folder.stat().st_mtime > STALE_AFTER_S:
                shutil.rmtree(folder, ignore_errors=True)
    for folder in shared.glob(PRIVATE_PREFIX + "*"):
        try:
            fd = os.open(folder / "owner.lock", os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # its process is alive
        finally:
            os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)
        log.info("removed %s, left by a killed run", folder)


def unusable_cached_program(exc: BaseException) -> bool:
    """Whether `exc` may be TensorFlow failing on a cached program that looked whole but was not
    usable (damaged inside, or another program's entry under this name): any TensorFlow error
    while programs were loaded from the cache, other than a failed write (explain)."""
    return (_state["private"] is not None and bool(_state["linked"])
            and type(exc).__module__.startswith("tensorflow") and explain(exc) is None)


def drop_cached_programs() -> int:
    """Remove every shared entry this process loaded (TensorFlow does not say which one it
    failed on) so that they are compiled and cached afresh; returns how many. Tonight's
    retry compiles under a new name anyway: TensorFlow names programs by a per-process count."""
    private, shared = _state["private"], _state["shared"]
    removed = 0
    for name in sorted(_state["linked"]):
        for path in (shared / name, private / name):
            with contextlib.suppress(OSError):
                path.unlink()
                removed += path.parent == shared
    _state["linked"].clear()
    return removed


def explain(exc: BaseException) -> "Optional[OutputError]":
    """A one-line OutputError for TensorFlow's failure to write a cache entry (a full disk,
    say), or None when `exc` is something else."""
    from reducer.errors import OutputError

    private = _state["private"]
    text = str(exc)
    if private is None or str(private) not in text:
        return None
    reason = text.split(";")[-1].split("[Op:")[0].strip() or type(exc).__name__
    return OutputError(f"cannot write the compiled-code cache in {_state['shared']}: {reason}; "
                       f"nothing published, the previous outputs are untouched "
                       f"(REDUCER_XLA_CACHE=0 runs without the cache)")


def publish() -> int:
    """Move the programs TensorFlow compiled in this process since the last call into the shared
    folder; returns how many it compiled (0: everything came from the cache, or the cache is
    off). Called after each job: an entry is complete once the call that compiled it returned."""
    private, shared = _state["private"], _state["shared"]
    if private is None:
        return 0
    compiled = 0
    try:
        for entry in sorted(private.glob("*" + SUFFIX)):
            if entry.name in _state["linked"] or entry.name in _state["handled"]:
                continue  # from the shared folder, or counted after an earlier job
            _state["handled"].add(entry.name)
            compiled += 1
            if (shared / entry.name).exists() or not is_whole_entry(entry):
                continue  # published by another process meanwhile, or cut off
            try:
                os.link(entry, shared / entry.name)
            except FileExistsError:
                continue
            except OSError:  # no hard links here: copy, then rename into place
                temp = shared / f".{entry.name}.{uuid.uuid4().hex[:8]}.tmp"
                shutil.copyfile(entry, temp)
                os.replace(temp, shared / entry.name)
        if compiled:
            _prune(shared)
    except OSError as exc:
        log.warning("compiled-code cache: could not publish into %s: %s", shared, exc.strerror or exc)
    return compiled


def shared_folder() -> Optional[Path]:
    """The shared folder in use in this process, or None when the cache is off."""
    return _state["shared"]


def _prune(shared: Path) -> None:
    entries = sorted(shared.glob("*" + SUFFIX), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP_ENTRIES:]:
        with contextlib.suppress(OSError):
            old.unlink()


def close() -> None:
    """Remove this process's private folder (the shared entries stay)."""
    private, fd = _state["private"], _state["lock_fd"]
    if private is None:
        return
    shutil.rmtree(private, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.close(fd)
    _state.update(private=None, shared=None, lock_fd=None)


def is_whole_entry(path: Union[str, Path]) -> bool:
    """Whether `path` holds a complete serialized entry: its top-level protobuf fields (1 key,
    2 program, 3 executable) end exactly at the end of the file, the executable not empty.
    Reads a few bytes per field, not the file: a cut-off file is caught by its lengths."""
    try:
        size = os.path.getsize(path)
        fields = {}
        with open(path, "rb") as f:
            while f.tell() < size:
                tag = _varint(f)
                number, wire_type = tag >> 3, tag & 7
                if wire_type != 2:  # the entry's fields are all length-delimited
                    return False
                length = _varint(f)
                fields[number] = length
                f.seek(length, os.SEEK_CUR)
                if f.tell() > size:
                    return False
        return {1, 2, 3} <= set(fields) and fields[3] > 0
    except (OSError, ValueError):
        return False


def _varint(f: BinaryIO) -> int:
    value, shift = 0, 0
    while True:
        byte = f.read(1)
        if not byte or shift > 63:
            raise ValueError("cut off")
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
