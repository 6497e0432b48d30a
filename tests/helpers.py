"""What the tests share besides fixtures: small Kaggle-format data, commands run as a user runs
them, and one-line-error checks. Fixtures and collection hooks stay in ``conftest.py``."""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_digits.runs.io import sha256_file

ROOT = Path(__file__).resolve().parent.parent
# What TensorFlow prints as it starts on a machine without a GPU (silenced unless asked for).
START_UP_LINES = ("oneDNN custom operations", "absl::InitializeLog", "cuda", "cuInit")
PIXELS = [f"pixel{i}" for i in range(784)]
RUN_FILES = {"config.json", "history.csv", "model.keras", "metrics.json", "val_probs.npy",
             "val_labels.npy", "val_indices.npy", "test_probs.npy", "submission.csv",
             "learning_curves.png", "classification_report.txt", "classification_report.json",
             "confusion_matrix.png", "errors.png", "report.html"}


def tiny_config(tmp_path: Path, data_dir: Path, **overrides):
    """A TrainConfig for a run of seconds on the tiny data, writing into tmp_path."""
    from kaggle_digits.training.config import TrainConfig

    values = dict(data_dir=str(data_dir), epochs=2, batch_size=32,
                  output_dir=str(tmp_path / "runs"), submissions_dir=str(tmp_path / "subs"))
    values.update(overrides)
    return TrainConfig(**values)


def digit_frame(rows: int, labelled: bool = True, seed: int = 0) -> pd.DataFrame:
    """A valid Kaggle-format frame with every digit present (labels cycle 0..9)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.integers(0, 256, size=(rows, 784)), columns=PIXELS)
    if labelled:
        frame.insert(0, "label", np.arange(rows) % 10)
    return frame


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


@functools.cache
def _tiny_csv_texts() -> tuple[str, str]:
    """Cut once per process: reading the gzipped sample took 0.47 s of CPU, in ~150 tests."""
    sample = ROOT / "data" / "sample"
    train = pd.read_csv(sample / "train.csv.gz").groupby("label", group_keys=False).head(40)
    test = pd.read_csv(sample / "test.csv.gz", nrows=60)
    return train.to_csv(index=False), test.to_csv(index=False)


def make_tiny_data_dir(parent: Path) -> Path:
    """A data directory cut from the bundled sample: 400 real train rows (40 a digit), 60 test."""
    data_dir = parent / "data"
    data_dir.mkdir()
    train, test = _tiny_csv_texts()
    (data_dir / "train.csv").write_text(train)
    (data_dir / "test.csv").write_text(test)
    return data_dir


def restore_ctrl_c() -> None:
    """For a child that a test interrupts: a shell running the suite in the background (`&`)
    hands its children SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_script(name: str, *args: str, env: dict | None = None, cwd: Path | None = None,
               timeout: int = 300) -> subprocess.CompletedProcess:
    """Run one of scripts/ as a user would, returning its exit code and output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *args], env=full_env,
                          cwd=cwd or ROOT, capture_output=True, text=True, timeout=timeout)


def run_cli(name: str, *args: str, env: dict | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a script's ``main`` in this process, as ``run_script`` would run the script: same
    arguments, working directory, environment, exit code and output, without starting Python
    and TensorFlow again (~5 s a call on 2 cores). For what a command prints, refuses and
    writes; process behaviour (signals, locks held by others, start-up lines, the kaggle
    client's import-time configuration) stays with ``run_script``, and every script starts as
    a process in test_docs."""
    module = importlib.import_module(f"kaggle_digits.cli.{Path(name).stem}")
    stdout, stderr = io.StringIO(), io.StringIO()
    saved_env = dict(os.environ)
    os.environ.update(env or {})
    try:
        with contextlib.chdir(cwd or ROOT), contextlib.redirect_stdout(stdout), \
                contextlib.redirect_stderr(stderr):
            try:
                code = module.main(list(args))
            except SystemExit as exc:  # argparse: --help is 0, a usage error 2.
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            except Exception:  # What the interpreter would print for an uncaught error.
                traceback.print_exc()
                code = 1
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess([name, *args], code or 0, stdout.getvalue(),
                                       stderr.getvalue())


def assert_one_line_error(result, *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, result.stderr
    for needle in needles:
        assert needle in error_lines[0]


def hold_lock(directory: Path) -> subprocess.Popen:
    """Another process holding a directory's lock until its stdin closes."""
    code = ("import sys; from kaggle_digits.runs.locks import directory_lock\n"
            f"with directory_lock({str(directory)!r}):\n"
            "    print('held', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def process_alive(pid: int) -> bool:
    """Whether a process still runs; a zombie has left (only its parent's reaping is missing)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until_gone(pids, timeout: float = 20) -> list[int]:
    """The processes of ``pids`` still alive after up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while any(process_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [pid for pid in pids if process_alive(pid)]


def digit_images(count=20):
    images = np.zeros((count, 28, 28, 1), dtype=np.uint8)
    images[:, 10:18, 12:16] = 255  # A bar in the middle, like a "1".
    return images


def write_submission_csv(path, rows=28_000):
    pd.DataFrame({"ImageId": range(1, rows + 1), "Label": [i % 10 for i in range(rows)]}).to_csv(
        path, index=False)
    return path


def recorded_submission(tmp_path, name="ens.csv"):
    """A submission with the record that train.py/ensemble.py write beside it, and the data
    directory whose test.csv it was predicted for."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    (data_dir / "test.csv").write_text("pixel0\n0\n")
    path = write_submission_csv(tmp_path / name)
    path.with_suffix(".json").write_text(json.dumps({
        "data_fingerprint": {"test.csv": sha256_file(data_dir / "test.csv")},
        "submission_sha256": sha256_file(path)}))
    return path, data_dir


ERROR_LINE = re.compile(r"^(\S+: )?error: ")


def error_lines(result) -> list[str]:
    """The ``error:`` lines of a command's stderr (argparse's start with the program's name)."""
    return [line for line in result.stderr.splitlines() if ERROR_LINE.match(line)]


def make_workspace(root: Path) -> Path:
    """Where the defaults find data (data/digit-recognizer), runs and a junk file."""
    root.mkdir()
    make_tiny_data_dir(root).rename(root / "data-tiny")
    (root / "data").mkdir()
    (root / "data-tiny").rename(root / "data" / "digit-recognizer")
    shutil.copytree(ROOT / "tests" / "fixtures" / "runs-d1e0a75", root / "runs")
    (root / "adir").mkdir()
    (root / "adir-link").symlink_to(root / "adir")
    (root / "junk.txt").write_text("not,what,you,expected\n\x00\x01\n")
    return root


def snapshot(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def tidy(root: Path, before: set[str]) -> None:
    """Remove what a case that succeeded wrote, so each case starts from the same workspace."""
    for name in sorted(snapshot(root) - before, key=len, reverse=True):
        path = root / name
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


