"""Run a hyperparameter grid or a named study on one split and write a comparison table.

Examples:
  python scripts/sweep.py --arch simple_cnn --grid "epochs=5,10 filters=16-32-32,64-128-128"
  python scripts/sweep.py --study seed000-s6
  python scripts/sweep.py --list-studies
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kaggle_digits.cli.common import (
    add_executor_arguments,
    add_tracking_arguments,
    check_tracking,
    executor_from_args,
    path_text,
    report_tracking,
    run_command,
)
from kaggle_digits.orchestration.sweep import STUDIES


def parse_args(argv=None) -> argparse.Namespace:

    parser = argparse.ArgumentParser(
        description="Train several configurations on the same stratified split and write "
                    "sweeps/<timestamp>-<name>/summary.md and summary.csv (arch, parameters, "
                    "validation accuracy and loss, epochs, train time, time per epoch); every run "
                    "keeps its own run directory under runs/ there.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--grid", help='space-separated name=v1,v2 axes, e.g. "epochs=5,10 '
                      'filters=16-32-32,64-128-128"; names are train.py settings (epochs, '
                      'batch_size, lr, augment, optimizer, ...) or model options (filters, '
                      'kernel_size, stride, activation, dropout)')
    what.add_argument("--study", choices=sorted(STUDIES), help="a named study")
    what.add_argument("--list-studies", action="store_true", help="describe the named studies")
    parser.add_argument("--arch", default="simple_cnn", metavar="NAME",
                        help="architecture for --grid (default simple_cnn; train.py --list-archs "
                             "lists them)")
    parser.add_argument("--data", type=path_text, help="data directory (default as train.py)")
    parser.add_argument("--seed", type=int, default=42, help="split and training seed (42)")
    parser.add_argument("--val-split", type=float, default=0.2)
    parser.add_argument("--out-dir", default="sweeps", help="where sweeps go (default sweeps/)")
    parser.add_argument("--check", action="store_true", help="check every run of the sweep "
                        "(settings, data files, each model built once) and exit without "
                        "training or writing anything")
    add_executor_arguments(parser)
    add_tracking_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list_studies:
        for name, (description, runs) in sorted(STUDIES.items()):
            print(f"{name}: {description}")
            for label, arch, overrides in runs:
                print(f"    {label:36s} {arch} {overrides}")
        return 0
    return run_command(lambda: _run(args), interrupted="interrupted; the runs trained so far "
                                                       "are in the sweep's runs/ directory")


def _run(args: argparse.Namespace) -> int:
    from kaggle_digits.orchestration.sweep import format_markdown, parse_grid, run_study
    from kaggle_digits.training.config import TrainConfig

    base = TrainConfig(data_dir=args.data, seed=args.seed, split_seed=args.seed,
                       val_split=args.val_split).with_data_dir()
    check_tracking(args)
    if args.study:
        name, runs = args.study, STUDIES[args.study][1]
    else:
        name, runs = f"{args.arch}-grid", parse_grid(args.grid, args.arch)
    executor = executor_from_args(args)
    if args.check:
        from kaggle_digits.orchestration.sweep import check_study

        configs = check_study(runs, base)
        print(f"check passed: {len(configs)} runs of {name}, data {base.data_dir}; nothing was "
              f"trained or written")
        return 0
    with executor:
        table, sweep_dir = run_study(name, runs, base, out_root=args.out_dir,
                                     executor=executor)
    if args.track:
        from kaggle_digits.orchestration.tracking import log_study

        run_dirs = [Path(path) for path in table.get("run_dir", []) if isinstance(path, str)
                    and path]
        report_tracking(log_study(sweep_dir.name, run_dirs, [sweep_dir / "summary.md",
                                                             sweep_dir / "summary.csv"],
                                  args.tracking_uri), args)
    print()
    print(format_markdown(table))
    print(f"summary: {sweep_dir / 'summary.md'} and {sweep_dir / 'summary.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
