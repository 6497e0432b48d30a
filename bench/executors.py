#!/usr/bin/env python
"""One recipe several ways on this machine: one two-threaded member at a time (the local executor,
--parallel 1) against single-threaded members side by side (--parallel 2, and Ray with one CPU per
job).

  python bench/executors.py --recipe quick --data data/digit-recognizer

Prints a dated BENCHMARKS.md row per way: wall time, images/s over the whole recipe (training
epochs x training rows / wall), and the recipe's ensemble validation accuracy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import time
from pathlib import Path

from kaggle_digits.ensembles.recipe import run_recipe
from kaggle_digits.orchestration.executors import ExecutorOptions, make_executor
from kaggle_digits.training.config import TrainConfig


def measure(way: str, recipe: str, data_dir: str, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    base = TrainConfig(data_dir=data_dir, output_dir=str(out / "runs"),
                       submissions_dir=str(out / "subs"))
    executor = make_executor("ray" if way == "ray" else "local", ExecutorOptions(
        cpus_per_job=1, parallel=2 if way == "local2" else 1))
    started = time.perf_counter()
    with executor:
        members, result, _, _ = run_recipe(recipe, base, log=lambda _: None, executor=executor)
    wall = time.perf_counter() - started
    images = sum(m.metrics["epochs_run"] * m.metrics["train_rows"] for m in members)
    return {"way": way, "wall_s": wall, "images_per_s": images / wall, "images": images,
            "val_accuracy": result.val_accuracy, "members": len(members),
            "member_train_s": [m.metrics["train_time_s"] for m in members]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="quick")
    parser.add_argument("--data", default="data/digit-recognizer")
    parser.add_argument("--out", type=Path, default=Path("bench-runs") / "executors")
    parser.add_argument("--members", type=int, help="instead of --recipe: N improved_cnn "
                        "members of 5 epochs (seeds 0..N-1), like the quick recipe")
    parser.add_argument("--ways", default="local,local2,ray",
                        help="order of the measurements: local (--parallel 1), local2 "
                             "(--parallel 2), ray")
    args = parser.parse_args(argv)
    if args.members:
        from kaggle_digits.ensembles.recipe import RECIPES, Recipe

        args.recipe = f"bench{args.members}"
        RECIPES[args.recipe] = Recipe(f"{args.members} improved_cnn models of 5 epochs", tuple(
            (f"improved_cnn-e5-s{seed}", "improved_cnn", {"seed": seed, "epochs": 5})
            for seed in range(args.members)))
    rows = []
    for way in args.ways.split(","):
        figures = measure(way, args.recipe, args.data, args.out / way)
        rows.append(figures)
        print(f"{way}: {figures}", flush=True)
    print()
    for figures in rows:
        label = {"local": "local --parallel 1: one member at a time, 2 TensorFlow threads",
                 "local2": "local --parallel 2: 2 members at once, 1 thread each",
                 "ray": "ray: 2 members at once, 1 CPU and 1 thread each"}[figures["way"]]
        print(f"| {dt.date.today().isoformat()} | {os.cpu_count()} cores | {args.recipe} "
              f"({figures['members']} members) | {label} | {figures['wall_s']:.0f} s | "
              f"{figures['images_per_s']:,.0f} img/s | {figures['val_accuracy']:.4%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
