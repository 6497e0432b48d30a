"""Exclusive locks on directories that more than one process may write.

Whoever trains, resumes, reuses or deletes a run directory (or runs a recipe in its directory)
holds its lock, so that two commands never train the same member or delete each other's work; a
second process is told who holds it and stops.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Callable

from kaggle_digits import UserError


class RunInUse(UserError):
    """Another process holds the lock of a run (or recipe) directory."""


class DirectoryLock:
    """An exclusive, process-wide ``flock`` on ``.<name>.lock`` beside a directory.

    Re-entrant within one process (a job holds its run's lock while ``train`` takes it again).
    The kernel drops it when the holder dies, so a kill never leaves a lock held; the holder
    removes the file on release, and a taker checks that the file it locked is still the one
    at that name (the usual guard against locking a file just removed).
    """

    _held: dict[str, list] = {}  # Lock file -> [fd, depth] for the locks this process holds.

    def __init__(self, directory: Path, wait_s: float = 0.0,
                 on_wait: Callable[[str], None] | None = None):
        self.directory = Path(directory)
        self.wait_s = wait_s  # How long a taker waits for a holder that keeps it for a moment.
        self.on_wait = on_wait  # Told the holder's pid once, when the taker starts to wait.
        # Named after the path with every symlink and ``..`` resolved: runs/K and a link to it,
        # or two spellings of one folder, are one lock (in one process, and between processes).
        target = Path(os.path.realpath(self.directory))
        self.lock_file = target.parent / f".{target.name}.lock"

    def acquire(self) -> None:
        key = str(self.lock_file)
        if key in self._held:
            self._held[key][1] += 1
            return
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.wait_s
        while True:
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                if time.monotonic() < deadline:
                    if self.on_wait is not None:
                        self.on_wait(holder)
                        self.on_wait = None
                    time.sleep(0.05)
                    continue
                raise RunInUse(f"{self.directory} is in use by process {holder}; wait for it "
                               f"to end (or stop it), then run this again") from None
            locked = os.fstat(fd)
            try:
                current = os.stat(self.lock_file)
            except FileNotFoundError:
                current = None
            if current is not None and (current.st_ino, current.st_dev) == \
                    (locked.st_ino, locked.st_dev):
                break
            os.close(fd)  # Its holder removed it as we opened it: take the new one.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._held[key] = [fd, 1]

    def release(self) -> None:
        key = str(self.lock_file)
        entry = self._held[key]
        entry[1] -= 1
        if entry[1] == 0:
            del self._held[key]
            self.lock_file.unlink(missing_ok=True)
            os.close(entry[0])  # Closing the descriptor releases the flock.

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


def directory_lock(directory: str | os.PathLike, wait_s: float = 0.0,
                   on_wait: Callable[[str], None] | None = None) -> DirectoryLock:
    """The lock of any directory (or file) that several processes may write (a recipe's, a
    run's, an output's); ``wait_s`` > 0 waits that long for a holder before giving up, and
    ``on_wait`` is told the holder when the wait begins."""
    return DirectoryLock(Path(directory), wait_s, on_wait)
