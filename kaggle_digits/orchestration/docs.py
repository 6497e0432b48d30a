"""Doc sections and BENCHMARKS.md generated from the code and the benchmark results, so the docs
cannot drift from them.

Measured results are data: one JSON object a line in ``bench/results/<kind>.jsonl`` (targets,
default runs, decisions), appended by the benchmarks. ``python tools/update_readme.py`` rewrites
BENCHMARKS.md from them and every section between ``<!-- NAME:begin -->`` and
``<!-- NAME:end -->`` in README.md and docs/*.md; the test suite fails while a file differs from
what this module makes, or while a section is in none of them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from kaggle_digits import UserError

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "BENCHMARKS.md"
RESULTS = ROOT / "bench" / "results"
EXPERIMENTS = ROOT / "docs" / "experiments"
DOC_FILES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
# Targets renamed or merged into another: once the successor has a row, the old one is history
# (bench/results/targets.jsonl keeps it). The preset's target was renamed on 2026-12-06; the
# bagged recipe became `make ensemble` the same day.
SUPERSEDED_TARGETS = {"time to": "--preset fast:", "bagged ensemble": "default ensemble"}


def architecture_table() -> str:
    """Every registered architecture with its training defaults (what --list-archs prints)."""
    from kaggle_digits.models import get_model_spec, list_models

    rows = ["| arch | design | epochs | batch | lr | schedule | augment | label smoothing |",
            "|---|---|---|---|---|---|---|---|"]
    for name in list_models():
        spec = get_model_spec(name)
        d = spec.train_defaults
        rows.append(f"| `{name}` | {spec.description} | {d['epochs']} | {d['batch_size']} | "
                    f"{d['learning_rate']:g} | {d['lr_schedule']} | "
                    f"{'yes' if d['augment'] else 'no'} | {d['label_smoothing']:g} |")
    return "\n".join(rows)


def recipe_list() -> str:
    from kaggle_digits.ensembles.recipe import RECIPES

    return "\n".join(f"- `{name}`: {recipe.description} ({len(recipe.all_members)} members)"
                     for name, recipe in RECIPES.items())


def method_list() -> str:
    """Each ensemble method, from its registered combiner's docstring."""
    from kaggle_digits.ensembles.combine import describe_methods

    return "\n".join(f"- `{name}`: {text}" for name, text in describe_methods().items())


def read_results(kind: str, results: Path = RESULTS, required: tuple = ()) -> list[dict]:
    """The rows of ``bench/results/<kind>.jsonl``, oldest first, each holding the fields in
    ``required`` (what the table made of them shows).

    Raises:
        UserError: a line that is not a JSON object, or lacks a field, naming file and line.
    """
    path = results / f"{kind}.jsonl"
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise UserError(f"{path}: line {number}: not JSON ({exc})") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}: line {number}: not a JSON object")
        missing = [field for field in required if field not in row]
        if missing:
            raise UserError(f"{path}: line {number}: no {', '.join(missing)} (a {kind} row "
                            f"holds {', '.join(required)})")
        rows.append(row)
    return rows


def append_result(kind: str, row: dict, results: Path = RESULTS) -> Path:
    """Append one measured row to ``bench/results/<kind>.jsonl`` (on a line of its own, even
    after a file whose last line has no newline, which glued two rows into one line)."""
    path = results / f"{kind}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        handle.seek(0, os.SEEK_END)
        glued = handle.tell() > 0 and (handle.seek(-1, os.SEEK_END), handle.read(1))[1] != b"\n"
        handle.write((("\n" if glued else "") + json.dumps(row, ensure_ascii=False) + "\n")
                     .encode("utf-8"))
    return path


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                      *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)])


def targets_table(results: Path = RESULTS) -> str:
    """The latest measured row of every target.

    A target is known by the first two words of its description ("default ensemble", "time
    to"), which stay put while its details and goal change; later rows replace earlier ones.
    """
    columns = ["target", "goal", "measured", "met", "date"]
    latest = {}
    for row in read_results("targets", results, required=tuple(columns)):
        latest[" ".join(row["target"].split()[:2])] = [row[column] for column in columns]
    for old, successor in SUPERSEDED_TARGETS.items():
        if successor in latest:
            latest.pop(old, None)
    return _markdown(columns, list(latest.values()))


def decisions_table(results: Path = RESULTS) -> str:
    """Every lever measured against the defaults, paired on the same rows, and what was
    decided: the default, an option, or dropped."""
    columns = {"lever": "lever", "rows": "rows", "accuracy_vs_defaults": "accuracy vs the defaults",
               "only_it_vs_only_defaults": "only it / only the defaults", "p": "p",
               "training_time": "training time", "decision": "decision", "date": "date"}
    return _markdown(list(columns.values()),
                     [[row[field] for field in columns]
                      for row in read_results("decisions", results, required=tuple(columns))])


def runs_table(results: Path = RESULTS) -> str:
    """Every ``bench/run.py`` run of a default training, as measured."""
    columns = ["date", "commit", "machine", "versions", "arch", "data", "options", "epochs",
               "val_accuracy", "val_loss", "train_s", "s_per_epoch", "wall_s", "peak_rss_gib",
               "submission"]
    # A missing or empty field shows as "–"; a measured 0 shows as 0.
    return _markdown(columns, [["–" if row.get(column) in (None, "") else row[column]
                                for column in columns]
                               for row in read_results("runs", results)])


def benchmarks_page(results: Path = RESULTS) -> str:
    """BENCHMARKS.md: where things stand, made from the results (never edited by hand)."""
    notes = sorted(EXPERIMENTS.glob("*.md"))
    return "\n".join([
        "# Benchmarks",
        "",
        "Generated by `python tools/update_readme.py` from `bench/results/*.jsonl` (the "
        "benchmarks append their rows there); the docs test fails while this page and the data "
        "disagree. Each row names its date and machine; rows measured since 2026-12-07 their "
        "commit too. Longer studies are dated notes under `docs/experiments/`.",
        "",
        "## Targets (`bench/run.py --targets`, the latest row of each)",
        "",
        targets_table(results),
        "",
        "## Decisions (each lever paired against the defaults on the same rows; "
        "`bench/levers.py`, McNemar's exact test)",
        "",
        decisions_table(results),
        "",
        "## Default training runs (`bench/run.py`)",
        "",
        runs_table(results),
        "",
        "## Notes",
        "",
        *(f"- [{note.stem}](docs/experiments/{note.name})" for note in notes),
        "",
    ])


SECTIONS = {"architectures": architecture_table, "recipes": recipe_list, "methods": method_list,
            "targets": targets_table, "decisions": decisions_table}


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.DOTALL)


def render(text: str) -> str:
    """``text`` with every generated section it holds replaced by its current content."""
    for name, make in SECTIONS.items():
        text = _pattern(name).sub(lambda match: match.group(1) + make() + "\n" + match.group(2),
                                  text)
    return text


def render_all(files: tuple[Path, ...] = DOC_FILES) -> dict[Path, str]:
    """The fresh text of every doc file, and of BENCHMARKS.md.

    Raises:
        UserError: a generated section is in none of the files.
    """
    texts = {path: path.read_text() for path in files}
    for name in SECTIONS:
        if not any(_pattern(name).search(text) for text in texts.values()):
            raise UserError(f"no doc file has the generated section {name!r}. Received: no "
                             f"'<!-- {name}:begin -->' ... '<!-- {name}:end -->' markers in "
                             f"{', '.join(path.name for path in files)}")
    fresh = {path: render(text) for path, text in texts.items()}
    fresh[BENCHMARKS] = benchmarks_page()
    return fresh
