"""One table across finished runs (seed report 000's Table 1): what each model costs and scores."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_digits import UserError
from kaggle_digits.evaluation.metrics import accuracy_interval, mcnemar_exact
from kaggle_digits.runs.io import atomic_path, write_text_atomic
from kaggle_digits.runs.rundir import RunDir, RunStatus, SkippedRun

COLUMNS = ("run", "arch", "parameters", "val_accuracy", "ci95_low", "ci95_high",
           "mcnemar_p_vs_best", "val_loss", "epochs_run", "time_per_epoch_s", "train_time_s",
           "data")


def run_summary(run_dir: str | os.PathLike) -> dict:
    """The comparison row of one run directory.

    Raises:
        ValueError: the directory is not a finished run (failed, unfinished or not a run).
    """
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise UserError("not a directory")
    if run.status is RunStatus.FAILED:
        raise UserError(f"failed run ({run.failure_reason()})")
    try:
        metrics = run.read_metrics()
    except UserError as exc:
        raise UserError(str(exc).removeprefix(f"{run}: ")) from None
    if metrics.get("val_accuracy") is None:
        raise UserError("no validation score (a full-data run)")
    return {
        "run": run.name,
        "arch": metrics.get("arch"),
        "parameters": metrics.get("parameters"),
        "val_accuracy": metrics["val_accuracy"],
        "val_loss": metrics.get("val_loss"),
        "epochs_run": metrics.get("epochs_run"),
        "time_per_epoch_s": metrics.get("time_per_epoch_s"),
        "train_time_s": metrics.get("train_time_s"),
        "data": "sample" if metrics.get("is_sample") else "full",
        **_interval(metrics),
    }


def _interval(metrics: dict) -> dict:
    rows = metrics.get("val_rows")
    if not rows:
        return {"ci95_low": None, "ci95_high": None}
    low, high = accuracy_interval(round(metrics["val_accuracy"] * rows), rows)
    return {"ci95_low": low, "ci95_high": high}


def _correct_rows(run_dir: Path) -> tuple[str, np.ndarray] | None:
    """Which validation rows a run got right, and the hash naming those rows."""
    run = RunDir(run_dir)
    if not (run.has_array("val_probs") and run.has_array("val_labels")):
        return None
    split = (run.read_metrics().get("split") or {}).get("val_indices_sha256")
    correct = run.load_array("val_probs").argmax(axis=1) == run.load_array("val_labels")
    return split, correct


def _mcnemar_against_best(paths: list[Path]) -> list:
    """McNemar's exact p-value of each run (best first) against the best one, where both were
    validated on the same rows (the hash of their row indices); None where that cannot be said."""
    if not paths:
        return []
    best = _correct_rows(paths[0])
    values = []
    for path in paths:
        other = _correct_rows(path)
        same_rows = (best is not None and other is not None and best[0] is not None
                     and best[0] == other[0])
        values.append(mcnemar_exact(best[1], other[1])["p_value"] if same_rows else None)
    return values


def compare_runs(run_dirs) -> tuple[pd.DataFrame, list[SkippedRun]]:
    """Rows of the finished runs, best validation accuracy first, and the runs left out.

    Runs are told apart by their path, not their folder name: every sweep names its runs
    ``01-<arch>``, every search ``trial-000``. Where names repeat, the table shows the paths.
    """
    rows, skipped, paths = [], [], []
    for run_dir in run_dirs:
        try:
            rows.append(run_summary(run_dir))
            paths.append(Path(run_dir))
        except UserError as exc:
            skipped.append(SkippedRun(Path(run_dir), str(exc)))
    names = [row["run"] for row in rows]
    for row, path in zip(rows, paths):
        if names.count(row["run"]) > 1:
            row["run"] = str(path)
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    order = table.sort_values("val_accuracy", ascending=False, kind="stable").index
    table = table.loc[order].reset_index(drop=True)
    table["mcnemar_p_vs_best"] = _mcnemar_against_best([paths[i] for i in order])
    return table, skipped


def format_markdown(table: pd.DataFrame) -> str:
    lines = ["| run | arch | parameters | val accuracy | 95% CI | McNemar p vs best | val loss | "
             "epochs | s/epoch | train s | data |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in table.itertuples(index=False):
        interval = ("–" if pd.isna(row.ci95_low)
                    else f"{row.ci95_low:.2%}–{row.ci95_high:.2%}")
        lines.append(
            f"| {row.run} | {row.arch} | {_number(row.parameters, '{:,.0f}')} | "
            f"{row.val_accuracy:.4%} | {interval} | {_number(row.mcnemar_p_vs_best, '{:.3g}')} | "
            f"{_number(row.val_loss, '{:.4f}')} | "
            f"{_number(row.epochs_run, '{:.0f}')} | {_number(row.time_per_epoch_s, '{:.1f}')} | "
            f"{_number(row.train_time_s, '{:.0f}')} | {row.data} |")
    return "\n".join(lines) + "\n"


def _number(value, pattern: str) -> str:
    return "–" if value is None or pd.isna(value) else pattern.format(value)


def plot_comparison(table: pd.DataFrame, out_png: str | os.PathLike) -> Path:
    """Horizontal bars of validation accuracy, best on top, with train time in the labels."""
    from kaggle_digits.evaluation.plots import plt, save_figure

    fig, axis = plt.subplots(figsize=(9, 1.2 + 0.45 * max(len(table), 1)))
    ordered = table.iloc[::-1]
    labels = [row.run if str(row.arch) in row.run else f"{row.run} ({row.arch})"
              for row in ordered.itertuples()]
    accuracy = ordered["val_accuracy"].to_numpy() * 100
    bars = axis.barh(range(len(ordered)), accuracy, color="tab:blue")
    for bar, row in zip(bars, ordered.itertuples()):
        seconds = "" if pd.isna(row.train_time_s) else f", {row.train_time_s:.0f} s"
        axis.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                  f" {row.val_accuracy:.2%}{seconds}", va="center", fontsize=8)
    low = max(0.0, (accuracy.min() if len(accuracy) else 90.0) - 1.0)
    axis.set(yticks=range(len(ordered)), yticklabels=labels, xlim=(low, 100.4),
             xlabel="validation accuracy (%)", title="Runs by validation accuracy")
    axis.tick_params(axis="y", labelsize=7)
    axis.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, out_png)


def write_comparison(table: pd.DataFrame, out_dir: str | os.PathLike) -> list[Path]:
    """``comparison.md``, ``comparison.csv`` and ``comparison.png`` in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "comparison.csv") as tmp:
        table.to_csv(tmp, index=False)
    return [write_text_atomic(out_dir / "comparison.md", format_markdown(table)),
            out_dir / "comparison.csv", plot_comparison(table, out_dir / "comparison.png")]
