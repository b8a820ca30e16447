"""The command line: parse arguments, call the library, turn errors into one line and an exit code."""

import argparse
import contextlib
import enum
import errno
import glob
import logging
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, Optional

from reducer import __version__
from reducer.errors import LockedError, NotFoundError, OutputError, ReducerError, SchedulerError
from reducer.log import setup_logging
from reducer.stopping import Terminated

log = logging.getLogger("reducer")


class Exit(enum.IntEnum):
    OK = 0
    JOBS_FAILED = 1  # at least one job failed; the others ran
    USAGE = 2  # bad arguments, or no job files matched
    INTERNAL = 70  # a bug in reducer or a plugin: a traceback is in the log
    LOCKED = 75  # another run holds the outputs folder's lock (EX_TEMPFAIL: try again later)
    INTERRUPTED = 130  # Ctrl-C
    TERMINATED = 143  # SIGTERM, e.g. cron's timeout
    CLOSED_PIPE = 141  # whoever read standard output stopped (`| head`): 128 + SIGPIPE, as the shell has it


def exit_code(error: ReducerError) -> Exit:
    """The one table from a user error's kind to the exit code (the first kind it is wins)."""
    table: tuple[tuple[type[ReducerError], Exit], ...] = (
        (LockedError, Exit.LOCKED), (NotFoundError, Exit.USAGE), (SchedulerError, Exit.USAGE),
        (ReducerError, Exit.JOBS_FAILED))
    return next(code for kind, code in table if isinstance(error, kind))


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def expand_job_paths(patterns: Sequence[str]) -> list[str]:
    """Expand globs ourselves too: cron's shell passes an unmatched `jobs/*.toml` literally."""
    paths = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        paths.extend(matches)
    return paths


def missing_job_files(patterns: Sequence[str]) -> list[str]:
    """The job files named without a glob that are not there at all: a typo on the command line,
    a usage error like a glob that matches nothing. (A dangling link or a link loop is there: its
    job fails with a line saying what it is.)"""
    return [p for p in patterns if not glob.has_magic(p) and not os.path.lexists(p)]


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of 1 or more, got {text!r}")
    return int(text)


def add_folder_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugins", action="append", default=[], metavar="DIR",
                        help="another folder of drop-in plugin files (repeatable)")


def add_global_options(parser: argparse.ArgumentParser, default: Any) -> None:
    """The options every command takes, before or after its name (`reducer -q run` and
    `reducer run -q`): the main parser's defaults are the values; a subcommand's copy has no
    default, so that leaving it out there does not undo it given before."""
    parser.add_argument("-q", "--quiet", action="store_true", default=default, help="log warnings and errors only")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reducer", description="Turn wide tables into 2-D or 3-D maps "
                                     "with an autoencoder, one TOML job file per map.")
    parser.add_argument("--version", action="version", version=f"reducer {__version__}")
    add_global_options(parser, False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run", help="train every job and publish its outputs",
        description="Train every job, publish its files, rewrite OUTPUTS/index.html (the report) and print one "
                    "summary line per job, in the order given, then the totals.")
    run.add_argument("jobs", nargs="+", metavar="JOB", help="job files (globs are expanded)")
    run.add_argument("--outputs", metavar="DIR", help="outputs folder (default: the project's outputs/)")
    run.add_argument("--models", metavar="DIR", help="models folder (default: the project's Models/)")
    run.add_argument("--wait", action="store_true", help="wait for another run's lock instead of exiting 75")
    run.add_argument("--force", action="store_true",
                     help="train every job, even one unchanged since its published run (warm, as a night would)")
    run.add_argument("--retrain", action="store_true",
                     help="train every job cold from its current table, sized afresh, as a new baseline "
                          "(aligned onto the published map; max_drift does not hold it back)")
    add_folder_options(run)
    spread = run.add_mutually_exclusive_group()
    spread.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                        help="train up to N jobs at once in separate processes (default 1)")
    spread.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help="send each job to this Dask scheduler (needs reducer[dask])")

    accept = commands.add_parser(
        "accept", help="publish each job's newest rejected candidate (outputs/<job>/rejected/), by hand",
        description="Publish the newest map the quality gate rejected for each job, through the same atomic "
                    "switch as a run: status ok, the manifest's `accepted` and `reducer history` say it was "
                    "accepted by hand and which threshold it missed. Nothing is trained.")
    accept.add_argument("jobs", nargs="+", metavar="JOB", help="job files (globs are expanded)")
    accept.add_argument("--outputs", metavar="DIR", help="outputs folder (default: the project's outputs/)")
    accept.add_argument("--models", metavar="DIR", help="models folder (default: the project's Models/)")
    accept.add_argument("--wait", action="store_true", help="wait for a run's lock instead of exiting 75")

    check = commands.add_parser("check", help="validate job files without training")
    check.add_argument("jobs", nargs="+", metavar="JOB", help="job files (globs are expanded)")
    check.add_argument("--data", action="store_true",
                       help="also read and check every row of every job's input (no training)")
    add_folder_options(check)

    datasets = commands.add_parser("datasets", help="list every dataset the plugins provide, with its options")
    datasets.add_argument("name", nargs="?", metavar="NAME",
                          help="show this dataset only, with the options every dataset takes too")
    datasets.add_argument("--project", metavar="DIR",
                          help="also scan this project's plugins/ folder (default: none; plugin code is "
                               "imported only from folders you name)")
    add_folder_options(datasets)

    past = commands.add_parser("history", help="one line per night for each job: status, rows, loss, quality, drift")
    past.add_argument("jobs", nargs="+", metavar="JOB",
                      help="job files (their project's outputs/ is read; one that cannot be read goes by its file's "
                           "stem, as a run records it), or job names (folders of the outputs folder)")
    past.add_argument("--outputs", metavar="DIR",
                      help="outputs folder (default: the job file's project's outputs/, else PROJECT/outputs, "
                           "else ./outputs)")
    past.add_argument("--project", metavar="DIR", help="the project whose outputs/ holds the jobs named")
    past.add_argument("--json", action="store_true", help="the same as JSON, for scripts")

    report = commands.add_parser(
        "report", help="rebuild OUTPUTS/index.html and each job's map.html from the published files",
        description="Rebuild the report without training: OUTPUTS/index.html (every job's status, plot, quality, "
                    "drift and history) and OUTPUTS/<job>/map.html (an interactive map). `reducer run` does this "
                    "at the end of every run.")
    report.add_argument("jobs", nargs="*", metavar="JOB",
                        help="job files: the report of their project's outputs/ is rebuilt (every job in it)")
    report.add_argument("--outputs", metavar="DIR",
                        help="outputs folder (default: the job file's project's outputs/, else PROJECT/outputs, "
                             "else ./outputs)")
    report.add_argument("--project", metavar="DIR", help="the project whose outputs/ to report on")

    encode = commands.add_parser(
        "encode", help="place new rows with a saved encoder",
        description="Place the rows of a CSV file with an encoder that `reducer run` saved, and write "
                    "them as embedding.csv is written (id, label, component_1, component_2...). Columns "
                    "are matched by name, using the MODEL.json written beside the model. The rows are "
                    "placed by onnxruntime with MODEL.onnx, without TensorFlow; a model without one "
                    "falls back to the Keras file, with one warning line.")
    encode.add_argument("input", metavar="INPUT.csv",
                        help="the rows to place: a CSV file with a header naming at least the model's "
                             "feature columns, in any order (at most 1 GiB; read a block of rows at a time)")
    encode.add_argument("--model", required=True, metavar="MODEL.keras",
                        help="a saved encoder, Models/<job>.onnx or Models/<job>.keras (either names the "
                             "job's model), with Models/<job>.json beside it")
    encode.add_argument("-o", "--output", required=True, metavar="OUT.csv",
                        help="where to write: a file, written to a temporary beside it and renamed "
                             "into place; '-' for standard output; a character device (/dev/null) or "
                             "FIFO is written through; a symbolic link, folder or other special file is "
                             "refused")
    encode.add_argument("--id", metavar="COLUMN",
                        help="id column of INPUT, copied to the output (default: the job's id column when "
                             "INPUT has it, else row numbers from 0)")
    encode.add_argument("--label", metavar="COLUMN",
                        help="label column of INPUT to copy through (default: the job's label column when "
                             "INPUT has it)")
    for command in commands.choices.values():
        add_global_options(command, argparse.SUPPRESS)
    return parser


def cmd_datasets(args: argparse.Namespace) -> Exit:
    from reducer.datasets import options
    from reducer.datasets.dataset import BLOCK_OPTIONS, COMMON_OPTIONS
    from reducer.datasets.registry import load_registry

    registry = load_registry(args.plugins, Path(args.project) if args.project else None)
    for problem in registry.problems:
        print(f"warning: {problem}", file=sys.stderr)
    for note in registry.notes:
        print(f"note: {note}", file=sys.stderr)
    chosen = sorted(registry.datasets.items())
    if args.name is not None:
        chosen = [(name, reg) for name, reg in chosen if name == args.name]
        if not chosen:
            known = ", ".join(sorted(registry.datasets)) or "none"
            print(f"reducer: unknown dataset {args.name!r}; known datasets: {known}", file=sys.stderr)
            return Exit.USAGE
    width = max((len(name) for name, _ in chosen), default=4)
    for name, registered in chosen:
        dataset = registered.dataset
        print(f"{name:<{width}}  {dataset.description}\n{'':<{width}}  from {registered.source}")
        own = [options.described(key, option) for key, option in options.own_specs(dataset).items()]
        lines = [("options:", own)] if own else []
        if args.name is not None:  # the one dataset asked about: what every job may set too
            shared = {**COMMON_OPTIONS, **(BLOCK_OPTIONS if dataset.read_blocks is not None else {})}
            lines.append(("options every dataset takes:", [options.described(key, option) for key, option in shared.items()
                           if key not in dataset.options]))
        for heading, rows in lines:
            print(f"{'':<{width}}  {heading}")
            key_width, type_width = (max(len(row[k]) for row in rows) for k in (0, 1))
            for key, kind, description in rows:
                print(f"{'':<{width}}    {key:<{key_width}}  {kind:<{type_width}}  {description}".rstrip())
    return Exit.JOBS_FAILED if registry.problems else Exit.OK


def _job_paths(args: argparse.Namespace) -> list[str]:
    """The job files to read, or [] after a usage error is printed."""
    missing = missing_job_files(args.jobs)
    if missing:  # each as given, and where that is (cron's current folder is `/`)
        named = ", ".join(f"{path} ({Path(path).absolute()})" for path in missing)
        print(f"reducer: no such job file: {named}; nothing was done", file=sys.stderr)
        return []
    paths = expand_job_paths(args.jobs)
    if not paths:
        print(f"reducer: no job files match {' '.join(args.jobs)} (in {Path.cwd()})", file=sys.stderr)
    return paths


def cmd_check(args: argparse.Namespace) -> Exit:
    from reducer.run.runner import check_jobs

    paths = _job_paths(args)
    if not paths:
        return Exit.USAGE
    results = check_jobs(paths, args.plugins, data=args.data)
    for result in results:
        print(f"{result.name}: ok ({result.note})" if result.status == "ok"
              else f"{result.name}: invalid: {result.reason}")
    return Exit.JOBS_FAILED if any(r.status != "ok" for r in results) else Exit.OK


def cmd_run(args: argparse.Namespace) -> Exit:
    from reducer.run.runner import run_jobs

    paths = _job_paths(args)
    if not paths:
        return Exit.USAGE
    results = run_jobs(paths, args.outputs, args.models, args.plugins, wait=args.wait, workers=args.workers,
                       force=args.force, retrain=args.retrain, scheduler=args.scheduler)
    print("summary:")
    for result in results:
        print(f"  {result.summary()}")
    print(totals(results))
    if any(r.status == "error" for r in results) or results.report_bug:
        return Exit.INTERNAL
    return Exit.JOBS_FAILED if not all(r.succeeded for r in results) else Exit.OK


def cmd_accept(args: argparse.Namespace) -> Exit:
    from reducer.run.accept import accept_jobs

    paths = _job_paths(args)
    if not paths:
        return Exit.USAGE
    results = accept_jobs(paths, args.outputs, args.models, wait=args.wait)
    print("summary:")  # as a run's: a script reads both the same way
    for result in results:
        print(f"  {result.name}: {result.status}: {result.reason} [{result.finished_at}]")
    print(totals(results))
    if results.report_bug:
        return Exit.INTERNAL
    return Exit.JOBS_FAILED if not all(r.succeeded for r in results) else Exit.OK


def totals(results: Sequence[Any]) -> str:
    """The summary's last line: '6 jobs: 4 ok, 1 unchanged, 1 failed'."""
    from reducer.report import totals as count

    return count([result.status for result in results])


def cmd_report(args: argparse.Namespace) -> Exit:
    from reducer import project, report

    outputs = project.outputs_root(args.outputs, args.jobs, args.project)
    if not outputs.is_dir():
        raise NotFoundError(f"no outputs folder {outputs}")
    try:
        written = report.build(outputs)
    except OSError as exc:  # an unreadable job folder, say (ReducerError is main's to print)
        raise OutputError(path=outputs, reason=f"cannot write the report: {exc.strerror or exc}") from None
    print(f"wrote {written.path}: {written.jobs} job(s), {written.maps_written} map page(s) rewritten")
    return Exit.OK


def cmd_encode(args: argparse.Namespace) -> Exit:
    from reducer.encode import encode_file

    rows = encode_file(args.model, args.input, args.output, id_column=args.id, label_column=args.label)
    log.info("encoded %d rows from %s into %s", rows, args.input,
             "standard output" if args.output == "-" else args.output)
    return Exit.OK


def cmd_history(args: argparse.Namespace) -> Exit:
    import json

    from reducer import history, project

    report = {}
    for target in args.jobs:
        found = project.job_folder(target, args.outputs, args.project)
        report[found.name] = history.nights(found.folder)
        if found.unread is not None:  # the history is still what the user came for: said, not refused
            print(f"warning: {found.unread.message}; showing the history of {found.name!r}, the name a run "
                  f"records this file's failures under (its file's stem)", file=sys.stderr)
    if args.json:
        print(json.dumps({name: [night.to_json() for night in nights] for name, nights in report.items()}, indent=2))
        return Exit.OK
    for name, nights in report.items():
        print(f"{name}:")
        for night in nights:
            print(f"  {history.line(night)}")
    return Exit.OK


COMMANDS = {"run": cmd_run, "check": cmd_check, "datasets": cmd_datasets, "encode": cmd_encode,
            "history": cmd_history, "report": cmd_report, "accept": cmd_accept}


# Writing our output failed for want of room, not for a bug: one line and exit 1, never exit 70.
OUTPUT_FAILURES = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        code = _command(argv)
        sys.stdout.flush()  # a full disk under standard output is said here, not lost at exit
        return code
    except BrokenPipeError:  # whoever read our standard output is gone; see stdout_closed
        return stdout_closed()
    except OSError as exc:
        if exc.errno not in OUTPUT_FAILURES:
            raise
        return output_failed(exc)


def output_failed(exc: OSError) -> Exit:
    """Standard output (or the file behind it) took no more bytes: a full disk, say. One line
    on standard error, exit 1; what is still buffered is dropped so that the exit cannot fail."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    with contextlib.suppress(OSError, ValueError):
        print(f"reducer: cannot write its output: {exc.strerror or exc}", file=sys.stderr, flush=True)
    return Exit.JOBS_FAILED


def _command(argv: Optional[Sequence[str]]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return Exit.USAGE
    setup_logging(args.quiet)
    missing = [folder for folder in getattr(args, "plugins", ()) if not Path(folder).is_dir()]
    if missing:  # a typo in --plugins: said before anything runs, not silently skipped
        print(f"reducer: --plugins {missing[0]}: no such folder; nothing was done", file=sys.stderr)
        return Exit.USAGE
    signal.signal(signal.SIGTERM, _on_sigterm)
    # Ctrl-C stops a run even where it started with SIGINT ignored (`reducer run &` from a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return COMMANDS[args.command](args)
    except ReducerError as exc:
        print(f"reducer: {exc}", file=sys.stderr)
        return exit_code(exc)
    except Terminated:
        print("reducer: terminated by SIGTERM; published outputs are intact", file=sys.stderr)
        return Exit.TERMINATED
    except KeyboardInterrupt:
        print("reducer: interrupted; published outputs are intact", file=sys.stderr)
        return Exit.INTERRUPTED
    except BrokenPipeError:
        raise  # not a bug: main's
    except OSError as exc:
        if exc.errno in OUTPUT_FAILURES:
            raise  # not a bug: main's
        log.critical("internal error (a bug in reducer, please report it):\n%s", traceback.format_exc().rstrip())
        return Exit.INTERNAL
    except Exception:  # a bug outside any one job: Python's own exit code 1 would read "a job failed"
        log.critical("internal error (a bug in reducer, please report it):\n%s", traceback.format_exc().rstrip())
        return Exit.INTERNAL


def stdout_closed() -> Exit:
    """The reader of standard output went away (`reducer datasets | head -1`): not a bug, and
    nothing to say. What is still buffered for it goes to /dev/null, so that the interpreter's
    last flush has nowhere to fail."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return Exit.CLOSED_PIPE


def entry() -> None:
    code = int(main())
    if "tensorflow" in sys.modules:
        exit_without_teardown(code)
    sys.exit(code)


def exit_without_teardown(code: int) -> NoReturn:
    """Leave at once instead of through the interpreter's shutdown, which takes ~1.8 s once
    TensorFlow is loaded (unloading thousands of modules, stopping its runtime) and does nothing
    for reducer: every file is already fsynced and renamed, the lock goes with the process."""
    if "reducer.engine.xla_cache" in sys.modules:
        sys.modules["reducer.engine.xla_cache"].close()  # its atexit hook will not run
    logging.shutdown()  # flushes the log handlers (a file under cron)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more can be said there
            pass
    os._exit(code)
