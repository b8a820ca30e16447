"""The whole run, for the CLI and for Python alike (`reducer.run_jobs`): plan (read and check
every job before any training), lock the outputs folder, run each job in isolation, publish,
then write the report (outputs/index.html). Results come back in the order the job files were
given.

A bad job file, a failing plugin, bad data or a diverging model fails that job only; the
others still run and publish.
"""

import dataclasses
import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from reducer import __version__, files, project, publish
from reducer.config import job_for_dataset, project_root as project_root_of, read_jobs, real_path, usable_name
from reducer.datasets.registry import load_registry, missing_folders, plugin_dirs as plugin_folders
from reducer.engine import xla_cache
from reducer.errors import JobError, PluginError, ReducerError
from reducer.published import Status, StatusRecord
from reducer.run.execute import record_attempt, run_one
from reducer.run.lock import run_lock
from reducer.run.results import JobResult, one_line, utc_stamp

log = logging.getLogger("reducer")


@dataclass
class Plan:
    """What `reducer check` reports and `reducer run` runs."""

    ready: list  # (job, dataset, source)
    failed: list  # JobResult
    registry: object
    folders: tuple = ()  # every plugin folder scanned: worker processes load the same plugins
    order: dict = dataclasses.field(default_factory=dict)  # job name -> position of its job file as given

    def in_given_order(self, results: Sequence[JobResult]) -> list[JobResult]:
        """`results` in the order of the job files given (a name not known keeps its place last)."""
        return sorted(results, key=lambda result: self.order.get(result.name, len(self.order)))


def plan(job_paths: Sequence[Any], plugin_dirs: Sequence[Any] = (), project_root: Optional[Path] = None) -> Plan:
    """Read and check every job before any training starts."""
    jobs, errors = read_jobs(job_paths)
    order: dict[str, int] = {}
    positions = {real_path(path): k for k, path in enumerate(job_paths)}
    for job in jobs:
        order.setdefault(job.name, positions.get(job.path, len(job_paths)))
    for k, path in enumerate(job_paths):
        order.setdefault(Path(path).stem, k)
    if project_root is None and job_paths:
        project_root = project_root_of(job_paths[0])
    missing = missing_folders(plugin_dirs)
    if missing:
        raise PluginError(f"no such plugin folder: {', '.join(missing)}")
    registry = load_registry(plugin_dirs, project_root)
    for problem in registry.problems:  # once, at the top: each job's line stays one short line
        log.warning("%s", problem)
    for note in registry.notes:
        log.info("%s", note)
    failed = [JobResult(name, "failed", reason=one_line(message)) for name, message in errors]
    ready = []
    for job in jobs:
        try:
            try:
                dataset = registry.get(job.dataset)
            except PluginError as exc:
                raise JobError(f"{job.path}: dataset.name: {exc}") from None
            job = job_for_dataset(job, dataset)
        except ReducerError as exc:
            failed.append(JobResult(job.name, "failed", reason=one_line(exc)))
            continue
        ready.append((job, dataset, registry.datasets[job.dataset].source))
    return Plan(ready, failed, registry, tuple(plugin_folders(plugin_dirs, project_root)), order)


def run_all(the_plan: Plan, destination: publish.Destination, wait: bool = False, workers: int = 1,
            client: Any = None, compile_cache: bool = False, force: bool = False,
            retrain: bool = False) -> list[JobResult]:
    """Run every ready job under the outputs folder's lock.

    force: train even jobs whose published run is unchanged ([continuity] skip_unchanged).
    retrain: train every job cold, with fresh sizing, as a new baseline (aligned onto the
    published map).
    compile_cache: keep compiled training loops in the outputs folder between runs
    (xla_cache.py; only where this process or its worker processes have not started TensorFlow).

    Returns a JobResult per job: those that failed validation first, then the others in order.
    Raises LockedError when another run holds the lock and `wait` is false.
    """
    results = list(the_plan.failed)
    for result in results:
        log.error("[%s] %s", result.name, result.reason)
    if not the_plan.ready and not the_plan.failed:
        return results
    try:
        files.ensure_writable_folder(destination.outputs_root)
    except ReducerError as exc:  # before any training: no job could publish, nor record its attempt
        log.error("%s; no job was run, and no attempt could be recorded", exc)
        return results + [JobResult(job.name, "failed", reason=one_line(exc)) for job, _, _ in the_plan.ready]
    with run_lock(destination.outputs_root, wait=wait):
        try:
            publish.own_folder(destination.models_root)
        except ReducerError as exc:  # before any training: no job could publish; every attempt is recorded
            log.error("%s; no job was run", exc)
            unrun = [JobResult(job.name, "failed", reason=one_line(exc)) for job, _, _ in the_plan.ready]
            record_failures(destination, [*the_plan.failed, *unrun])
            return results + unrun
        names = [job.name for job, _, _ in the_plan.ready]
        # This run's jobs only (those that failed their checks too: tonight's broken export must not
        # leave last night's interrupted publication unmended); another job's folder (a link, a
        # damaged manifest) is none of its business.
        ours = names + [r.name for r in the_plan.failed if usable_name(r.name) and r.name not in names]
        stale = files.remove_stale_temporaries(destination.outputs_root, linked_ok=True)
        for folder in [destination.models_root, *(destination.job_folder(name) for name in ours)]:
            stale += files.remove_stale_temporaries(folder)
        if stale:
            log.info("removed %d temporary file(s) left by an interrupted run: %s", len(stale),
                     ", ".join(str(p) for p in stale))
        unrecovered = recover_published(destination, ours)
        record_failures(destination, the_plan.failed)
        ready = [entry for entry in the_plan.ready if entry[0].name not in unrecovered]
        unmended = [JobResult(name, "failed", reason=one_line(reason)) for name, reason in unrecovered.items()
                    if name in names]
        record_failures(destination, unmended)
        results += unmended
        the_plan = dataclasses.replace(the_plan, ready=ready)
        if workers > 1 or client is not None:  # worker processes, or a Dask cluster: executors.py
            from reducer.run.executors import run_parallel

            return results + run_parallel(the_plan, destination, workers, client, compile_cache, force, retrain)
        if compile_cache:
            xla_cache.enable(destination.outputs_root)
        for job, dataset, source in the_plan.ready:
            results.append(run_one(job, dataset, source, destination, force, retrain))
    return results


def record_failures(destination: publish.Destination, failed: list) -> None:
    """status.json and a history record for each job that failed before it could run (a job file
    that does not parse, a missing input, an unknown dataset, a folder that cannot be mended):
    every attempt is on disk, under the job's name, or its file's stem when the name cannot be
    read. A name that cannot name a folder (a control character, the report's index.html) has
    its one line in the summary only. Names that differ only in case (refused for it) are
    recorded once, in the folder one of them already has (else the first name's): a folder for
    each would be the very clash the refusal prevents."""
    attempted_at = publish.utc_now()
    chosen: dict[str, JobResult] = {}
    for result in sorted((r for r in failed if usable_name(r.name)), key=lambda r: r.name):
        key = result.name.casefold()
        if key not in chosen or (not destination.job_folder(chosen[key].name).is_dir()
                                 and destination.job_folder(result.name).is_dir()):
            chosen[key] = result
    for result in chosen.values():
        record_attempt(destination, result, attempted_at)


def recover_published(destination: publish.Destination, names: list) -> dict[str, str]:
    """Mend the published folders of the jobs `names` after a crash (publish.recover), before
    anything runs; no other folder is touched. Returns {job name: reason} for folders that
    could not be mended; their jobs do not run."""
    failed = {}
    for name in names:
        folder = destination.job_folder(name)
        try:
            for line in publish.recover(destination, name):
                log.warning("[%s] %s (a run was interrupted while publishing)", name, line)
        except (ReducerError, OSError) as exc:
            reason = str(exc) if isinstance(exc, ReducerError) else f"cannot mend {folder}: {exc.strerror or exc}"
            log.error("[%s] %s", name, reason)
            failed[name] = reason
    return failed


# ---------------------------------------------------------------- the library API


def check_jobs(job_paths: Sequence[Any], plugin_dirs: Sequence[Any] = (), data: bool = False) -> list[JobResult]:
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
                rows, columns, doing = storage.validate(job, dataset, source)
            except ReducerError as exc:
                results.append(JobResult(job.name, "invalid", reason=one_line(exc)))
                continue
            except Exception as exc:  # a bug: its traceback in the log, the other jobs still checked
                log.error("[%s] internal error checking the rows:\n%s", job.name, traceback.format_exc().rstrip())
                results.append(JobResult(job.name, "invalid", reason=one_line(
                    f"internal error: {type(exc).__name__}: {exc}")))
                continue
            note += f"; {rows} rows x {columns} columns read and checked; the run will make {doing}"
        else:
            try:  # the header's columns, as run would find them (the rows are --data's)
                storage.check_header(job, dataset, source)
            except ReducerError as exc:
                results.append(JobResult(job.name, "invalid", reason=one_line(exc)))
                continue
        results.append(JobResult(job.name, "ok", note=note))
    return results + [JobResult(result.name, "invalid", reason=result.reason) for result in the_plan.failed]


class RunResults(list):
    """What `run_jobs` returns: a JobResult per job, in the order the job files were given (a
    list, as always), with where the run wrote and how its report went."""

    def __init__(self, results: Sequence[JobResult], outputs: Path, report: Optional[Path] = None,
                 report_bug: bool = False) -> None:
        super().__init__(results)
        self.outputs = outputs  # the outputs folder (absolute)
        self.report = report  # outputs/index.html when it was written
        self.report_bug = report_bug  # a bug stopped the report (its traceback is in the log)


def destination_for(job_paths: Sequence[Any], outputs: Any = None, models: Any = None) -> publish.Destination:
    """Where a run of these job files publishes: the one decision (reducer/project.py)."""
    return publish.Destination(project.outputs_root(outputs, job_paths), project.models_root(models, job_paths))


def run_jobs(job_paths: Sequence[Any], outputs: Any = None, models: Any = None, plugin_dirs: Sequence[Any] = (),
             wait: bool = False, workers: int = 1, scheduler: Any = None, force: bool = False,
             retrain: bool = False, report: bool = True) -> RunResults:
    """Run job files as `reducer run` does: plan, lock, train, publish, then write the report
    (outputs/index.html and each job's map.html; report=False leaves it). Returns a JobResult per
    job (status "ok", "unchanged", "rejected", "failed" or "error"), in the order the job files
    were given. outputs, models: folders (default: the first job file's project's outputs/ and
    Models/); scheduler: a Dask scheduler's address, or a distributed.Client; force: train
    unchanged jobs too (warm); retrain: train cold, freshly sized, as a new baseline. Raises
    LockedError when another run holds the outputs folder and `wait` is false, SchedulerError when the scheduler cannot be reached."""
    paths = [Path(p) for p in job_paths]
    if not paths:
        return RunResults([], project.outputs_root(outputs))
    destination = destination_for(paths, outputs, models)
    client, own_client = scheduler, False
    if isinstance(scheduler, str):
        from reducer.run.executors import connect

        client, own_client = connect(scheduler), True
    log.info("reducer %s: run started %s, %d job file(s), outputs %s", __version__, utc_stamp(), len(paths),
             destination.outputs_root)
    the_plan = plan(paths, plugin_dirs)
    try:
        results = the_plan.in_given_order(run_all(the_plan, destination, wait=wait, workers=workers, client=client,
                                                  compile_cache=True, force=force,
                                                  retrain=retrain))
    finally:
        if own_client:
            client.close()
    if not report:
        return RunResults(results, destination.outputs_root)
    written, bug = write_report(destination.outputs_root, results)
    return RunResults(results, destination.outputs_root, written, bug)


def write_report(outputs: Path, results: Sequence[JobResult]) -> tuple[Optional[Path], bool]:
    """Rewrite the report at the end of a run: (its path or None, True when a bug stopped it).
    A folder that cannot be written is one error line: the jobs' own outputs are published all
    the same; a job whose records cannot be read is one unreadable card (report.py)."""
    from reducer import report

    if not Path(outputs).is_dir():  # no job got as far as the outputs folder: nothing to show
        return None, False
    unplaced = [StatusRecord(job=r.name, status=Status.FAILED if r.status == "error" else Status(r.status),
                             reason=r.reason or None, attempted_at=r.finished_at)
                for r in results if not (Path(outputs) / r.name).is_dir()]
    try:
        written = report.build(outputs, unplaced=unplaced)
    except (ReducerError, OSError) as exc:
        log.error("could not write the report in %s: %s", outputs, exc)
        return None, False
    except Exception:
        log.critical("internal error writing the report (a bug in reducer, please report it):\n%s",
                     traceback.format_exc().rstrip())
        return None, True
    log.info("report: %s (%d job(s), %d map page(s) rewritten)", written.path, written.jobs, written.maps_written)
    return written.path, False
