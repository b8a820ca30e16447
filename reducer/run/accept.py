"""`reducer accept JOB...`: publish a job's newest rejected candidate, by hand.

A map the quality gate rejected waits in outputs/<job>/rejected/<stamp>/ with every file a
published run has. Accepting it moves that folder into a version folder and publishes it with
the same switch as a night's run (publish.switch_in): Models/, history/ and the reader paths
change together. Its manifest records who decided (`accepted`: by hand, when, which candidate,
the gate's miss), its status is `ok`, and `reducer history` says "accepted by hand". Nothing here
trains or imports TensorFlow.
"""

import logging
import os
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from reducer import continuity, files, publish, published
from reducer.errors import JobError, ReducerError
from reducer.run.execute import record_attempt
from reducer.run.lock import run_lock
from reducer.run.results import JobResult, one_line
from reducer.run.runner import RunResults, destination_for, plan, write_report

log = logging.getLogger("reducer")


def newest_candidate(job_folder: Path) -> Optional[Path]:
    """outputs/<job>/rejected/<stamp>/ of the newest rejected candidate with a manifest, or None."""
    kept = Path(job_folder) / "rejected"
    if not kept.is_dir() or kept.is_symlink():
        return None
    found = sorted(entry for entry in kept.iterdir() if publish.STAMP_NAME.fullmatch(entry.name)
                   and entry.is_dir() and not entry.is_symlink() and (entry / published.MANIFEST).is_file())
    return found[-1] if found else None


def accept_one(destination: publish.Destination, name: str, job_path: Path) -> published.Manifest:
    """Publish `name`'s newest rejected candidate; its manifest, as published. JobError when there
    is none; the candidate stays where it was when publishing fails before the switch."""
    candidate = newest_candidate(destination.job_folder(name))
    if candidate is None:
        raise JobError(f"{job_path}: no rejected candidate to accept in "
                       f"{destination.job_folder(name) / 'rejected'}")
    original = (candidate / published.MANIFEST).read_bytes()
    manifest = published.read_manifest(candidate / published.MANIFEST)
    assert manifest is not None  # newest_candidate saw the file
    manifest.accepted = published.Accepted(by="hand", at=publish.utc_now(), candidate=candidate.name,
                                           gate_missed=manifest.rejected)
    manifest.rejected = None
    stamp = publish.run_stamp()
    version = destination.job_folder(name) / f"..v-{stamp}-{os.urandom(4).hex()}"
    os.replace(candidate, version)
    try:
        files.write_synced(version / published.MANIFEST, lambda p: published.write_record(p, manifest))
        files.fsync_folder(version)
        # The outgoing map, when of other dimensions, is kept for a later night in its dimensions,
        # as a run keeps it (continuity.keep_for_later).
        latent = continuity.latent_of(manifest)
        if latent is not None:
            continuity.keep_for_later(continuity.Previous.find(destination.job_folder(name)),
                                      destination.job_folder(name), latent)
        publish.switch_in(destination, name, version, stamp, keep_on_failure=True)
    except BaseException:
        if version.is_dir() and publish.published_version(destination.job_folder(name)) != version:
            (version / published.MANIFEST).write_bytes(original)
            os.replace(version, candidate)
        raise
    return manifest


def accept_jobs(job_paths: Sequence[Any], outputs: Any = None, models: Any = None,
                wait: bool = False) -> RunResults:
    """`reducer accept`: each job's newest rejected candidate published, under the outputs
    folder's lock, then the report rewritten; a JobResult per job ("ok", or "failed" with the
    reason), in the order the job files were given."""
    paths = [Path(p) for p in job_paths]
    destination = destination_for(paths, outputs, models)
    the_plan = plan(paths)
    results = list(the_plan.failed)
    with run_lock(destination.outputs_root, wait=wait):
        for job, _, _ in the_plan.ready:
            started, attempted_at = time.time(), publish.utc_now()
            try:
                for line in publish.recover(destination, job.name):
                    log.info("[%s] %s", job.name, line)
                manifest = accept_one(destination, job.name, job.path)
            except ReducerError as exc:
                result = JobResult(job.name, "failed", time.time() - started, reason=one_line(exc))
                log.error("[%s] not accepted: %s", job.name, result.reason)
                results.append(result)
                continue
            accepted = manifest.accepted
            assert accepted is not None
            reason = (f"accepted by hand: the candidate of {accepted.candidate}, which missed the gate: "
                      f"{accepted.gate_missed}")
            log.info("[%s] published the rejected candidate %s by hand", job.name, accepted.candidate)
            result = JobResult(job.name, "ok", time.time() - started, manifest.training.final_loss,
                               reason=reason, manifest=manifest.to_json())
            record_attempt(destination, result, attempted_at)
            results.append(result)
    results = the_plan.in_given_order(results)
    written, bug = write_report(destination.outputs_root, results)
    return RunResults(results, destination.outputs_root, written, bug)
