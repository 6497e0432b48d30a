"""README sections generated from the code and BENCHMARKS.md, so the docs cannot drift from them.

``python tools/update_readme.py`` rewrites every section between ``<!-- NAME:begin -->`` and
``<!-- NAME:end -->``; the test suite fails while the README differs from what this module makes.
"""

from __future__ import annotations

import re
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
TARGETS_TITLE = "## Targets (bench/run.py --targets)"


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
    from kaggle_digits.recipe import RECIPES

    return "\n".join(f"- `{name}`: {recipe.description} ({len(recipe.all_members)} members)"
                     for name, recipe in RECIPES.items())


def targets_table(benchmarks: Path = BENCHMARKS) -> str:
    """The latest measured row of every target in BENCHMARKS.md's targets table.

    A target is known by the first two words of its description ("default ensemble", "time
    to"), which stay put while its details and goal change; later rows replace earlier ones.
    """
    text = benchmarks.read_text()
    if TARGETS_TITLE not in text:
        raise ValueError(f"{benchmarks}: no '{TARGETS_TITLE}' table")
    table = text.split(TARGETS_TITLE, 1)[1].strip().split("\n\n", 1)[0].splitlines()
    latest = {}
    for line in table[2:]:
        date, _, _, data, target, goal, measured, met = (
            cell.strip() for cell in line.strip().strip("|").split(" | "))
        known_as = " ".join(target.split()[:2])
        latest[known_as] = f"| {target} | {goal} | {measured} | {met} | {date} |"
    return "\n".join(["| target | goal | measured | met | date |", "|---|---|---|---|---|",
                      *latest.values()])


SECTIONS = {"architectures": architecture_table, "recipes": recipe_list,
            "targets": targets_table}


def render(readme: str) -> str:
    """``readme`` with every generated section replaced by its current content."""
    for name, make in SECTIONS.items():
        pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.DOTALL)
        if not pattern.search(readme):
            raise ValueError(f"the README has no generated section {name!r}. Received: no "
                             f"'<!-- {name}:begin -->' ... '<!-- {name}:end -->' markers")
        readme = pattern.sub(lambda match: match.group(1) + make() + "\n" + match.group(2), readme)
    return readme
