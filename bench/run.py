#!/usr/bin/env python
"""Benchmark the default training run end to end and append a dated row to BENCHMARKS.md.

  python bench/run.py                      # full data (data/digit-recognizer), improved_cnn defaults
  python bench/run.py --quick              # bundled sample, 2 epochs: checks the harness itself
  python bench/run.py --arch simple_cnn -- --epochs 5   # extra train.py options after --

It runs ``scripts/train.py`` as a user would, in a child process, and records wall time (data loading
and prediction included), peak memory of the child, validation accuracy and the submission verdict.
The run directory is kept under runs/ (name starting with ``bench-``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"
TABLE_HEADER = (
    "| date | machine | TF / Keras | arch | data | options | epochs | val acc | val loss | "
    "train s | s/epoch | wall s | peak RSS GiB | submission |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
)
TABLE_TITLE = "## Default training runs (bench/run.py)\n\n"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def append_row(row: str) -> None:
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n\n"
    if TABLE_TITLE not in text:
        text = text.rstrip() + "\n\n" + TABLE_TITLE + TABLE_HEADER
    head, tail = text.split(TABLE_TITLE, 1)
    table_end = tail.find("\n\n")
    table, rest = (tail, "") if table_end < 0 else (tail[:table_end + 1], tail[table_end + 1:])
    BENCHMARKS.write_text(head + TABLE_TITLE + table.rstrip("\n") + "\n" + row + "\n" + rest)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="bundled sample, 2 epochs")
    parser.add_argument("--arch", default="improved_cnn")
    parser.add_argument("--data", default=str(ROOT / "data" / "digit-recognizer"))
    parser.add_argument("--no-record", action="store_true", help="do not touch BENCHMARKS.md")
    parser.add_argument("train_args", nargs="*", help="extra scripts/train.py options (after --)")
    args = parser.parse_args(argv)

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
    metrics = json.loads((run_dir / "metrics.json").read_text())
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "validate.py"),
                            str(run_dir / "submission.csv"), "--data", str(data_dir)],
                           cwd=ROOT, capture_output=True, text=True)
    verdict = "valid" if check.returncode == 0 else "not valid for Kaggle"
    versions = metrics["versions"]
    row = (f"| {dt.date.today().isoformat()} | {os.cpu_count()} cores, {cpu_model()} | "
           f"{versions['tensorflow']} / {versions['keras']} | {args.arch} | "
           f"{'sample' if args.quick else 'full'} ({metrics['train_rows']}/{metrics['val_rows']}) | "
           f"{' '.join(extra) or 'defaults'} | {metrics['epochs_run']} | "
           f"{metrics['val_accuracy']:.4%} | {metrics['val_loss']:.4f} | "
           f"{metrics['train_time_s']:.0f} | {metrics['time_per_epoch_s']:.1f} | {wall:.0f} | "
           f"{peak_gib:.2f} | {metrics['test_rows']} rows, {verdict} |")
    print(row)
    print(f"run directory: {run_dir}")
    if not args.no_record:
        append_row(row)
        print(f"appended to {BENCHMARKS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
