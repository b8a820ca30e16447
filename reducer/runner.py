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

from . import outputs, xla_cache
from .errors import JobError, PluginError, ReducerError
from .jobs import check_options, read_jobs
from .lock import run_lock
from .pipeline import Destination, run_job
from .plugins import load_registry, plugin_dirs as plugin_folders

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
        """One line: name, status, seconds, then the final loss or the reason it failed."""
        head = f"{self.name}: {self.status} in {self.seconds:.1f}s"
        if self.status == "ok":
            quality = quality_text((self.manifest or {}).get("quality"))
            return f"{head}, final loss {self.final_loss:.6f}{quality}"
        return f"{head}: {one_line(self.reason)}"


def quality_text(quality):
    """', trustworthiness 0.983, kNN accuracy 0.981' from a manifest's quality section (issue 5)."""
    if not quality or quality.get("trustworthiness_5") is None:
        return ""
    text = f", trustworthiness {quality['trustworthiness_5']:.3f}"
    if quality.get("knn_accuracy") is not None:
        text += f", kNN accuracy {quality['knn_accuracy']:.3f}"
    return text


def one_line(text):
    """Messages from libraries (pandas, Keras) sometimes span lines; a summary line must not."""
    return " ".join(str(text).split())


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
        project_root = Path(job_paths[0]).resolve().parent
        project_root = project_root.parent if project_root.name == "jobs" else project_root
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
            check_options(job, dataset)
        except ReducerError as exc:
            failed.append(JobResult(job.name, "failed", reason=one_line(exc)))
            continue
        ready.append((job, dataset, registry.datasets[job.dataset].source))
    return Plan(ready, failed, registry, tuple(plugin_folders(plugin_dirs, project_root)))


def run_all(the_plan, outputs_root=None, models_root=None, wait=False, workers=1, client=None,
            compile_cache=False):
    """Run every ready job under the outputs folder's lock.

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
    destination = Destination(Path(outputs_root or root / "outputs").absolute(),
                              Path(models_root or root / "Models").absolute())
    try:
        outputs.ensure_writable_folder(destination.outputs_root)
        outputs.ensure_writable_folder(destination.models_root)
    except ReducerError as exc:  # before any training: no job could publish
        log.error("%s; no job was run", exc)
        return results + [JobResult(job.name, "failed", reason=one_line(exc)) for job, _, _ in the_plan.ready]
    with run_lock(destination.outputs_root, wait=wait):
        folders = [destination.outputs_root, destination.models_root]
        stale = [path for folder in folders + [destination.job_folder(job.name) for job, _, _ in the_plan.ready]
                 for path in outputs.remove_stale_temporaries(folder)]
        if stale:
            log.info("removed %d temporary file(s) left by an interrupted run: %s", len(stale),
                     ", ".join(str(p) for p in stale))
        if workers > 1 or client is not None:  # worker processes, or a Dask cluster: parallel.py
            from .parallel import run_parallel

            return results + run_parallel(the_plan, destination, workers, client, compile_cache)
        if compile_cache:
            xla_cache.enable(destination.outputs_root)
        for job, dataset, source in the_plan.ready:
            results.append(_run_one(job, dataset, source, destination))
    return results


def run_job_despite_the_cache(job, dataset, source, destination):
    """run_job, trained again once after dropping the cached programs when TensorFlow failed on
    one of them (it does not say which); a cache write that failed becomes one line. See
    xla_cache.py: TensorFlow's own cache fails the training call in both cases."""
    for attempt in (1, 2):
        try:
            return run_job(job, dataset, source, destination)
        except Exception as exc:
            cache_error = xla_cache.explain(exc)
            if cache_error is not None:
                raise cache_error from exc
            if attempt == 2 or not xla_cache.unusable_cached_program(exc):
                raise
            removed = xla_cache.drop_cached_programs()
            reason = (str(exc).splitlines() or [""])[0][:200]
            log.warning("[%s] TensorFlow could not use a cached compiled program (%s: %s); removed %d cached "
                        "program(s), training again", job.name, type(exc).__name__, reason, removed)


def _run_one(job, dataset, source, destination):
    started = time.time()
    log.info("[%s] started (%s, dataset %s)", job.name, job.path, dataset.name)
    try:
        outputs.check_folder(destination.job_folder(job.name))  # before training, not after
        try:
            manifest = run_job_despite_the_cache(job, dataset, source, destination)
        finally:
            compiled = xla_cache.publish()  # for the next run; 0 when the cache is off
            if compiled:
                log.info("[%s] compiled %d program(s); cached in %s for the next run", job.name, compiled,
                         xla_cache.shared_folder())
    except ReducerError as exc:
        result = JobResult(job.name, "failed", time.time() - started, reason=one_line(exc))
        log.error("[%s] failed, nothing published (previous outputs kept): %s", job.name, result.reason)
        return result
    except Exception as exc:  # a bug: keep the traceback in the log, keep the other jobs going
        log.error("[%s] internal error, nothing published:\n%s", job.name, traceback.format_exc().rstrip())
        return JobResult(job.name, "error", time.time() - started,
                         reason=one_line(f"internal error: {type(exc).__name__}: {exc}"))
    result = JobResult(job.name, "ok", time.time() - started, manifest["training"]["final_loss"],
                       manifest=manifest)
    log.info("[%s] published to %s", job.name, destination.job_folder(job.name))
    return result
