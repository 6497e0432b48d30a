"""The hostile-file generator: every kind of file the toolkit reads (the competition CSVs, a
submission, rows to exclude, an older run's config, metrics and arrays, a submission's record,
kaggle.json), each damaged in every generic way (emptied, cut mid-line, junk bytes, NUL bytes,
a byte-order mark, Windows line ends, its first number NaN or huge, its first line repeated, a
directory or a dangling symlink in its place), read by the command a user runs. The property is
the options generator's (``test_hostile_options.py``): exit 0, or exit 2 with one ``error:``
line, never a traceback, nothing left behind by a refusal."""

from __future__ import annotations

import re

import pytest
from helpers import error_lines, make_workspace, run_cli, snapshot, tidy


def _first_number(text: str, replacement: str) -> str:
    return re.sub(r"(?<![\w.])\d+(\.\d+)?(?![\w.])", replacement, text, count=1)


def _first_line_again(text: str) -> str:
    lines = text.splitlines(keepends=True)
    return "".join(lines[:1] + lines[:1] + lines[1:]) if lines else text


# Each damage: how the file's bytes change (None: the file is replaced by something else).
DAMAGES = {
    "empty": lambda data: b"",
    "cut mid-line": lambda data: data[: max(1, len(data) // 2 - 3)],
    "junk bytes": lambda data: bytes(range(256)) * 4,
    "NUL bytes": lambda data: data[:20] + b"\x00" * 64 + data[20:],
    "byte-order mark": lambda data: b"\xef\xbb\xbf" + data,
    "Windows line ends": lambda data: data.replace(b"\n", b"\r\n"),
    "first number NaN": lambda data: _first_number(data.decode("latin-1"), "NaN")
    .encode("latin-1"),
    "first number huge": lambda data: _first_number(data.decode("latin-1"), "9" * 40)
    .encode("latin-1"),
    "first line repeated": lambda data: _first_line_again(data.decode("latin-1"))
    .encode("latin-1"),
    "a directory": None,
    "a dangling symlink": None,
}

# Each kind of file: where it is in the workspace and the command that reads it there.
FILES = {
    "train.csv": ("data/digit-recognizer/train.csv", ["train", "--check"]),
    "test.csv": ("data/digit-recognizer/test.csv", ["validate", "runs/cnn-holdout/submission.csv"]),
    "submission": ("runs/cnn-holdout/submission.csv",
                   ["validate", "runs/cnn-holdout/submission.csv"]),
    "rows to exclude": ("rows.csv", ["train", "--check", "--exclude-rows", "rows.csv"]),
    "an older run's config": ("runs/cnn-holdout/config.json",
                              ["train", "--check", "--config", "runs/cnn-holdout/config.json"]),
    "a run's metrics": ("runs/cnn-holdout/metrics.json",
                        ["ensemble", "runs/cnn-holdout", "runs/cnn-holdout-s7", "--out",
                         "out/e.csv"]),
    "a run's probabilities": ("runs/cnn-holdout/val_probs.npy",
                              ["ensemble", "runs/cnn-holdout", "runs/cnn-holdout-s7", "--out",
                               "out/e.csv"]),
    "a run's model": ("runs/cnn-holdout/model.keras",
                      ["predict", "--model", "runs/cnn-holdout", "--out", "out/p.csv"]),
    "a submission's record": ("subs/e.json", ["submit", "subs/e.csv", "-m", "hostile"]),
    "kaggle.json": ("home/.kaggle/kaggle.json", ["submissions", "--sync"]),
}


def _prepare(workspace) -> None:
    (workspace / "rows.csv").write_text("row,given\n3,9\n")
    run_cli("ensemble.py", "runs/cnn-holdout", "runs/cnn-holdout-s7", "--out", "subs/e.csv",
            cwd=workspace)
    (workspace / "home" / ".kaggle").mkdir(parents=True)
    (workspace / "home" / ".kaggle" / "kaggle.json").write_text(
        '{"username": "someone", "key": "0123456789abcdef0123456789abcdef"}')
    (workspace / "home" / ".kaggle" / "kaggle.json").chmod(0o600)


@pytest.mark.slow  # Every damage of every file, each through a command in this process.
@pytest.mark.usefixtures("kaggle_client_forgotten")
@pytest.mark.parametrize("kind", sorted(FILES))
def test_damaged_files_get_one_error_line_or_work(kind, tmp_path, monkeypatch):
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    workspace = make_workspace(tmp_path / "ws")
    _prepare(workspace)
    home = workspace / "home"
    # No network here: a proxy nobody listens on makes every Kaggle call fail at once.
    env = {"HOME": str(home), "KAGGLE_CONFIG_DIR": str(home / ".kaggle"),
           "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
           "MLFLOW_TRACKING_URI": f"sqlite:///{workspace / 'mlflow.db'}"}
    relative, command = FILES[kind]
    path = workspace / relative
    original = path.read_bytes()
    before = snapshot(workspace)
    failures = []
    for damage, change in DAMAGES.items():
        if change is None:
            path.unlink()
            if damage == "a directory":
                path.mkdir()
            else:
                path.symlink_to(workspace / "nowhere" / path.name)
        else:
            path.write_bytes(change(original))
        result = run_cli(f"{command[0]}.py", *command[1:], cwd=workspace, env=env)
        errors = error_lines(result)
        problem = None
        if "Traceback" in result.stderr or "this is a bug" in result.stderr:
            problem = "a traceback or a bug line"
        elif result.returncode not in (0, 1, 2):
            problem = f"exit {result.returncode}"
        elif result.returncode == 2 and len(errors) != 1:
            problem = f"{len(errors)} error lines"
        left = sorted(snapshot(workspace) - before - {relative})
        if result.returncode != 0 and left:
            problem = problem or f"left behind {left[:3]}"
        if problem:
            failures.append(f"{kind}, {damage}: {problem}\n    {result.stderr.strip()[-400:]}")
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
        elif path.exists() or path.is_symlink():
            path.unlink()
        path.write_bytes(original)
        tidy(workspace, before)
    assert not failures, f"{len(failures)} of {len(DAMAGES)} damages:\n" + "\n".join(failures)
