"""Doc sections generated from the code and BENCHMARKS.md, so the docs cannot drift from them.

``python tools/update_readme.py`` rewrites every section between ``<!-- NAME:begin -->`` and
``<!-- NAME:end -->`` in README.md and docs/*.md; the test suite fails while a file differs from
what this module makes, or while a section is in none of them.
"""

from __future__ import annotations

import re
from pathlib import Path

from kaggle_digits import UserError

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "BENCHMARKS.md"
DOC_FILES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
TARGETS_TITLE = "## Targets (bench/run.py --targets)"
# Targets renamed or merged into another: once the successor has a row, the old one is history
# (BENCHMARKS.md keeps it). The preset's goal became 99.1% in 10 s (2026-12-06); the bagged
# recipe became `make ensemble` (2026-12-06).
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


def targets_table(benchmarks: Path = BENCHMARKS) -> str:
    """The latest measured row of every target in BENCHMARKS.md's targets table.

    A target is known by the first two words of its description ("default ensemble", "time
    to"), which stay put while its details and goal change; later rows replace earlier ones.
    """
    text = benchmarks.read_text()
    if TARGETS_TITLE not in text:
        raise UserError(f"{benchmarks}: no '{TARGETS_TITLE}' table")
    table = text.split(TARGETS_TITLE, 1)[1].strip().split("\n\n", 1)[0].splitlines()
    latest = {}
    for line in table[2:]:
        date, _, _, data, target, goal, measured, met = (
            cell.strip() for cell in line.strip().strip("|").split(" | "))
        known_as = " ".join(target.split()[:2])
        latest[known_as] = f"| {target} | {goal} | {measured} | {met} | {date} |"
    for old, successor in SUPERSEDED_TARGETS.items():
        if successor in latest:
            latest.pop(old, None)
    return "\n".join(["| target | goal | measured | met | date |", "|---|---|---|---|---|",
                      *latest.values()])


SECTIONS = {"architectures": architecture_table, "recipes": recipe_list,
            "targets": targets_table}


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.DOTALL)


def render(text: str) -> str:
    """``text`` with every generated section it holds replaced by its current content."""
    for name, make in SECTIONS.items():
        text = _pattern(name).sub(lambda match: match.group(1) + make() + "\n" + match.group(2),
                                  text)
    return text


def render_all(files: tuple[Path, ...] = DOC_FILES) -> dict[Path, str]:
    """The fresh text of every doc file.

    Raises:
        ValueError: a generated section is in none of the files.
    """
    texts = {path: path.read_text() for path in files}
    for name in SECTIONS:
        if not any(_pattern(name).search(text) for text in texts.values()):
            raise UserError(f"no doc file has the generated section {name!r}. Received: no "
                             f"'<!-- {name}:begin -->' ... '<!-- {name}:end -->' markers in "
                             f"{', '.join(path.name for path in files)}")
    return {path: render(text) for path, text in texts.items()}
