#!/usr/bin/env python3
"""The two Quick-start commands, needing nothing but Python 3.11.

  python3 scripts/quickstart.py          # install into .venv, get data, train, validate
  python3 scripts/quickstart.py --test   # install into .venv (Ray, Optuna, MLflow too), test

Data: with Kaggle credentials the competition data is fetched through the Kaggle API; without
them, training uses the small bundled sample and says so.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
INSTALL_STAMP = VENV / ".kaggle-digits-installed"


def run(*command: str | os.PathLike) -> None:
    """Run a command; it writes the bytecode of what it imports even where
    PYTHONDONTWRITEBYTECODE is set (see :func:`install`)."""
    print("+", " ".join(str(part) for part in command), flush=True)
    env = {name: value for name, value in os.environ.items()
           if name != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([str(part) for part in command], cwd=ROOT, check=True, env=env)


def install_fingerprint() -> str:
    return hashlib.sha256((ROOT / "setup.cfg").read_bytes()).hexdigest()


def ensure_environment(extras: str = "test") -> None:
    """Create .venv and install the package with ``extras``, once per setup.cfg version."""
    if sys.version_info[:2] < (3, 11):
        sys.exit(f"error: Python 3.11 or newer is needed, this is {sys.version.split()[0]}")
    if not VENV_PYTHON.exists():
        print(f"creating virtual environment {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    stamp = f"{install_fingerprint()} {extras}"
    if INSTALL_STAMP.exists():
        fingerprint, _, installed = INSTALL_STAMP.read_text().partition(" ")
        if fingerprint == install_fingerprint() and \
                set(extras.split(",")) <= set(installed.strip().split(",")):
            return  # Installed from this setup.cfg with these extras (or more).
    install(f".[{extras}]")
    INSTALL_STAMP.write_text(stamp)


def install(requirement: str) -> None:
    """Install ``requirement`` editable into .venv with uv, pip's drop-in installer: much
    faster than pip for TensorFlow, Ray and MLflow on 2 cores. Where uv itself cannot be
    installed, pip does the work.

    Bytecode is not compiled at install time (uv's ``--compile-bytecode`` compiled every module
    of the environment, most of the install's time); the commands started here write the
    bytecode of the modules they import instead, once, even where PYTHONDONTWRITEBYTECODE is set
    (where nothing wrote it, every process compiled TensorFlow from source as it imported
    it)."""
    try:
        run(VENV_PYTHON, "-m", "pip", "install", "--quiet", "uv")
    except subprocess.CalledProcessError:
        print("uv could not be installed; installing with pip (slower)", flush=True)
        run(VENV_PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
        run(VENV_PYTHON, "-m", "pip", "install", "--quiet", "-e", requirement)
        return
    run(VENV_PYTHON, "-m", "uv", "pip", "install", "--quiet", "--python", VENV_PYTHON, "-e",
        requirement)


def main_job() -> None:
    sys.path.insert(0, str(ROOT))
    from kaggle_digits.submission.kaggle_api import kaggle_credentials_present

    if kaggle_credentials_present():
        run(VENV_PYTHON, "scripts/fetch.py")
    else:
        print("NOTICE: no Kaggle credentials (~/.kaggle/kaggle.json or KAGGLE_USERNAME/KAGGLE_KEY);"
              " skipping the download.", flush=True)
    run(VENV_PYTHON, "scripts/train.py", "--arch", "improved_cnn")
    latest = max((ROOT / "submissions").glob("*.csv"), key=lambda path: path.stat().st_mtime)
    # A submission made on the bundled sample is rightly judged not ready for Kaggle.
    subprocess.run([str(VENV_PYTHON), "scripts/validate.py", str(latest)], cwd=ROOT)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test", action="store_true", help="run the test suite instead")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (with --test)")
    args = parser.parse_args(argv)
    # The tests also cover --executor ray, search.py and --track: the cluster and track extras.
    ensure_environment("test,cluster,track" if args.test else "test")
    try:
        if args.test:
            run(VENV_PYTHON, "-m", "pytest", *args.pytest_args)
        else:
            main_job()
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
