"""The oldest Python the toolkit supports, Debian 12's own 3.11.2 (setup.cfg says >= 3.11): the
parts that differ between 3.11 releases run under it where this machine has it. tarfile's
``data`` filter (3.11.4) and the way a broken process pool is shut down on exit differ; both
broke every ``--executor ray`` run and hung a trainer started from stdin on 3.11.2."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

DEBIAN_PYTHON = Path("/usr/bin/python3")


@pytest.fixture(scope="module")
def oldest_python(tmp_path_factory) -> Path:
    """A virtual environment of Debian's own Python with what the augmentation worker and the
    run snapshots import (NumPy, albumentations, OpenCV); not TensorFlow, which they never
    load."""
    if not DEBIAN_PYTHON.exists():
        pytest.skip("no Debian Python here (/usr/bin/python3)")
    version = subprocess.run([str(DEBIAN_PYTHON), "-c", "import sys; print(sys.version_info[:3])"],
                             capture_output=True, text=True).stdout.strip()
    if version >= "(3, 11, 4)" or not version.startswith("(3, 11"):
        pytest.skip(f"Debian's Python here is {version}, not an early 3.11")
    venv = tmp_path_factory.mktemp("oldest") / "venv"
    if subprocess.run([str(DEBIAN_PYTHON), "-m", "venv", str(venv)]).returncode != 0:
        pytest.skip("Debian's Python here has no venv module (python3-venv)")
    python = venv / "bin" / "python"
    packages = ["numpy", "albumentations", "opencv-python-headless"]
    installer = ([sys.executable, "-m", "uv", "pip", "install", "--quiet", "--python",
                  str(python)] if shutil.which("uv") or _has_uv() else
                 [str(python), "-m", "pip", "install", "--quiet"])
    subprocess.run([*installer, *packages], check=True, timeout=600)
    return python


def _has_uv() -> bool:
    return subprocess.run([sys.executable, "-m", "uv", "--version"],
                          capture_output=True).returncode == 0


def _run(python: Path, code: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), *kwargs.pop("args", ["-c", code])], cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, **kwargs)


@pytest.mark.slow  # A virtual environment of its own.
def test_a_trainer_from_stdin_fails_in_seconds_on_the_oldest_python(oldest_python):
    script = ("import numpy as np\n"
              "from kaggle_digits.data.augment import EpochAugmenter\n"
              "EpochAugmenter(np.zeros((200, 28, 28, 1), np.uint8), seed=1, epochs=2,\n"
              "               in_process=False).images_for(0)\n")
    result = _run(oldest_python, "", args=["-"], input=script, timeout=60)
    assert result.returncode != 0
    assert "the augmentation worker process died twice" in result.stderr


@pytest.mark.slow
def test_run_snapshots_travel_on_the_oldest_python(oldest_python, tmp_path):
    code = ("import sys, pathlib\n"
            "from kaggle_digits.orchestration.executors import snapshots\n"
            "source, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])\n"
            "snapshots.unpack_directory(snapshots.pack_directory(source), target)\n")
    (tmp_path / "run" / "folds").mkdir(parents=True)
    (tmp_path / "run" / "folds" / "model.keras").write_bytes(b"weights")
    result = _run(oldest_python, "", args=["-c", code, str(tmp_path / "run"),
                                           str(tmp_path / "back")], timeout=60)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "back" / "folds" / "model.keras").read_bytes() == b"weights"
