#!/usr/bin/env python
"""Benchmark the default training run end to end and append a dated row to bench/results/.

  python bench/run.py                      # full data (data/digit-recognizer), the defaults
  python bench/run.py --quick              # bundled sample, 2 epochs: checks the harness itself
  python bench/run.py --arch simple_cnn -- --epochs 5   # extra train.py options after --
  python bench/run.py --targets            # every target, one dated table
  python bench/run.py --targets --quick    # the same harness on the bundled sample

It runs ``scripts/train.py`` as a user would, in a child process, and records wall time (data
loading and prediction included), peak memory of the child, validation accuracy and the
submission verdict. The run directory is kept under runs/ (name starting with ``bench-``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from kaggle_digits.evaluation.metrics import format_accuracy
from kaggle_digits.orchestration import docs
from kaggle_digits.runs.rundir import RunDir

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/run.py` puts bench/, not the root, on the path.
    sys.path.insert(0, str(ROOT))


# The goals (issue 22): holdout for single runs, out-of-fold on every row for the bagged recipe.
SINGLE_GOAL, FAST_GOAL, ENSEMBLE_GOAL = 0.9965, 0.991, 0.9975
FULL_TRAIN_ROWS = 42_000
MEASURE_CHILD = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[2:])\n"
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(code)\n"
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_fields() -> dict:
    """Where a result was measured: the date, the commit, the CPU and the flags that decide its
    speed (AVX-512 and bfloat16 instructions, or AVX2 only)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("flags")).split(":", 1)[1].split()
    except (OSError, StopIteration):
        flags = []
    speed_flags = [flag for flag in flags if flag in (
        "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16")]
    return {"date": dt.date.today().isoformat(), "commit": commit,
            "machine": f"{os.cpu_count()} cores, {cpu_model()}",
            "cpu_flags": " ".join(speed_flags) or None}


def run_measured(command: list[str]) -> tuple[int, float, float]:
    """Run a command; return its exit code, wall seconds and peak RSS in GiB (its own only)."""
    import tempfile

    with tempfile.NamedTemporaryFile("r", suffix=".rss") as peak_file:
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-c", MEASURE_CHILD, peak_file.name, *command],
                               cwd=ROOT)
        wall = time.perf_counter() - started
        peak_kib = float(peak_file.read() or 0)
    return code, wall, peak_kib / 1024**2


def train_child(args_list: list[str], data_dir: Path, name: str) -> tuple[dict, float, float]:
    run_dir = ROOT / "runs" / f"bench-{dt.datetime.now():%Y%m%d-%H%M%S}-{name}"
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), "--data", str(data_dir),
               "--output-dir", str(run_dir.parent), "--run-name", run_dir.name, *args_list]
    print("+", " ".join(command), flush=True)
    code, wall, peak = run_measured(command)
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} failed with exit code {code}")
    return RunDir(run_dir).read_metrics(), wall, peak


def ensemble_record(path: Path) -> dict | None:
    """The record a recipe wrote beside its submission, if it has the fields a target needs."""
    import json

    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not (record.get("wall_s") and record.get("against_best_member")):
        return None
    if record.get("members_trained") != len(record["members"]):
        print(f"{path}: that command reused members trained earlier; its wall time is not the "
              f"ensemble's. Delete runs/{path.stem.rsplit('-', 1)[0]} and train the recipe again")
        return None
    return record


# The ensemble targets: the name a row is known by, the command, and the record it wrote.
ENSEMBLE_TARGETS = (("default ensemble", "`make ensemble`: `--recipe bagged`", "ensemble_record"),
                    ("pseudo-label ensemble", "`--recipe pseudo`", "pseudo_record"))


def ensemble_target(name: str, command: str, ensemble: dict) -> tuple[str, str, str, bool]:
    """The ensemble target's row: out-of-fold when the record scores every labelled row."""
    versus = ensemble["against_best_member"]
    scored = ("out-of-fold, every labelled row" if ensemble["val_rows"] >= FULL_TRAIN_ROWS
              else "holdout")
    met = (ensemble["val_accuracy"] >= ENSEMBLE_GOAL and ensemble["wall_s"] <= 3600
           and versus["ensemble_only_right"] > versus["member_only_right"]
           and versus["mcnemar_p"] < 0.05)
    return (f"{name} ({command}, {len(ensemble['members'])} members, {ensemble['method']}; "
            f"{scored})",
            f">= {ENSEMBLE_GOAL:.2%} in <= 3600 s wall, better than its best member with "
            f"McNemar p < 0.05",
            f"{format_accuracy(ensemble['val_accuracy'], ensemble['val_rows'])} in "
            f"{ensemble['wall_s']:.0f} s; best member {versus['member']} "
            f"{versus['member_accuracy']:.2%}; ensemble alone right on "
            f"{versus['ensemble_only_right']} rows, member alone on "
            f"{versus['member_only_right']}, p = {versus['mcnemar_p']:.2g}", met)


def measure_targets(args) -> int:
    """Every target on one machine in one session, one dated row each."""
    from bench.throughput import measure_throughput  # TensorFlow: not for --help (7 s).
    from kaggle_digits.data.load import load_competition_data

    data_dir = ROOT / "data" / "sample" if args.quick else Path(args.data)
    epochs = ["--epochs", "2"] if args.quick else []
    rows = []

    def record(target, goal, measured, met):
        rows.append((target, goal, measured, "yes" if met else "no"))
        print(f"{target}: {measured} (goal {goal}) -> {'met' if met else 'NOT met'}", flush=True)

    data = load_competition_data(data_dir)
    probe_rows = 2048 if args.quick else 8192
    rates = measure_throughput(data.train_images[:probe_rows], data.train_labels[:probe_rows],
                               repeats=1 if args.quick else 5)
    plain, ours = rates["plain fit (float32 arrays)"], rates["DigitBatches"]
    record("simple_cnn throughput vs plain model.fit (batch 64, same process, median of "
           f"{len(rates['repeats']['DigitBatches'])})", ">= 1.00x",
           f"{ours:,.0f} vs {plain:,.0f} img/s = {ours / plain:.2f}x (pairs "
           f"{', '.join(f'{r:.2f}' for r in rates['pair ratios'])}); augmented "
           f"{rates['DigitBatches + augmentation']:,.0f} img/s, input wait "
           f"{rates['input wait share (augmented)']:.1%} of step time", ours >= plain)

    # Seeds 0-4: five runs of one seed are one run five times (training is seeded).
    fast_runs = [train_child(["--preset", "fast", "--seed", str(seed), *epochs], data_dir,
                             f"fast-s{seed}")[0] for seed in range(1 if args.quick else 5)]
    fast_time = statistics.median(run["train_time_s"] for run in fast_runs)
    fast_accuracy = statistics.median(run["val_accuracy"] for run in fast_runs)
    reached = sum(run["val_accuracy"] >= FAST_GOAL for run in fast_runs)
    record(f"--preset fast: validation accuracy and training time (holdout; median of "
           f"{len(fast_runs)} seeds)", f">= {FAST_GOAL:.1%} in <= 10 s of training",
           f"{format_accuracy(fast_accuracy, fast_runs[0]['val_rows'])} after {fast_time:.1f} s "
           f"({fast_runs[0]['epochs_run']} epochs; seeds "
           + ", ".join(f"{run['val_accuracy']:.2%}/{run['train_time_s']:.1f} s"
                       for run in fast_runs)
           + f"; {reached} of {len(fast_runs)} at or above {FAST_GOAL:.1%})",
           fast_accuracy >= FAST_GOAL and fast_time <= 10)

    default, wall, peak = train_child(["--arch", "improved_cnn", *epochs], data_dir,
                                      "improved_cnn")
    record("improved_cnn defaults: accuracy and wall time (holdout)",
           f">= {SINGLE_GOAL:.2%} in <= 300 s",
           f"{format_accuracy(default['val_accuracy'], default['val_rows'])} in {wall:.0f} s "
           f"({default['epochs_run']} epochs, {default['train_time_s']:.0f} s training)",
           default["val_accuracy"] >= SINGLE_GOAL and wall <= 300)
    record("peak memory training improved_cnn", "<= 3 GiB", f"{peak:.2f} GiB", peak <= 3)
    record("predict the test rows", "<= 10 s",
           f"{default['predict_test_time_s']:.1f} s for {default['test_rows']:,} rows",
           default["predict_test_time_s"] <= 10)

    for name, command, record_option in ENSEMBLE_TARGETS:
        path = getattr(args, record_option)
        ensemble = ensemble_record(Path(path))
        if ensemble and not args.quick:
            record(*ensemble_target(name, command, ensemble))
        else:
            print(f"{name} not measured: no usable {path}; train it with {command} first")

    versions = default["versions"]
    where = {**machine_fields(), "versions": f"{versions['tensorflow']} / {versions['keras']}",
             "data": "sample" if args.quick else "full"}
    for target, goal, measured, met in rows:
        row = {**where, "target": target, "goal": goal, "measured": measured, "met": met}
        print(json.dumps(row, ensure_ascii=False))
        if not args.no_record:
            docs.append_result("targets", row)
    return 0


def measured_row(metrics: dict, quick: bool, extra: list[str], wall: float, peak_gib: float,
                 verdict: str) -> dict:
    """The runs.jsonl row of one timed training: what trained (the run's own record, so an
    ``--arch`` among the train.py options after ``--`` is the one named), on what, how well."""
    versions = metrics["versions"]
    if metrics["val_accuracy"] is None:  # --full: every row trained on, none held out.
        accuracy, loss = "none (full-data fit)", None
    else:
        low, high = metrics["val_accuracy_ci95"]
        accuracy = f"{metrics['val_accuracy']:.4%} ({low:.2%}–{high:.2%})"
        loss = f"{metrics['val_loss']:.4f}"
    return {**machine_fields(), "versions": f"{versions['tensorflow']} / {versions['keras']}",
            "arch": metrics["arch"],  # What trained: train.py options after -- may change it.
            "data": (f"{'sample' if quick else 'full'} "
                     f"({metrics['train_rows']}/{metrics['val_rows']})"),
            "options": " ".join(extra) or "defaults", "epochs": metrics["epochs_run"],
            "val_accuracy": accuracy,
            "val_loss": loss, "train_s": f"{metrics['train_time_s']:.0f}",
            "s_per_epoch": f"{metrics['time_per_epoch_s']:.1f}", "wall_s": f"{wall:.0f}",
            "peak_rss_gib": f"{peak_gib:.2f}",
            "submission": f"{metrics['test_rows']} rows, {verdict}"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="bundled sample, 2 epochs")
    parser.add_argument("--targets", action="store_true", help="measure every performance "
                        "target (throughput, --preset fast, default run, memory, prediction, "
                        "default and bagged ensembles) and append one dated row each to "
                        "bench/results/targets.jsonl")
    parser.add_argument("--arch", default="improved_cnn")
    parser.add_argument("--data", default=str(ROOT / "data" / "digit-recognizer"))
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/results/")
    parser.add_argument("--ensemble-record",
                        default=str(ROOT / "submissions" / "recipe-bagged-mean.json"),
                        help="the record `make ensemble` (`ensemble.py --recipe bagged`) wrote "
                             "beside its submission (out-of-fold scores)")
    parser.add_argument("--pseudo-record",
                        default=str(ROOT / "submissions" / "recipe-pseudo-mean.json"),
                        help="the record `ensemble.py --recipe pseudo` wrote (holdout scores)")
    parser.add_argument("train_args", nargs="*", help="extra scripts/train.py options (after --)")
    args = parser.parse_args(argv)
    if args.targets:
        return measure_targets(args)

    data_dir = ROOT / "data" / "sample" if args.quick else Path(args.data)
    extra = list(args.train_args) + (["--epochs", "2"] if args.quick else [])
    run_dir = ROOT / "runs" / f"bench-{dt.datetime.now():%Y%m%d-%H%M%S}-{args.arch}"
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), "--arch", args.arch,
               "--data", str(data_dir), "--output-dir", str(run_dir.parent),
               "--run-name", run_dir.name, *extra]
    print("+", " ".join(command), flush=True)
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT)
    wall = time.perf_counter() - started
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    if completed.returncode != 0:
        print(f"error: training failed with exit code {completed.returncode}", file=sys.stderr)
        return completed.returncode
    metrics = RunDir(run_dir).read_metrics()
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "validate.py"),
                            str(RunDir(run_dir).submission_path), "--data", str(data_dir)],
                           cwd=ROOT, capture_output=True, text=True)
    verdict = "valid" if check.returncode == 0 else "not valid for Kaggle"
    row = measured_row(metrics, args.quick, extra, wall, peak_gib, verdict)
    print(json.dumps(row, ensure_ascii=False))
    print(f"run directory: {run_dir}")
    if not args.no_record:
        path = docs.append_result("runs", row)
        print(f"appended to {path}; python tools/update_readme.py shows it in BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
