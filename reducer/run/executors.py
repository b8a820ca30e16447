"""Jobs in parallel: worker processes on this machine (`--workers N`) or a Dask cluster
(`--scheduler tcp://HOST:PORT`).

The parent does what a sequential run does: it checks every job first, holds the outputs
folder's lock, prints the summary and picks the exit code. Only the training moves out. A job
travels as plain values (its file's path, the plugin folders, the destination folders) because
datasets from drop-in plugins cannot be pickled; the worker rebuilds the registry itself and
hands back a `JobResult` as a plain dict (`run_job_file`).

Locally every job gets a fresh process (the "spawn" start method: a clean TensorFlow each
time), so one that dies (killed, out of memory, a segfault in native code) fails that job
alone, with the signal named, while the others finish.
"""

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from multiprocessing import connection
from pathlib import Path
from types import FrameType
from typing import Any, Dict, List, Optional, Sequence, TextIO, Union

from reducer import stopping
from reducer.config import Job, job_for_dataset, read_job
from reducer.datasets.registry import DROPIN_PACKAGE, load_registry
from reducer.engine import xla_cache
from reducer.errors import ReducerError, SchedulerError
from reducer.log import setup_logging
from reducer.publish import Destination
from reducer.run.execute import run_one
from reducer.run.results import JobResult

log = logging.getLogger("reducer")

THREADS_ENV = "REDUCER_THREADS"
SCHEDULER_TIMEOUT_S = 10  # how long `--scheduler` waits for the scheduler to answer
# Dask retries a task whose function raised this many times. Jobs never raise (failures come
# back as results), so 0: a retry could only repeat the same failure. A worker that dies
# mid-task is a different matter, governed by the scheduler's `allowed-failures` (README).
DASK_RETRIES = 0

# Keras and TensorFlow keep process-wide state (random seeds, layer-name counters); a Dask
# worker with several threads must still train one job at a time.
_ONE_JOB_AT_A_TIME = threading.Lock()


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    """TensorFlow threads for each of `workers` processes running at once: the cores, split."""
    return max(1, available_cores() // max(1, workers))


# ---------------------------------------------------------------- the worker's side


def run_job_file(job_path: Union[str, Path], plugin_folders: Sequence[str], outputs_root: Union[str, Path],
                 models_root: Union[str, Path], threads: Optional[int] = None, quiet: bool = False,
                 force: bool = False, retrain: bool = False) -> Dict[str, Any]:
    """Run the job in `job_path` and publish its outputs; return a `JobResult` as a plain dict.

    Self-contained, so that it can run in a fresh process or on a Dask worker: it reads the job
    file, loads the plugins from `plugin_folders` (every folder the parent scanned, absolute),
    and writes under `outputs_root` and `models_root` (absolute: the worker's current folder
    is not the parent's). `threads` sets TensorFlow's thread counts when this process has not
    started TensorFlow yet and REDUCER_THREADS is not set.
    """
    with _ONE_JOB_AT_A_TIME:
        if threads and THREADS_ENV not in os.environ:
            os.environ[THREADS_ENV] = str(threads)
        _setup_logging(quiet)
        # A long-lived Dask worker must see today's plugin files, not the ones it imported
        # for an earlier run.
        for name in [n for n in sys.modules if n.startswith(DROPIN_PACKAGE + ".")]:
            del sys.modules[name]
        started = time.time()
        name = Path(job_path).stem
        try:
            job = read_job(job_path)
            name = job.name
            registry = load_registry(plugin_folders)
            dataset = registry.get(job.dataset)
            job = job_for_dataset(job, dataset)
            source = registry.datasets[job.dataset].source
        except ReducerError as exc:  # the job file or a plugin changed since the parent checked
            log.error("[%s] failed: %s", name, exc)
            return dataclasses.asdict(JobResult(name, "failed", time.time() - started, reason=str(exc)))
        destination = Destination(Path(outputs_root), Path(models_root))
        return dataclasses.asdict(run_one(job, dataset, source, destination, force, retrain))


def _setup_logging(quiet: bool) -> None:
    if not log.handlers:
        setup_logging(quiet)


class _NotATerminal:
    """stderr for a worker process: live progress lines redrawn by several processes at once
    would garble the terminal, so workers write the plain log lines only."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when the parent dies (even by SIGKILL): a worker must
    not go on publishing after the run that holds the lock is gone."""
    parent = os.getppid()
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(143)


def _on_sigterm(signum: int, frame: Optional[FrameType]) -> None:
    raise stopping.Terminated()  # unwinds, so staged temporaries are removed and the attempt recorded


def _worker_main(send: Any, job_path: str, plugin_folders: Sequence[str], outputs_root: str, models_root: str,
                 threads: int, quiet: bool, compile_cache: bool = False, force: bool = False,
                 retrain: bool = False) -> None:
    """Entry point of one local worker process: run one job, send its result, exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        _die_with_parent()
        sys.stderr = _NotATerminal(sys.stderr)
        if compile_cache:
            xla_cache.enable(outputs_root)
        send.send(run_job_file(job_path, plugin_folders, outputs_root, models_root, threads, quiet, force, retrain))
        send.close()
    except stopping.Terminated:
        raise SystemExit(143) from None


# ---------------------------------------------------------------- the parent's side


def run_parallel(the_plan: Any, destination: Destination, workers: int = 1, client: Any = None,
                 compile_cache: bool = False, force: bool = False, retrain: bool = False) -> List[JobResult]:
    """Run the plan's ready jobs in worker processes, or on Dask when `client` is given.

    Call with the outputs folder's lock held. Returns JobResults in job order.
    """
    args = {
        "plugin_folders": [str(Path(f).resolve()) for f in the_plan.folders],
        "outputs_root": str(Path(destination.outputs_root).resolve()),
        "models_root": str(Path(destination.models_root).resolve()),
        "quiet": log.getEffectiveLevel() > logging.INFO,
        "compile_cache": compile_cache,  # worker processes only: Dask workers are not ours to set up
        "force": force,
        "retrain": retrain,
    }
    jobs = [job for job, _, _ in the_plan.ready]
    if client is not None:
        return _run_on_dask(client, jobs, args)
    return _run_in_processes(jobs, args, workers)


def _result(payload: Dict[str, Any]) -> JobResult:
    names = {f.name for f in dataclasses.fields(JobResult)}
    return JobResult(**{k: v for k, v in payload.items() if k in names})


def _failed(name: str, seconds: float, reason: str) -> JobResult:
    log.error("[%s] failed: %s", name, reason)
    return JobResult(name, "failed", seconds, reason=reason)


def _exit_text(exitcode: Optional[int]) -> str:
    if exitcode is not None and exitcode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-exitcode).name}"
        return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


@dataclasses.dataclass
class _Running:
    job: Job
    process: Any  # a multiprocessing Process
    receive: Any  # the receiving end of its Pipe
    started: float


def _run_in_processes(jobs: List[Job], args: Dict[str, Any], workers: int) -> List[JobResult]:
    context = multiprocessing.get_context("spawn")
    workers = max(1, min(workers, len(jobs)))
    threads = threads_per_worker(workers)
    log.info("running %d job(s) in up to %d worker processes, %s TensorFlow thread(s) each", len(jobs),
             workers, os.environ.get(THREADS_ENV, threads))
    waiting = list(enumerate(jobs))
    running: Dict[int, _Running] = {}
    results: List[Any] = [None] * len(jobs)  # a JobResult each, once its worker answered
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                index, job = waiting.pop(0)
                receive, send = context.Pipe(duplex=False)
                process = context.Process(
                    target=_worker_main, name=f"reducer-{job.name}",
                    args=(send, str(job.path), args["plugin_folders"], args["outputs_root"],
                          args["models_root"], threads, args["quiet"], args["compile_cache"], args["force"],
                          args["retrain"]))
                process.start()
                send.close()  # only the child holds the sending end now: its death reads as EOF
                running[index] = _Running(job, process, receive, time.time())
            readable = connection.wait([r.receive for r in running.values()])
            for index, run in list(running.items()):
                if run.receive not in readable:
                    continue
                try:
                    payload = run.receive.recv()
                except EOFError:  # the worker died before it could answer
                    payload = None
                run.receive.close()
                run.process.join()
                del running[index]
                if payload is not None:
                    results[index] = _result(payload)
                else:
                    results[index] = _failed(
                        run.job.name, time.time() - run.started,
                        f"worker process {_exit_text(run.process.exitcode)} while running the job; "
                        f"nothing of this run was published for it")
    finally:  # Ctrl-C, SIGTERM or a bug here: stop the workers, which remove their temporaries
        for run in running.values():
            run.process.terminate()
        for run in running.values():
            run.process.join()
    return results


def connect(address: str, timeout: float = SCHEDULER_TIMEOUT_S) -> Any:
    """A Dask `Client` for the scheduler at `address`, or SchedulerError in one line."""
    try:
        from distributed import Client
    except ImportError:
        raise SchedulerError("--scheduler needs Dask's distributed package, which is not installed: "
                             "pip install 'reducer[dask]'") from None
    from distributed.comm import parse_address, parse_host_port

    try:  # checked first: a Client built on a bad address fails slowly and noisily
        parse_host_port(parse_address(address)[1])
    except ValueError as exc:
        raise SchedulerError(f"--scheduler {address!r} is not an address like tcp://HOST:PORT: "
                             f"{exc}") from None
    try:
        return Client(address, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SchedulerError(f"cannot reach the Dask scheduler at {address}: {exc}") from None


def _run_on_dask(client: Any, jobs: List[Job], args: Dict[str, Any]) -> List[JobResult]:
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    log.info("sending %d job(s) to the Dask scheduler at %s", len(jobs), client.scheduler.address)
    run_id = uuid.uuid4().hex[:8]
    futures = [client.submit(run_job_file, str(job.path), args["plugin_folders"], args["outputs_root"],
                             args["models_root"], None, args["quiet"], args["force"], args["retrain"],
                             key=f"reducer-{job.name}-{run_id}",
                             pure=False, retries=DASK_RETRIES)
               for job in jobs]
    index_of = {future.key: i for i, future in enumerate(futures)}
    results: List[Any] = [None] * len(jobs)
    started = time.time()
    try:
        for future in as_completed(futures, loop=client.loop):
            index = index_of[future.key]
            name = jobs[index].name
            try:
                results[index] = result = _result(future.result())
            except KilledWorker as exc:
                results[index] = _failed(name, time.time() - started,
                                         f"the Dask worker running it died ({exc}); see that worker's log")
                continue
            except Exception as exc:  # e.g. reducer is not installed on that worker
                results[index] = _failed(name, time.time() - started,
                                         f"on a Dask worker: {type(exc).__name__}: {exc}")
                continue
            (log.info if result.succeeded else log.error)(
                "[%s] finished on Dask: %s", name, result.summary().removeprefix(f"{name}: "))
    finally:
        client.cancel([f for f in futures if not f.done()])
    return results
