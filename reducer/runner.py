"""Running many jobs: validate them all up front, run each in isolation, summarise.

A bad job file, a failing plugin, bad data or a diverging model fails that job only; the
others still run and publish.
"""

import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from . import outputs
from .errors import JobError, PluginError, ReducerError
from .jobs import check_options, read_jobs
from .lock import run_lock
from .pipeline import Destination, run_job
from .plugins import load_registry

log = logging.getLogger("reducer")


@dataclass
class JobResult:
    name: str
    status: str  # "ok", "failed" (a user-facing reason) or "error" (a bug: traceback logged)
    seconds: float = 0.0
    final_loss: Optional[float] = None
    reason: str = ""
    manifest: Optional[dict] = None

    def summary(self):
        head = f"{self.name}: {self.status} in {self.seconds:.1f}s"
        if self.status == "ok":
            return f"{head}, final loss {self.final_loss:.6f}"
        return f"{head}: {self.reason}"


@dataclass
class Plan:
    """What `reducer check` reports and `reducer run` runs."""

    ready: list  # (job, dataset, source)
    failed: list  # JobResult
    registry: object


def plan(job_paths, plugin_dirs=(), project_root=None):
    """Read and check every job before any training starts."""
    jobs, errors = read_jobs(job_paths)
    if project_root is None and job_paths:
        project_root = Path(job_paths[0]).resolve().parent
        project_root = project_root.parent if project_root.name == "jobs" else project_root
    registry = load_registry(plugin_dirs, project_root)
    for problem in registry.problems:
        log.warning("%s", problem)
    failed = [JobResult(name, "failed", reason=message) for name, message in errors]
    ready = []
    for job in jobs:
        try:
            try:
                dataset = registry.get(job.dataset)
            except PluginError as exc:
                notes = "; ".join(registry.broken)
                raise JobError(f"{job.path}: dataset.name: {exc}" + (f" (note: {notes})" if notes else ""))
            check_options(job, dataset)
        except ReducerError as exc:
            failed.append(JobResult(job.name, "failed", reason=str(exc)))
            continue
        ready.append((job, dataset, registry.datasets[job.dataset].source))
    return Plan(ready, failed, registry)


def run_all(the_plan, outputs_root=None, models_root=None, wait=False):
    """Run every ready job under the outputs folder's lock; returns JobResults in job order."""
    results = list(the_plan.failed)
    for result in results:
        log.error("[%s] %s", result.name, result.reason)
    if not the_plan.ready:
        return results
    root = the_plan.ready[0][0].project_root
    destination = Destination(Path(outputs_root or root / "outputs"), Path(models_root or root / "Models"))
    try:
        outputs.ensure_writable_folder(destination.outputs_root)
        outputs.ensure_writable_folder(destination.models_root)
    except ReducerError as exc:
        return results + [JobResult(job.name, "failed", reason=str(exc)) for job, _, _ in the_plan.ready]
    with run_lock(destination.outputs_root, wait=wait):
        outputs.remove_stale_temporaries(destination.models_root)
        for job, _, _ in the_plan.ready:
            outputs.remove_stale_temporaries(destination.job_folder(job.name))
        for job, dataset, source in the_plan.ready:
            results.append(_run_one(job, dataset, source, destination))
    return results


def _run_one(job, dataset, source, destination):
    started = time.time()
    log.info("[%s] started (%s, dataset %s)", job.name, job.path, dataset.name)
    try:
        manifest = run_job(job, dataset, source, destination)
    except ReducerError as exc:
        result = JobResult(job.name, "failed", time.time() - started, reason=str(exc))
        log.error("[%s] failed: %s", job.name, exc)
        return result
    except Exception as exc:  # a bug: keep the traceback in the log, keep the other jobs going
        log.error("[%s] internal error:\n%s", job.name, traceback.format_exc().rstrip())
        return JobResult(job.name, "error", time.time() - started,
                         reason=f"internal error: {type(exc).__name__}: {exc}")
    result = JobResult(job.name, "ok", time.time() - started, manifest["training"]["final_loss"],
                       manifest=manifest)
    log.info("[%s] published to %s", job.name, destination.job_folder(job.name))
    return result
