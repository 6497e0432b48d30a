"""Command-line options shared by the programs that run many fits (ensemble recipes, sweeps,
searches): where the fits run."""

from __future__ import annotations

import argparse
import contextlib
import errno
import re
import sys
import traceback
from pathlib import Path
from typing import Callable

from kaggle_digits import UserError

# The options the two groups below add, by their names on the parsed arguments (a test holds
# them against the parser).
TRACKING_OPTIONS = ("track", "tracking_uri")
EXECUTOR_OPTIONS = ("executor", "parallel", "ray_address", "cpus_per_job", "gpus_per_job")


def path_value(text: str) -> Path:
    """An argparse type for a path option: an empty value is refused there, naming the option
    (``Path("")`` is the working directory, which no one means by typing nothing)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path")
    return Path(text)


def path_text(text: str) -> str:
    """:func:`path_value` for options kept as text (``--data``)."""
    return str(path_value(text))


def add_tracking_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tracking (optional extra: pip install -e '.[track]')")
    group.add_argument("--track", action="store_true",
                       help="log params, per-epoch metrics and artifacts (report, confusion "
                            "matrix, model) to MLflow once finished; see them with `mlflow ui`")
    group.add_argument("--tracking-uri", metavar="URI",
                       help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
                            "sqlite:///mlflow.db in this folder)")


def check_tracking(args: argparse.Namespace) -> None:
    """Fail before any work when --track is asked for and could not happen at the end (MLflow
    or the tracking URI's database driver missing)."""
    if getattr(args, "track", False):
        from kaggle_digits.orchestration.tracking import check_tracking_target

        check_tracking_target(args.tracking_uri)


def report_tracking(run_id: str, args: argparse.Namespace) -> None:
    from kaggle_digits.orchestration.tracking import masked, tracking_uri

    uri = masked(tracking_uri(args.tracking_uri))
    print(f"tracked: MLflow run {run_id} in {uri} (browse: mlflow ui --backend-store-uri {uri})")


def os_error_text(exc: OSError) -> str:
    """"FILE: reason" for a failed read or write, or the reason alone when no file is known
    (never ": reason" with an empty name)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{exc.filename}: {reason}" if exc.filename else reason


def add_executor_arguments(parser: argparse.ArgumentParser, title: str = "where the fits run"
                           ) -> None:
    group = parser.add_argument_group(title)
    from kaggle_digits.orchestration.executors import default_parallel, list_executors

    group.add_argument("--executor", choices=list_executors(), default="local",
                       help="local (default): on this machine, --parallel fits at a time; ray: "
                            "as Ray tasks, results brought back as ordinary run directories "
                            "here")
    group.add_argument("--parallel", type=int, metavar="N",
                       help="local executor: fits at a time, each in its own process with "
                            f"cores/N TensorFlow threads (default {default_parallel()} here: two "
                            "single-threaded fits outrun one two-threaded fit on 2 cores, "
                            "docs/results.md; 1 = one after another in this process)")
    group.add_argument("--ray-address", metavar="ADDRESS",
                       help="with --executor ray: 'auto' joins the cluster this machine belongs "
                            "to, 'ray://HOST:10001' connects through Ray Client; default: a "
                            "local Ray instance started for this command")
    group.add_argument("--cpus-per-job", type=float, metavar="N",
                       help="CPUs (and TensorFlow threads) per fit with --executor ray "
                            "(default 1)")
    group.add_argument("--gpus-per-job", type=float, metavar="N",
                       help="GPUs per fit with --executor ray (default 0)")


# The options only Ray reads: given with the local executor they would do nothing.
RAY_ONLY_OPTIONS = ("ray_address", "cpus_per_job", "gpus_per_job")


def parallel_fits(args: argparse.Namespace) -> int:
    """--parallel as given, else the default for this machine's cores."""
    from kaggle_digits.orchestration.executors import default_parallel

    return default_parallel() if args.parallel is None else args.parallel


def check_executor_args(args: argparse.Namespace, parallel_used: bool = True) -> None:
    """Raises UserError for an option the chosen executor would ignore (``parallel_used``
    False where this command runs one fit at a time on this machine, so that only
    ``--parallel 1`` says what it does)."""
    if args.executor == "local":
        ignored = [name for name in RAY_ONLY_OPTIONS if getattr(args, name) is not None]
        if args.parallel is not None and args.parallel != 1 and not parallel_used:
            ignored.insert(0, "parallel")
        if ignored:
            flags = ", ".join("--" + name.replace("_", "-") for name in ignored)
            why = ("this command runs one fit at a time here; --executor ray runs several"
                   if "parallel" in ignored else "they are for --executor ray")
            raise UserError(f"{flags} would do nothing with the local executor ({why})")


def executor_from_args(args: argparse.Namespace, parallel_used: bool = True):
    """The executor the options name (raises UserError for Ray missing or bad values, and for
    options it would ignore: :func:`check_executor_args`)."""
    from kaggle_digits.orchestration.executors import ExecutorOptions, make_executor

    check_executor_args(args, parallel_used)
    return make_executor(args.executor, ExecutorOptions(
        parallel=parallel_fits(args), ray_address=args.ray_address,
        cpus_per_job=1 if args.cpus_per_job is None else args.cpus_per_job,
        gpus_per_job=0 if args.gpus_per_job is None else args.gpus_per_job))


def flag_of(parser: argparse.ArgumentParser, dest: str) -> str:
    """The option as a user types it (``--exclude-rows``), for the name it is parsed into
    (``exclude_rows_file``): read from the parser, never spelled from the name."""
    for action in parser._actions:
        if action.dest == dest and action.option_strings:
            return max(action.option_strings, key=lambda flag: flag.startswith("--"))
    return dest


@contextlib.contextmanager
def options_named(parser: argparse.ArgumentParser, given: dict):
    """Refusals of the settings in ``given`` (parsed names and values) name the option the user
    typed: a message about ``dropout_rate`` from deep in a builder starts with ``--dropout``."""
    from kaggle_digits.training.config import ALIASES

    try:
        yield
    except UserError as exc:
        text = str(exc)
        for dest in given:
            names = {dest, ALIASES.get(dest, dest)}
            if any(re.search(rf"\b{re.escape(name)}\b", text) for name in names):
                flag = flag_of(parser, dest)
                if flag != dest and not text.startswith(flag):
                    raise UserError(f"{flag} {given[dest]}: {text}") from None
        raise


# The failures of the file system that the user can fix (a full disk or quota, a folder they may
# not write, a read-only mount, too many open files, a file where they named a folder or the
# reverse); a missing file the user named is refused where it is read, so any other OSError
# here is the code's own and keeps its traceback.
USER_OS_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS,
                  errno.EMFILE, errno.ENFILE, errno.EFBIG, errno.ENAMETOOLONG, errno.EEXIST,
                  errno.ENOTDIR, errno.EISDIR}

BUG_LINE = ("error: this is a bug in kaggle-digits, not something you did ({kind}); please report "
            "it with the traceback above, the command you ran and the run directory it was "
            "working on, if any")


def run_command(body: Callable[[], int], interrupted: str = "interrupted",
                hint: str | None = None) -> int:
    """Run a command's work the way every CLI here ends: what the user can fix (a
    :class:`~kaggle_digits.UserError`, or a full disk) is one line on stderr and exit 2;
    Ctrl-C is exit 130 with what was kept (the exception's message, else ``interrupted``) and
    ``hint``, what to run next. Anything else is a bug: its traceback, then one line saying so
    and what to attach, exit 1."""
    try:
        return body()
    except KeyboardInterrupt as exc:
        # str(): an exception is always true, and a bare Ctrl-C's message is empty.
        print(f"\n{str(exc) or interrupted}" + (f"\n{hint}" if hint else ""), file=sys.stderr)
        return 130
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in USER_OS_ERRORS:  # A file the code itself lost is a bug.
            traceback.print_exc()
            print(BUG_LINE.format(kind=type(exc).__name__), file=sys.stderr)
            return 1
        print(f"error: {os_error_text(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        traceback.print_exc()
        print(BUG_LINE.format(kind=type(exc).__name__), file=sys.stderr)
        return 1
