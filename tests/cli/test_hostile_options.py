"""The hostile-value generator: every option that takes a value, of every command, read from the
commands' own parsers (an option added tomorrow is attacked the day it is added), given the values
that broke entry points before (NaN, infinities, zero, negative, huge, empty, digits of other
scripts, control and bidirectional characters, a directory, a symlink, a missing path, a file that
is no such file). The property a user relies on:

- exit 0, or exit 2 with exactly one ``error:`` line that names the option, its value or a file;
- never a traceback, never the "this is a bug" line for a value the user typed;
- nothing left behind by a refusal (no run directory, output or temporary file).

Commands run in this process (``run_cli``) from a workspace where the defaults find data, the
fixture runs of ``tests/fixtures`` and a submission, with ``--check`` where the command would
otherwise train: no case trains."""

from __future__ import annotations

import argparse
import os
import re

import pytest
from helpers import error_lines, make_workspace, run_cli, snapshot, tidy

from kaggle_digits.cli.main import commands

# How each command is started before the hostile option is added (later options win): the
# cheapest invocation that reaches the command's work.
BASE_ARGS = {
    "train": [["--check"]],
    "ensemble": [["runs/cnn-holdout", "runs/cnn-holdout-s7", "--out", "out/e.csv"],
                 ["--recipe", "quick", "--check"]],
    "predict": [["--model", "runs/cnn-holdout", "--input", "data/digit-recognizer/test.csv",
                 "--out", "out/p.csv"]],
    "validate": [["runs/cnn-holdout/submission.csv"]],
    "submit": [["runs/cnn-holdout/submission.csv", "-m", "hostile"]],
    "report": [["runs/cnn-holdout"]],
    "compare": [["runs/cnn-holdout", "runs/cnn-holdout-s7", "--out", "out/reports"]],
    "explore": [["--out", "out/reports"]],
    "fetch": [["--dest", "out/data"]],
    "sweep": [["--grid", "epochs=1", "--check"]],
    "search": [["--check"]],
    "submissions": [[]],
}

NUMBERS = ["nan", "inf", "-inf", "0", "-1", "1e308", "9" * 30, "", "²", "①", "٣", "x"]
# One value of each kind for text and path options (a second of a kind, such as "①" beside "²"
# or DEL beside the right-to-left override, found nothing the first did not, and each case of a
# command that succeeds costs its whole work).
TEXTS = ["", "²", "a\u202eb", "x" * 300, "{dir}", "{dirlink}", "{missing}", "{junk}"]
CHOICES = ["", "nosuch", "²"]


class _Parsed(Exception):
    def __init__(self, parser):
        super().__init__()
        self.parser = parser


def command_parser(command: str) -> argparse.ArgumentParser:
    """The parser a command's ``main`` builds, caught as it parses."""
    import importlib

    module = importlib.import_module(f"kaggle_digits.cli.{command}")

    def catch(parser, *args, **kwargs):
        raise _Parsed(parser)

    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = catch
    try:
        module.main([])
    except _Parsed as parsed:
        return parsed.parser
    finally:
        argparse.ArgumentParser.parse_args = original
    raise AssertionError(f"{command}: main() never parsed its arguments")


def valued_options(parser: argparse.ArgumentParser):
    """Each option that takes a value, with the values to attack it with."""
    for action in parser._actions:
        if not action.option_strings or action.nargs == 0:
            continue
        flag = max(action.option_strings, key=lambda name: name.startswith("--"))
        if action.choices is not None:
            yield flag, action, CHOICES
        elif action.type in (int, float):
            yield flag, action, NUMBERS
        else:
            yield flag, action, TEXTS


def test_every_command_has_a_base_invocation():
    """A new command is attacked too: it needs its cheapest invocation here."""
    assert set(BASE_ARGS) == set(commands())


def test_the_generator_reads_options_from_the_parsers():
    """An option added to a parser is among the generated cases without anyone listing it."""
    parser = command_parser("train")
    flags = {flag for flag, _, _ in valued_options(parser)}
    assert {"--epochs", "--lr", "--dropout", "--exclude-rows", "--elastic", "--crop",
            "--input-width", "--run-name", "--data", "--parallel", "--tracking-uri"} <= flags
    assert "--check" not in flags and "--augment" not in flags  # They take no value.


@pytest.mark.slow  # Hundreds of cases a command, each in this process.
@pytest.mark.usefixtures("kaggle_client_forgotten")
@pytest.mark.parametrize("command", sorted(BASE_ARGS))
def test_hostile_values_get_one_error_line_or_work(command, tmp_path, isolated_env):
    workspace = make_workspace(tmp_path / "ws")
    fill = {"{dir}": str(workspace / "adir"), "{dirlink}": str(workspace / "adir-link"),
            "{missing}": str(workspace / "missing" / "nothing.csv"),
            "{junk}": str(workspace / "junk.txt")}
    env = {**isolated_env, "MLFLOW_TRACKING_URI": f"sqlite:///{workspace / 'mlflow.db'}"}
    before = snapshot(workspace)
    # Where the base invocation itself is refused (no Kaggle credentials here, a sample-sized
    # submission), a value that changes nothing gets that same answer.
    base_answers = {}
    for base in BASE_ARGS[command]:
        result = run_cli(f"{command}.py", *base, cwd=workspace, env=env)
        base_answers[tuple(base)] = (result.returncode, error_lines(result))
        tidy(workspace, before)
    failures, cases = [], 0
    for flag, action, values in valued_options(command_parser(command)):
        for base in BASE_ARGS[command]:
            for value in values:
                value = fill.get(value, value)
                cases += 1
                result = run_cli(f"{command}.py", *base, flag, value, cwd=workspace, env=env)
                problem = _judge(result, flag, action, value, base_answers[tuple(base)])
                left = sorted(snapshot(workspace) - before)
                if result.returncode != 0 and left:
                    problem = problem or f"left behind {left[:3]}"
                if problem:
                    failures.append(f"{command} {' '.join(base)} {flag} {value!r}: {problem}\n"
                                    f"    {result.stderr.strip()[-400:]}")
                tidy(workspace, before)
    assert cases > 0
    assert not failures, f"{len(failures)} of {cases} cases:\n" + "\n".join(failures[:25])


def _judge(result, flag: str, action: argparse.Action, value: str,
           base_answer: tuple[int, list[str]]) -> str | None:
    """What is wrong with a command's answer to one hostile value, or None."""
    if "Traceback" in result.stderr or "this is a bug" in result.stderr:
        return "a traceback or a bug line"
    errors = error_lines(result)
    if result.returncode == 0 or (result.returncode, errors) == base_answer:
        return None
    if result.returncode != 2:
        return f"exit {result.returncode}"
    if len(errors) != 1:
        return f"{len(errors)} error lines"
    names = {flag, action.dest, *action.option_strings}
    shown = value and (value in errors[0] or repr(value)[1:-1] in errors[0]
                       or os.path.basename(value) in errors[0])
    names_a_file = re.search(r"\S+\.(csv|json|keras|zip|db|npy)\b", errors[0])
    if not (shown or names_a_file or any(name in errors[0] for name in names)):
        return "the error names neither the option, its value nor a file"
    return None
