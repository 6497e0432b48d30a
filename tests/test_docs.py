"""Docs generated from the code stay true: the README's tables and the CLIs' entry points."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import ROOT, run_script

from kaggle_digits.docs import architecture_table, render
from kaggle_digits.models import get_model_spec, list_models


def test_readme_generated_sections_match_the_code():
    readme = (ROOT / "README.md").read_text()
    assert render(readme) == readme, "README.md is stale: run python tools/update_readme.py"


def test_architecture_table_and_list_archs_come_from_the_registry():
    table = architecture_table()
    listing = run_script("train.py", "--list-archs").stdout
    for name in list_models():
        defaults = get_model_spec(name).train_defaults
        row = next(line for line in table.splitlines() if line.startswith(f"| `{name}` |"))
        assert f"| {defaults['epochs']} | {defaults['batch_size']} |" in row
        assert f"{name:16s} {get_model_spec(name).description}" in listing


def test_console_entry_points_are_the_scripts():
    bin_dir = Path(sys.executable).parent
    for name in ("validate", "submit"):
        entry = subprocess.run([str(bin_dir / f"kaggle-digits-{name}"), "--help"],
                               capture_output=True, text=True, timeout=120)
        assert entry.returncode == 0, entry.stderr
        script = run_script(f"{name}.py", "--help")
        # The same parser: only the usage line's program name (and so its wrapping) differs.
        assert entry.stdout.split("\n\n", 1)[1] == script.stdout.split("\n\n", 1)[1]
