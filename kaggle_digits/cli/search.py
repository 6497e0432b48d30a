"""Search train.py's options for one architecture with Optuna, pruning poor trials.

Examples:
  python scripts/search.py --arch improved_cnn --trials 20 --epochs 10
  python scripts/search.py --arch mlp --trials 8 --space "lr=log:1e-4:1e-2 dropout=float:0.1:0.5"
  python scripts/search.py --arch improved_cnn --trials 20 --executor ray --ray-address auto
"""

from __future__ import annotations

import argparse
import sys

from kaggle_digits import UserError
from kaggle_digits.cli.common import (
    add_executor_arguments,
    add_tracking_arguments,
    check_tracking,
    executor_from_args,
    path_text,
    report_tracking,
    run_command,
)


def parse_args(argv=None) -> argparse.Namespace:
    from kaggle_digits.orchestration.search import SEARCH_SPACES

    spaces = "; ".join(f"{arch}: {space}" for arch, space in SEARCH_SPACES.items())
    parser = argparse.ArgumentParser(
        description="An Optuna study over train.py options on one stratified split: each trial "
                    "is a training run, scored by its validation error; trials whose validation "
                    "loss is worse than the median of earlier trials at the same epoch are "
                    "pruned. The study is kept in searches/NAME/study.db: the same command "
                    "continues it. Writes summary.md, summary.csv, trials.png and "
                    "best_config.json (repeat it with train.py --config).",
        epilog=f"Default spaces: {spaces}; other architectures: learning rate and label "
               f"smoothing.", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="improved_cnn", metavar="NAME",
                        help="architecture to search (default improved_cnn; train.py "
                             "--list-archs lists them)")
    parser.add_argument("--trials", type=int, default=10, help="trials to add (default 10)")
    parser.add_argument("--space", help='searched options, e.g. "lr=log:1e-4:1e-2 '
                        'dropout=float:0.1:0.5 epochs=int:5:15 filters=choice:16-32-32|32-64-64" '
                        "(default: the architecture's space)")
    parser.add_argument("--epochs", type=int, help="epochs of every trial unless searched "
                        "(default: the architecture's)")
    parser.add_argument("--name", help="study name (default <arch>); the same name continues "
                        "the study")
    parser.add_argument("--data", type=path_text, help="data directory (default as train.py)")
    parser.add_argument("--seed", type=int, default=42, help="split, training and sampler seed")
    parser.add_argument("--out-dir", default="searches", help="where studies go (searches/)")
    parser.add_argument("--check", action="store_true", help="check the space (each choice "
                        "and bound as a trial would use it), the data and the models, and exit "
                        "without training or writing anything")
    add_executor_arguments(parser)
    add_tracking_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_command(lambda: _search(args),
                       interrupted="interrupted; run the same command again to continue the "
                                   "study")


def _search(args: argparse.Namespace) -> int:
    from kaggle_digits.models import get_model_spec
    from kaggle_digits.orchestration.search import run_search, space_for
    from kaggle_digits.training.config import TrainConfig

    get_model_spec(args.arch)  # Before --name, which defaults to it.
    if args.trials < 1:
        raise UserError(f"trials must be at least 1. Received: trials={args.trials}")
    check_tracking(args)
    base = TrainConfig(data_dir=args.data, seed=args.seed, split_seed=args.seed,
                       epochs=args.epochs).with_data_dir()
    executor = executor_from_args(args, parallel_used=args.executor != "local")
    if args.check:
        from kaggle_digits.orchestration.search import check_search
        from kaggle_digits.training.config import check_name

        check_name(args.name or args.arch, "name")
        space = space_for(args.arch, args.space)
        configs = check_search(args.arch, base, space)
        print(f"check passed: {len(configs)} configurations at the ends of the space of "
              f"{args.arch} ({', '.join(param.name for param in space)}), data "
              f"{base.data_dir}; nothing was trained or written")
        return 0
    with executor:
        table, search_dir = run_search(args.name or args.arch, args.arch, base, args.trials,
                                       space_for(args.arch, args.space), args.out_dir,
                                       executor, seed=args.seed)
    if args.track:
        from kaggle_digits.orchestration.tracking import log_study

        runs = sorted((search_dir / "runs").glob("trial-*"))
        report_tracking(log_study(f"search-{search_dir.name}", runs, [
            search_dir / name for name in ("summary.md", "summary.csv", "trials.png",
                                           "best_config.json")], args.tracking_uri), args)
    print((search_dir / "summary.md").read_text())
    print(f"study: {search_dir / 'study.db'}; picture: {search_dir / 'trials.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
