"""The one linter (ruff, configured in pyproject.toml) over the package, tests, benchmarks,
tools and scripts: CI runs it through this test."""

import subprocess
import sys

from helpers import ROOT


def test_ruff_finds_nothing():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "kaggle_digits", "tests",
                             "bench", "tools", "scripts"], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
