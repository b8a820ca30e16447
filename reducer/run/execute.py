"""One job in isolation: whatever goes wrong in it becomes its `JobResult`, never the run's end."""

from __future__ import annotations

import logging
import time
import traceback
from typing import TYPE_CHECKING, Any, Optional

from reducer import files, publish, published, stopping
from reducer.engine import xla_cache
from reducer.errors import HistoryRecordError, PublishedRecordError, ReducerError
from reducer.log import job_context
from reducer.run.pipeline import Outcome, run_job
from reducer.run.results import JobResult, one_line

if TYPE_CHECKING:
    from reducer.config import Job
    from reducer.datasets.dataset import Dataset

log = logging.getLogger("reducer")


def run_job_despite_the_cache(job: Job, dataset: Dataset, source: Optional[str], destination: publish.Destination,
                              force: bool = False, retrain: bool = False) -> Outcome:
    """run_job, trained again once after dropping the cached programs when TensorFlow failed on
    one of them (it does not say which); a cache write that failed becomes one line. See
    xla_cache.py: TensorFlow's own cache fails the training call in both cases."""
    for attempt in (1, 2):
        try:
            return run_job(job, dataset, source, destination, force=force, retrain=retrain)
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
    raise AssertionError("unreachable: the second attempt returns or raises")


def run_one(job: Job, dataset: Dataset, source: Optional[str], destination: publish.Destination,
            force: bool = False, retrain: bool = False) -> JobResult:
    """Run one job in isolation: its failure, whatever it is, becomes its JobResult, and every
    attempt ends with outputs/<job>/status.json saying how it went."""
    started, attempted_at = time.time(), publish.utc_now()
    log.info("[%s] started (%s, dataset %s)", job.name, job.path, dataset.name)
    try:
        publish.check_job_folders(destination, job.name)  # before training, not after
        try:
            with job_context(job.name):  # warnings from inside the table say which job they are about
                outcome = run_job_despite_the_cache(job, dataset, source, destination, force, retrain)
        finally:
            compiled = xla_cache.publish()  # for the next run; 0 when the cache is off
            if compiled:
                log.info("[%s] compiled %d program(s); cached in %s for the next run", job.name, compiled,
                         xla_cache.shared_folder())
    except (stopping.Terminated, KeyboardInterrupt) as stop:  # the run stops; this attempt is still recorded
        stopped = "terminated by SIGTERM" if isinstance(stop, stopping.Terminated) else "interrupted"
        result = JobResult(job.name, "failed", time.time() - started, reason=f"{stopped} while it ran; nothing published")
        log.error("[%s] %s", job.name, result.reason)
        with stopping.held():  # a second signal waits until the record is written
            record_attempt(destination, result, attempted_at, files.mode_for(job.dataset_options.get("path")))
        raise
    except ReducerError as exc:
        result = JobResult(job.name, "failed", time.time() - started, reason=one_line(exc))
        kept = " (previous outputs kept)" if (destination.job_folder(job.name) / "manifest.json").exists() else ""
        log.error("[%s] failed, nothing published%s: %s", job.name, kept, result.reason)
    except Exception as exc:  # a bug: keep the traceback in the log, keep the other jobs going
        log.error("[%s] internal error, nothing published:\n%s", job.name, traceback.format_exc().rstrip())
        result = JobResult(job.name, "error", time.time() - started,
                           reason=one_line(f"internal error: {type(exc).__name__}: {exc}"))
    else:
        manifest = outcome.manifest
        result = JobResult(job.name, outcome.status.value, time.time() - started, manifest.training.final_loss,
                           reason=one_line(outcome.reason or ""), manifest=manifest.to_json())
        if outcome.status == "ok":
            log.info("[%s] published to %s", job.name, destination.job_folder(job.name))
        elif outcome.status == "unchanged":
            log.info("[%s] unchanged: %s; nothing trained", job.name, outcome.reason)
        else:
            log.error("[%s] rejected by the quality gate, nothing published (previous outputs kept; the "
                      "candidate is in %s): %s", job.name, destination.job_folder(job.name) / "rejected",
                      outcome.reason)
    record_attempt(destination, result, attempted_at, files.mode_for(job.dataset_options.get("path")))
    return result


def record_attempt(destination: publish.Destination, result: JobResult, attempted_at: str,
                   mode: int = files.PUBLIC) -> None:
    """status.json for this attempt (and a history record unless it published); a failure to
    write them is logged, never the job's end. mode: files.mode_for the job's input (a reason
    may quote a cell of it)."""
    try:
        manifest, digest = publish.published_manifest(destination, result.name)
    except PublishedRecordError:  # the job's own line says so; the status still records the attempt
        manifest, digest = None, None
    status = published.Status.FAILED if result.status == "error" else published.Status(result.status)
    current = manifest is not None and status in (published.Status.OK, published.Status.UNCHANGED)
    record = published.StatusRecord(job=result.name, status=status, reason=result.reason or None,
                                    attempted_at=attempted_at, published_at=manifest.finished_at if manifest else None,
                                    manifest_sha256=digest, seconds=round(result.seconds, 3),
                                    warnings=manifest.warnings if manifest is not None and current else [])
    try:
        publish.write_status(destination, result.name, record, mode)
    except HistoryRecordError as exc:
        log.warning("[%s] %s", result.name, exc)
    except (ReducerError, OSError) as exc:
        log.warning("[%s] could not write its status.json: %s", result.name, exc)
