"""Running many jobs: validate them all up front, run each in isolation, summarise.

A bad job file, a failing plugin, bad data or a diverging model fails that job only; the
others still run and publish.
"""

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from reducer import files, publish
from reducer.config import job_for_dataset, project_root as project_root_of, read_jobs
from reducer.datasets.registry import load_registry, plugin_dirs as plugin_folders
from reducer.engine import xla_cache
from reducer.errors import JobError, PluginError, ReducerError
from reducer.run.execute import run_one
from reducer.run.lock import run_lock
from reducer.run.results import JobResult, one_line

log = logging.getLogger("reducer")


@dataclass
class Plan:
    """What `reducer check` reports and `reducer run` runs."""

    ready: list  # (job, dataset, source)
    failed: list  # JobResult
    registry: object
    folders: tuple = ()  # every plugin folder scanned: worker processes load the same plugins


def plan(job_paths, plugin_dirs=(), project_root=None):
    """Read and check every job before any training starts."""
    jobs, errors = read_jobs(job_paths)
    if project_root is None and job_paths:
        project_root = project_root_of(job_paths[0])
    registry = load_registry(plugin_dirs, project_root)
    for problem in registry.problems:
        log.warning("%s", problem)
    failed = [JobResult(name, "failed", reason=one_line(message)) for name, message in errors]
    ready = []
    for job in jobs:
        try:
            try:
                dataset = registry.get(job.dataset)
            except PluginError as exc:
                notes = "; ".join(registry.broken)
                raise JobError(f"{job.path}: dataset.name: {exc}" + (f" (note: {notes})" if notes else ""))
            job = job_for_dataset(job, dataset)
        except ReducerError as exc:
            failed.append(JobResult(job.name, "failed", reason=one_line(exc)))
            continue
        ready.append((job, dataset, registry.datasets[job.dataset].source))
    return Plan(ready, failed, registry, tuple(plugin_folders(plugin_dirs, project_root)))


def run_all(the_plan, outputs_root=None, models_root=None, wait=False, workers=1, client=None,
            compile_cache=False, force=False):
    """Run every ready job under the outputs folder's lock.

    force: train even jobs whose published run is unchanged ([continuity] skip_unchanged).
    compile_cache: keep compiled training loops in the outputs folder between runs
    (xla_cache.py; only where this process or its worker processes have not started TensorFlow).

    Returns a JobResult per job: those that failed validation first, then the others in order.
    Raises LockedError when another run holds the lock and `wait` is false.
    """
    results = list(the_plan.failed)
    for result in results:
        log.error("[%s] %s", result.name, result.reason)
    if not the_plan.ready:
        return results
    root = the_plan.ready[0][0].project_root
    # Absolute, so that log lines and manifests name the folders whatever the current directory.
    destination = publish.Destination(Path(outputs_root or root / "outputs").absolute(),
                                      Path(models_root or root / "Models").absolute())
    try:
        files.ensure_writable_folder(destination.outputs_root)
        files.ensure_writable_folder(destination.models_root)
    except ReducerError as exc:  # before any training: no job could publish
        log.error("%s; no job was run", exc)
        return results + [JobResult(job.name, "failed", reason=one_line(exc)) for job, _, _ in the_plan.ready]
    with run_lock(destination.outputs_root, wait=wait):
        root = Path(destination.outputs_root)
        folders = [root, destination.models_root, *sorted(p for p in root.iterdir()
                                                           if p.is_dir() and not p.name.startswith("."))]
        stale = [path for folder in folders for path in files.remove_stale_temporaries(folder)]
        if stale:
            log.info("removed %d temporary file(s) left by an interrupted run: %s", len(stale),
                     ", ".join(str(p) for p in stale))
        unrecovered = recover_published(destination)
        ready = [entry for entry in the_plan.ready if entry[0].name not in unrecovered]
        results += [JobResult(name, "failed", reason=one_line(reason)) for name, reason in unrecovered.items()
                    if any(job.name == name for job, _, _ in the_plan.ready)]
        the_plan = dataclasses.replace(the_plan, ready=ready)
        if workers > 1 or client is not None:  # worker processes, or a Dask cluster: executors.py
            from reducer.run.executors import run_parallel

            return results + run_parallel(the_plan, destination, workers, client, compile_cache, force)
        if compile_cache:
            xla_cache.enable(destination.outputs_root)
        for job, dataset, source in the_plan.ready:
            results.append(run_one(job, dataset, source, destination, force))
    return results




def recover_published(destination):
    """Mend every published job folder after a crash (publish.recover), before anything runs.
    Returns {job name: reason} for folders that could not be mended; their jobs do not run."""
    failed = {}
    root = Path(destination.outputs_root)
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            for line in publish.recover(destination, folder.name):
                log.warning("[%s] %s (a run was interrupted while publishing)", folder.name, line)
        except (ReducerError, OSError) as exc:
            reason = str(exc) if isinstance(exc, ReducerError) else f"cannot mend {folder}: {exc.strerror or exc}"
            log.error("[%s] %s", folder.name, reason)
            failed[folder.name] = reason
    return failed


# ---------------------------------------------------------------- the library API


def check_jobs(job_paths, plugin_dirs=(), data=False):
    """Check job files as `reducer check` does: a JobResult per job, status "ok" (with a note
    naming the file and dataset) or "invalid" (the one-line reason). data=True also reads and
    checks every row of every job's input, as `reducer run` would before training."""
    from reducer.tables import storage

    the_plan = plan([Path(p) for p in job_paths], plugin_dirs)
    results = []
    for job, dataset, source in the_plan.ready:
        note = f"{job.path}, dataset {dataset.name} from {source}"
        if data:
            try:
                rows, columns = storage.validate(job, dataset, source)
            except ReducerError as exc:
                results.append(JobResult(job.name, "invalid", reason=one_line(exc)))
                continue
            note += f"; {rows} rows x {columns} columns read and checked"
        else:
            try:  # the header's columns, as run would find them (the rows are --data's)
                storage.check_header(job, dataset, source)
            except ReducerError as exc:
                results.append(JobResult(job.name, "invalid", reason=one_line(exc)))
                continue
        results.append(JobResult(job.name, "ok", note=note))
    return results + [JobResult(result.name, "invalid", reason=result.reason) for result in the_plan.failed]


def run_jobs(job_paths, outputs=None, models=None, plugin_dirs=(), wait=False, workers=1, scheduler=None,
             force=False):
    """Run job files as `reducer run` does and return a JobResult per job (status "ok",
    "unchanged", "rejected", "failed" or "error"). outputs, models: folders (default: the
    project's outputs/ and Models/); scheduler: a Dask scheduler's address, or a
    distributed.Client; force: retrain unchanged jobs too. Raises LockedError when another run
    holds the outputs folder and `wait` is false."""
    client, own_client = scheduler, False
    if isinstance(scheduler, str):
        from reducer.run.executors import connect

        client, own_client = connect(scheduler), True
    try:
        return run_all(plan([Path(p) for p in job_paths], plugin_dirs), outputs, models, wait=wait,
                       workers=workers, client=client, compile_cache=True, force=force)
    finally:
        if own_client:
            client.close()
