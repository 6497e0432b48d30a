"""Train one architecture on a stratified train/validation split and write a submission.

Examples:
  python scripts/train.py --arch improved_cnn
  python scripts/train.py --arch simple_cnn --epochs 5 --no-augment
  python scripts/train.py --config runs/20261121-203000-improved_cnn/config.json   # repeat a run
  python scripts/train.py --folds 5                 # 5 models, out-of-fold validation,
                                                    # two folds at a time on 2 cores
  python scripts/train.py --full --epochs 15         # final fit on every labelled row
  python scripts/train.py --resume runs/20261121-203000-improved_cnn   # after Ctrl-C or a crash
  python scripts/train.py --full --teacher runs/recipe-bagged   # one model taught by an ensemble
  python scripts/train.py --list-archs
"""

from __future__ import annotations

import argparse
import sys

from kaggle_digits import UserError
from kaggle_digits.cli.common import (
    EXECUTOR_OPTIONS,
    TRACKING_OPTIONS,
    add_executor_arguments,
    add_tracking_arguments,
    check_executor_args,
    check_tracking,
    executor_from_args,
    flag_of,
    options_named,
    parallel_fits,
    path_text,
    path_value,
    report_tracking,
    run_command,
)


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def build_parser() -> argparse.ArgumentParser:
    from kaggle_digits.training.config import (
        LR_SCHEDULES,
        OPTIMIZERS,
        PRECISIONS,
        PRESETS,
        STRATEGIES,
    )

    parser = argparse.ArgumentParser(
        description="Train a digit classifier on an 80/20 stratified split; writes "
                    "runs/<timestamp>-<arch>/ (config, model.keras, history.csv, metrics.json, "
                    "probabilities, submission.csv) and submissions/<run-name>.csv.",
        epilog="Options left out take the architecture's defaults (see --list-archs), or the "
               "values of --config when given.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Names are checked where the config is made: listing them here would load Keras for --help.
    parser.add_argument("--arch", metavar="NAME",
                        help="architecture (default improved_cnn; see --list-archs)")
    parser.add_argument("--list-archs", action="store_true", help="list architectures and exit")
    parser.add_argument("--check", action="store_true", help="check everything the run would "
                        "use (settings, data files, rows to exclude, teachers, the model built "
                        "once) and exit without training or writing anything")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a named starting point: "
                        "fast = fast_cnn for two epochs at a hot one-cycle rate: the quickest "
                        "route to a usable model (its measured accuracy and time: "
                        "docs/results.md)")
    parser.add_argument("--config", type=path_value, help="config.json of an earlier run to repeat")
    parser.add_argument("--exclude-rows", dest="exclude_rows_file", type=path_value, metavar="CSV",
                        help="train without the train.csv rows in the CSV's 'row' column "
                             "(label_issues.csv from report.py --label-issues); every score "
                             "still counts every row")
    parser.add_argument("--data", dest="data_dir", type=path_text,
                        help="directory with train.csv and test.csv "
                        "(default: data/digit-recognizer/, /kaggle/input/digit-recognizer/ in a "
                        "Kaggle notebook, else the bundled sample)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", "--learning-rate", dest="learning_rate", type=float,
                        help="peak learning rate")
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES,
                        help="cosine: warm-up then cosine decay; plateau: halve on a val-loss "
                             "plateau; constant")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction,
                        help="albumentations rotations/shifts/zooms/shears on training batches")
    warp = parser.add_argument_group("augmentation ranges (with --augment; each warp draws "
                                     "uniformly within them)")
    warp.add_argument("--rotate", dest="rotate_deg", type=float, metavar="DEG",
                      help="rotation up to +-DEG degrees (default 10)")
    warp.add_argument("--shift", dest="shift_fraction", type=float, metavar="FRACTION",
                      help="shift up to +-FRACTION of the image size (default 0.1)")
    warp.add_argument("--zoom", dest="zoom_fraction", type=float, metavar="FRACTION",
                      help="scale by 1 +- FRACTION (default 0.1)")
    warp.add_argument("--shear", dest="shear_deg", type=float, metavar="DEG",
                      help="shear up to +-DEG degrees (default 5)")
    warp.add_argument("--crop", dest="crop_size", type=int, metavar="PIXELS",
                      help="first a random PIXELS x PIXELS crop resized back to 28x28, e.g. 25 "
                           "(default 0 = off)")
    warp.add_argument("--grid-distort", type=float, metavar="LIMIT",
                      help="then a grid distortion: each grid line moves by up to LIMIT of a "
                           "cell, e.g. 0.3 (default 0 = off)")
    warp.add_argument("--grid-steps", type=int, metavar="N",
                      help="cells per side of the grid distortion (default 4)")
    warp.add_argument("--elastic", dest="elastic_alpha", type=float, metavar="ALPHA",
                      help="then an elastic distortion (Simard et al. 2003) of strength ALPHA "
                           "pixels, e.g. 34 (default 0 = off)")
    warp.add_argument("--elastic-sigma", type=float, metavar="SIGMA",
                      help="smoothness of the elastic distortion's field, in pixels (default 4)")
    parser.add_argument("--input-width", type=int, metavar="PIXELS",
                        help="the model rescales each digit's bounding box to PIXELS wide (its "
                             "height kept, re-centred by centre of mass), at training and "
                             "prediction alike: Ciresan's width normalization, a member that "
                             "sees the digits differently (default 0 = the digits as given)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, help="default adam")
    parser.add_argument("--adam-beta-1", type=float, metavar="B1",
                        help="Adam's first-moment decay (default 0.9)")
    parser.add_argument("--adam-beta-2", type=float, metavar="B2",
                        help="Adam's second-moment decay (default 0.999)")
    parser.add_argument("--warmup-epochs", type=float, metavar="E",
                        help="cosine schedule: epochs of linear warm-up before the decay "
                             "(default 1; at most half the run)")
    parser.add_argument("--label-smoothing", type=float, metavar="EPS",
                        help="train against targets smoothed by EPS (0 = off; default: the "
                             "architecture's, see --list-archs)")
    parser.add_argument("--ema", dest="ema_momentum", type=float, metavar="MOMENTUM",
                        help="validate, checkpoint and keep an exponential moving average of "
                             "the weights, e.g. 0.999 (default 0 = off)")
    distill = parser.add_argument_group(
        "distillation (a student learns from an ensemble's probabilities as well as the labels)")
    distill.add_argument("--teacher", action="append", metavar="RUN_DIR",
                         type=lambda path: str(path_value(path).resolve()),
                         help="a finished run, or a folder of runs such as runs/recipe-bagged; "
                              "repeat for more. Only teacher models that never trained on the "
                              "rows this run is judged on teach it: use --folds K with a k-fold "
                              "teacher's --split-seed, or --full")
    distill.add_argument("--distill-weight", type=float, metavar="W",
                         help="share of the teacher in each training target, the rest the "
                              "label (default 0.9: a label-smoothed teacher's targets are then "
                              "about as soft as label smoothing, shaped by what it confuses)")
    distill.add_argument("--distill-temperature", type=float, metavar="T",
                         help="soften the teacher's probabilities as softmax(logits / T) "
                              "(default 1)")
    model = parser.add_argument_group("model options (architectures that take them)")
    model.add_argument("--filters", help="CNN filter counts, e.g. 16,32,32 (simple_cnn: 3 "
                       "values, improved_cnn: 4)")
    model.add_argument("--kernel-size", type=int, help="CNN kernel size")
    model.add_argument("--stride", type=int, help="stride of the first convolution")
    model.add_argument("--stem", choices=("conv5", "space_to_depth"), help="improved_cnn's "
                       "input stage: conv5 (default) a 5x5 convolution at 28x28, then pooling; "
                       "space_to_depth a 3x3 convolution on 2x2 pixel blocks at 14x14 (faster, "
                       "a little behind: docs/results.md)")
    model.add_argument("--stem-norm", choices=("batch", "none"), help="improved_cnn: batch "
                       "(default) normalises the stem's output; none drops that batch norm "
                       "(the stem convolution keeps a bias): a little faster, accuracy within "
                       "noise (docs/results.md)")
    model.add_argument("--padding", choices=("valid", "same"), help="simple_cnn padding "
                       "(default valid, as the tutorial; stride 2 needs same)")
    model.add_argument("--activation", help="activation function, e.g. relu, sigmoid, elu")
    model.add_argument("--dropout", type=float, help="dropout rate")
    model.add_argument("--weights", help="transfer models: imagenet (needs internet), none, or "
                       "a weights file")
    model.add_argument("--fine-tune", type=int, metavar="N", help="transfer models: unfreeze the "
                       "base's top N layers (default learning rate drops to 1e-4)")
    parser.add_argument("--seed", type=int, help="seed for weights, shuffling and augmentation "
                        "(default 42)")
    parser.add_argument("--split-seed", type=int, help="seed that picks the validation rows "
                        "(default 42); keep it equal across runs you want to ensemble")
    parser.add_argument("--val-split", type=float, help="validation fraction (default 0.2)")
    parser.add_argument("--patience", type=int,
                        help="early-stopping patience in epochs (default 6)")
    parser.add_argument("--folds", type=int, metavar="K", help="train K models on stratified "
                        "folds; out-of-fold accuracy is the validation figure and the test "
                        "probabilities are the fold average")
    parser.add_argument("--full", action="store_true", default=None,
                        help="final fit on every labelled row for exactly --epochs epochs "
                             "(no validation, no early stopping)")
    parser.add_argument("--tta", type=int, metavar="N", help="average predictions over N fixed "
                        "shifts/rotations (1 = off, the default; at most 11)")
    parser.add_argument("--deterministic", action="store_true", default=None,
                        help="deterministic TensorFlow ops: the same seed and data give the same "
                             "metrics (CPU), a little slower")
    parser.add_argument("--strategy", choices=STRATEGIES, help="mirrored: tf.distribute."
                        "MirroredStrategy across all local GPUs (batch split between them); "
                        "default: one device (a GPU is used when present)")
    parser.add_argument("--precision", choices=PRECISIONS, help="the dtype policy the model "
                        "computes in (default float32): mixed_bfloat16 keeps float32 weights and "
                        "softmax; it needs bfloat16 instructions (AVX-512 BF16 or AMX) or a GPU, "
                        "and a CPU without them emulates it, several times slower "
                        "(docs/results.md)")
    parser.add_argument("--resume", type=path_value, metavar="RUN_DIR",
                        help="continue an interrupted "
                        "run from its last completed epoch, as it was configured; only --data "
                        "and --submissions-dir (where it reads and copies to) may change")
    parser.add_argument("--tensorboard", action="store_true", default=None,
                        help="write TensorBoard logs to RUN_DIR/tensorboard (it costs training "
                             "time on a small CPU)")
    parser.add_argument("--output-dir", help="where run directories go (default runs/)")
    parser.add_argument("--submissions-dir",
                        help="where submission copies go (default submissions/)")
    parser.add_argument("--run-name", help="run directory name (default <timestamp>-<arch>)")
    add_tracking_arguments(parser)
    add_executor_arguments(parser, "with --folds K: the folds, each a job of its own")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_archs:
        for name, (description, defaults) in architectures().items():
            shown = ", ".join(f"{key} {value}" for key, value in defaults.items())
            print(f"{name:16s} {description}\n{'':16s} defaults: {shown}")
        return 0
    return run_command(lambda: _train(args, parser),
                       interrupted="interrupted before training started; nothing to resume")


# What this command does with its options: the rest are training settings, by their TrainConfig
# or builder names.
COMMAND_OPTIONS = ("list_archs", "check", "config", "resume", "preset", "exclude_rows_file")
NOT_SETTINGS = (*COMMAND_OPTIONS, *TRACKING_OPTIONS, *EXECUTOR_OPTIONS)
# What a resumed run may be given: where it reads its data and copies its submission, where its
# folds run and whether it is tracked. Every other option would change what the run learns, and
# a resumed run continues as it was configured.
RESUME_OPTIONS = ("data_dir", "submissions_dir", *TRACKING_OPTIONS, *EXECUTOR_OPTIONS)


def architectures() -> dict[str, tuple[str, dict]]:
    """Each architecture's description and training defaults: the registry's where the models
    are loaded (architectures registered by the user's own modules included), else read from
    the source without loading TensorFlow."""
    if "kaggle_digits.models.registry" in sys.modules:
        from kaggle_digits.models import get_model_spec, list_models

        return {name: (get_model_spec(name).description, get_model_spec(name).train_defaults)
                for name in list_models()}
    from kaggle_digits.cli.catalog import static_catalog

    return static_catalog()


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from kaggle_digits.runs.rundir import RunDir
    from kaggle_digits.training.config import PRESETS, TrainConfig
    from kaggle_digits.training.run import resume

    check_tracking(args)
    if args.resume:
        others = sorted(key for key, value in vars(args).items()
                        if value not in (None, False) and key not in ("resume", *RESUME_OPTIONS))
        if others:
            flags = ", ".join(flag_of(parser, key) for key in others)
            raise UserError(f"--resume continues {args.resume} as it was configured; only "
                             f"--data, --submissions-dir and where the folds run (--parallel, "
                             f"--executor) may be given with it. Received: {flags}")
        resumed = RunDir(args.resume)
        if _folds_as_jobs(args) and resumed.resumable and resumed.read_config().folds > 1:
            from kaggle_digits.training.kfold import resume_kfold_with

            with executor_from_args(args) as executor:
                metrics, run_dir = resume_kfold_with(executor, args.resume,
                                                     data_dir=args.data_dir,
                                                     submissions_dir=args.submissions_dir)
        else:
            metrics, run_dir = resume(args.resume, data_dir=args.data_dir,
                                      submissions_dir=args.submissions_dir)
        return _finish(metrics, run_dir, args)
    config = (TrainConfig() if not args.config else RunDir(args.config).read_config()
              if args.config.is_dir() else TrainConfig.load(args.config))
    changes = dict(PRESETS[args.preset]) if args.preset else {}
    given = {key: value for key, value in vars(args).items()
             if value is not None and key not in NOT_SETTINGS}
    changes.update(given)
    # --dropout and the other flags by the same names; the data directory resolved once, here.
    # A refusal of a value given as an option, wherever it is found, names that option.
    with options_named(parser, given):
        return _train_config(config.override(changes).with_data_dir(), args)


def _train_config(config, args: argparse.Namespace) -> int:
    if not args.exclude_rows_file:
        return _train_resolved(config, args)
    from kaggle_digits.evaluation.label_issues import read_excluded_rows

    excluded = read_excluded_rows(args.exclude_rows_file, config.data_dir)
    try:
        return _train_resolved(config.override({"exclude_rows": excluded}), args)
    except UserError as exc:  # The rows it leaves are the file's doing: name it.
        if "exclude_rows" not in str(exc):
            raise
        raise UserError(f"--exclude-rows {args.exclude_rows_file}: {exc}") from None


def _train_resolved(config, args: argparse.Namespace) -> int:
    from kaggle_digits.training.run import check, train

    config.run_name = args.run_name  # A repeat gets a directory of its own.
    config.versions = {}  # A repeat records the versions it runs with.
    check_executor_args(args, parallel_used=config.folds > 1)
    if args.check:
        [config] = check([config])
        print(f"check passed: {config.arch}, {_plan(config)}, data {config.data_dir}; nothing "
              f"was trained or written")
        return 0
    if config.folds > 1 and _folds_as_jobs(args):
        from kaggle_digits.training.kfold import train_kfold_with

        with executor_from_args(args) as executor:
            metrics, run_dir = train_kfold_with(executor, config)
    elif args.executor != "local":
        raise UserError("--executor ray spreads the folds of --folds K; a single run trains "
                         "here (leave --executor out)")
    else:
        metrics, run_dir = train(config)
    return _finish(metrics, run_dir, args)


def _plan(config) -> str:
    if config.folds > 1:
        return f"{config.folds} folds"
    return "every labelled row" if config.full else f"validation share {config.val_split:g}"


def _folds_as_jobs(args: argparse.Namespace) -> bool:
    """Whether a k-fold run's folds go to an executor (else one after another, here)."""
    return args.executor != "local" or parallel_fits(args) > 1


def _finish(metrics, run_dir, args: argparse.Namespace) -> int:
    """Print where a finished run's outputs went, and track it if asked."""
    from kaggle_digits.evaluation.metrics import format_accuracy
    from kaggle_digits.runs.rundir import RunDir

    if metrics["val_accuracy"] is None:
        print(f"\nfull-data fit: {metrics['train_rows']} rows, {metrics['epochs_run']} epochs, "
              f"{metrics['train_time_s']:.0f}s training (no validation score)")
    else:
        kind = "out-of-fold accuracy" if metrics["kind"] == "kfold" else "validation accuracy"
        print(f"\n{kind}: {format_accuracy(metrics['val_accuracy'], metrics['val_rows'])}; "
              f"loss {metrics['val_loss']:.4f} ("
              f"{metrics['epochs_run']} epochs, {metrics['train_time_s']:.0f}s training)")
    print(f"run directory:       {run_dir}")
    models = RunDir(run_dir).model_paths()
    print(f"model:               {models[0] if len(models) == 1 else run_dir / 'folds'} "
          + (f"({len(models)} fold models)" if len(models) > 1 else ""))
    print(f"submission:          {metrics['submission']}")
    if metrics["is_sample"]:
        print("NOTE: trained on the bundled sample; fetch the real data before submitting.")
    else:
        description = (f"{metrics['arch']} full-data fit" if metrics["val_accuracy"] is None
                       else f"{metrics['arch']} {metrics['val_accuracy']:.4%}")
        print(f"submit with:         kaggle competitions submit -c digit-recognizer "
              f"-f {metrics['submission']} -m \"{description}\"")
    if args.track:
        from kaggle_digits.orchestration.tracking import log_run

        try:
            report_tracking(log_run(run_dir, args.tracking_uri), args)
        except UserError as exc:
            raise UserError(f"the run finished ({run_dir}) but was not tracked: {exc}") \
                from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
