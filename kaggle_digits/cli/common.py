"""Command-line options shared by the programs that run many fits (ensemble recipes, sweeps,
searches): where the fits run."""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Callable

from kaggle_digits import UserError

# The options the two groups below add, by their names on the parsed arguments (a test holds
# them against the parser).
TRACKING_OPTIONS = ("track", "tracking_uri")
EXECUTOR_OPTIONS = ("executor", "parallel", "ray_address", "cpus_per_job", "gpus_per_job")


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
    group.add_argument("--parallel", type=int, default=default_parallel(), metavar="N",
                       help="local executor: fits at a time, each in its own process with "
                            f"cores/N TensorFlow threads (default {default_parallel()} here: two "
                            "single-threaded fits outrun one two-threaded fit on 2 cores, "
                            "docs/results.md; 1 = one after another in this process)")
    group.add_argument("--ray-address", metavar="ADDRESS",
                       help="with --executor ray: 'auto' joins the cluster this machine belongs "
                            "to, 'ray://HOST:10001' connects through Ray Client; default: a "
                            "local Ray instance started for this command")
    group.add_argument("--cpus-per-job", type=float, default=1, metavar="N",
                       help="CPUs (and TensorFlow threads) per fit with --executor ray "
                            "(default 1)")
    group.add_argument("--gpus-per-job", type=float, default=0, metavar="N",
                       help="GPUs per fit with --executor ray (default 0)")


def executor_from_args(args: argparse.Namespace):
    """The executor the options name (raises UserError for Ray missing or bad values)."""
    from kaggle_digits.orchestration.executors import ExecutorOptions, make_executor

    return make_executor(args.executor, ExecutorOptions(
        parallel=args.parallel, ray_address=args.ray_address, cpus_per_job=args.cpus_per_job,
        gpus_per_job=args.gpus_per_job))


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
    except OSError as exc:  # Disk full, unwritable output directory, ...
        print(f"error: {os_error_text(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        traceback.print_exc()
        print(BUG_LINE.format(kind=type(exc).__name__), file=sys.stderr)
        return 1
