"""Docs generated from the code stay true: the README's tables and the CLIs' entry points."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, run_cli, run_script

from kaggle_digits import UserError
from kaggle_digits.models import get_model_spec, list_models
from kaggle_digits.orchestration.docs import DOC_FILES, architecture_table, render_all


def test_generated_sections_of_readme_and_docs_match_the_code():
    for path, fresh in render_all().items():
        assert path.read_text() == fresh, f"{path} is stale: run python tools/update_readme.py"


def test_the_readme_fits_a_few_screens_and_links_every_doc():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 100 and len(readme.encode()) <= 8 * 1024
    for path in DOC_FILES[1:]:
        assert f"docs/{path.name}" in readme, path.name
    usage = (ROOT / "docs" / "usage.md").read_text()
    for script in sorted((ROOT / "scripts").glob("*.py")):
        if script.stem != "quickstart":
            assert f"scripts/{script.name}" in usage, script.name


def test_architecture_table_and_list_archs_come_from_the_registry():
    table = architecture_table()
    listing = run_cli("train.py", "--list-archs").stdout
    for name in list_models():
        defaults = get_model_spec(name).train_defaults
        row = next(line for line in table.splitlines() if line.startswith(f"| `{name}` |"))
        assert f"| {defaults['epochs']} | {defaults['batch_size']} |" in row
        assert f"{name:16s} {get_model_spec(name).description}" in listing


def test_every_script_has_an_installed_entry_point():
    """kaggle-digits-search was missing though the README says every script is installed."""
    import configparser

    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    declared = {line.split("=")[0].strip(): line.split("=")[1].strip()
                for line in setup["options.entry_points"]["console_scripts"].strip().splitlines()}
    scripts = sorted(p.stem for p in (ROOT / "scripts").glob("*.py") if p.stem != "quickstart")
    assert declared.pop("kaggle-digits") == "kaggle_digits.cli.main:main"
    assert sorted(name.removeprefix("kaggle-digits-") for name in declared) == scripts
    from kaggle_digits.cli.main import commands

    assert sorted(commands()) == scripts  # kaggle-digits <command> for each of them.
    for name in scripts:
        assert declared[f"kaggle-digits-{name}"] == f"kaggle_digits.cli.{name}:main"
        assert (Path(sys.executable).parent / f"kaggle-digits-{name}").exists(), name


@pytest.mark.slow  # Scripts started as processes.
def test_console_entry_points_are_the_scripts():
    bin_dir = Path(sys.executable).parent
    for name in ("validate", "submit"):
        entry = subprocess.run([str(bin_dir / f"kaggle-digits-{name}"), "--help"],
                               capture_output=True, text=True, timeout=120)
        assert entry.returncode == 0, entry.stderr
        script = run_script(f"{name}.py", "--help")
        # The same parser: only the usage line's program name (and so its wrapping) differs.
        assert entry.stdout.split("\n\n", 1)[1] == script.stdout.split("\n\n", 1)[1]


def test_targets_table_keeps_the_latest_row_of_each_target(tmp_path):
    from kaggle_digits.orchestration.docs import append_result, targets_table

    rows = [("2026-11-22", "default ensemble recipe (7 members)", ">= 99.75%", "99.69%", "no"),
            ("2026-11-22", "time to 99.0% (preset)", "<= 20 s", "26.9 s", "no"),
            ("2026-11-25", "default ensemble (8 members)", ">= 99.75%", "99.76%", "yes")]

    def record(date, target, goal, measured, met):
        append_result("targets", {"date": date, "commit": "abc1234", "machine": "2 cores",
                                  "cpu_flags": "avx2", "versions": "2.21.0 / 3.15.1",
                                  "data": "full", "target": target, "goal": goal,
                                  "measured": measured, "met": met}, tmp_path)

    for row in rows:
        record(*row)
    assert targets_table(tmp_path).splitlines()[2:] == [
        "| default ensemble (8 members) | >= 99.75% | 99.76% | yes | 2026-11-25 |",
        "| time to 99.0% (preset) | <= 20 s | 26.9 s | no | 2026-11-22 |"]
    # A renamed target's old rows leave the table once the new name has one.
    record("2026-12-06", "--preset fast: accuracy (median of 5)", ">= 99.1%", "99.2%", "yes")
    assert [line.split(" | ")[0] for line in targets_table(tmp_path).splitlines()[2:]] \
        == ["| default ensemble (8 members)", "| --preset fast: accuracy (median of 5)"]


def test_benchmarks_page_is_made_from_the_results_and_every_row_says_where():
    """BENCHMARKS.md is generated (test above: the docs check) from bench/results/, whose every
    row names its date and machine; a line that is not a JSON object is named."""
    from kaggle_digits.orchestration.docs import RESULTS, read_results

    for kind in ("targets", "runs", "decisions"):
        rows = read_results(kind)
        assert rows, kind
        assert all(row.get("date") or kind == "runs" for row in rows)
    assert all(row["machine"] for row in read_results("targets"))
    assert {path.stem for path in RESULTS.glob("*.jsonl")} == {"targets", "runs", "decisions"}
    page = (ROOT / "BENCHMARKS.md").read_text()
    for note in (ROOT / "docs" / "experiments").glob("*.md"):
        assert f"docs/experiments/{note.name}" in page
    assert "session" not in page.lower()


def test_one_command_lists_every_command_and_no_help_loads_tensorflow():
    """`kaggle-digits --help` and every `kaggle-digits <command> --help` answer without
    TensorFlow or Keras (train.py --help cost ~5 s of CPU importing Keras for its --arch list)."""
    from kaggle_digits.cli.main import commands

    code = ("import sys, contextlib, io\n"
            "from kaggle_digits.cli.main import main\n"
            "for name in sys.argv[1:]:\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        try:\n"
            "            main([name, '--help'])\n"
            "        except SystemExit:\n"
            "            pass\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code, *commands()], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    listing = run_cli("main.py", "--help")
    for name, summary in commands().items():
        assert f"  {name}" in listing.stdout and summary in listing.stdout
    unknown = run_cli("main.py", "trian")
    assert unknown.returncode == 2 and "no command 'trian'" in unknown.stderr


def test_damaged_results_are_named_by_file_and_line_and_appends_stay_rows(tmp_path):
    from kaggle_digits.orchestration.docs import (
        append_result,
        decisions_table,
        read_results,
        runs_table,
        targets_table,
    )

    # A file whose last row has no newline: the next row goes on a line of its own.
    (tmp_path / "runs.jsonl").write_text('{"date": "2026-12-07", "train_s": 0}')
    append_result("runs", {"date": "2026-12-08", "train_s": "12"}, tmp_path)
    assert [row["date"] for row in read_results("runs", tmp_path)] == ["2026-12-07",
                                                                       "2026-12-08"]
    assert "| 0 |" in runs_table(tmp_path)  # A measured 0 is a 0, not "–".
    (tmp_path / "targets.jsonl").write_text('{"target": "x", "goal": "y"}\n')
    with pytest.raises(UserError, match=r"targets.jsonl: line 1: no measured, met, date"):
        targets_table(tmp_path)
    (tmp_path / "decisions.jsonl").write_text('\n{"lever": \n')
    with pytest.raises(UserError, match=r"decisions.jsonl: line 2: not JSON"):
        decisions_table(tmp_path)


def test_update_readme_refuses_a_damaged_results_file_in_one_line(tmp_path, monkeypatch):
    from kaggle_digits.orchestration import docs

    shutil.copytree(docs.RESULTS, tmp_path / "results")
    with open(tmp_path / "results" / "decisions.jsonl", "a") as handle:
        handle.write("{not json\n")
    spec = importlib.util.spec_from_file_location("update_readme", ROOT / "tools" /
                                                  "update_readme.py")
    update_readme = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(update_readme)
    monkeypatch.setattr(update_readme, "render_all",
                        lambda: {ROOT / "BENCHMARKS.md": docs.benchmarks_page(
                            tmp_path / "results")})
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert update_readme.main(["--check"]) == 2
    assert stderr.getvalue().count("error:") == 1 and "decisions.jsonl: line" in \
        stderr.getvalue() and "Traceback" not in stderr.getvalue()
