"""Run directories as bytes and back: how a run (or one fold of it) travels between this
machine and a Ray worker, and is pointed back at this machine's data files on arrival."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

from kaggle_digits.runs.rundir import RunDir


def pack_directory(path: Path) -> bytes:
    """A directory as gzip-free tar bytes (checkpoints do not compress)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(path, arcname=".")
    return buffer.getvalue()


def extract_data(archive: tarfile.TarFile, where: Path) -> None:
    """Extract only plain files and folders inside ``where``: tarfile's ``data`` filter where
    this Python has it (3.11.4 and newer, and 3.12+), else the same refusals made here
    (Debian 12's own Python is 3.11.2), so an archive from a worker never writes outside
    ``where`` or makes links or devices.

    Raises:
        tarfile.TarError: a member that is not a plain file or folder inside ``where``.
    """
    if hasattr(tarfile, "data_filter"):
        archive.extractall(where, filter="data")
        return
    root = where.resolve()
    for member in archive.getmembers():
        target = (root / member.name).resolve()
        if not (member.isfile() or member.isdir()) or os.path.isabs(member.name) or \
                (target != root and root not in target.parents):
            raise tarfile.TarError(f"refusing archive member {member.name!r}: not a plain file "
                                   f"or folder inside {where}")
        member.mode &= 0o755  # As the data filter: no set-uid bits, nothing world-writable.
    archive.extractall(where)


def unpack_directory(payload: bytes, path: Path) -> None:
    """Replace ``path`` by the packed directory, atomically: unpacked beside it, then swapped."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.incoming-"))
    try:
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r") as archive:
            extract_data(archive, staging)
        old = None
        if path.exists():
            old = path.parent / f".{path.name}.old-{os.getpid()}-{time.monotonic_ns()}"
            path.rename(old)
        staging.rename(path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def relocate(run: RunDir, data_dir: str, is_sample: bool) -> None:
    """Point a run trained on a worker's copy of the data back at this machine's data files
    (the same files by SHA-256), so predict, report and resume read them here."""
    if run.exists:
        config = run.read_config()
        config.data_dir = data_dir
        run.write_config(config)
    state = run.read_state()
    if state is not None:
        run.write_state({**state, "is_sample": is_sample})
    for fold in run.folds():
        fold_state = fold.read_state()
        if fold_state is not None:
            fold.write_state({**fold_state, "is_sample": is_sample})
