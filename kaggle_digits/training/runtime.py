"""TensorFlow's process settings, its start-up lines kept off a CPU user's terminal, and helper
processes that leave with the process that started them.

TensorFlow's native code prints a screenful when it starts ("oneDNN custom operations are on",
"Could not find cuda drivers", on some machines "E0000 ... failed call to cuInit"), written
straight to file descriptor 2 before any Python or absl logging setting applies, so no
environment variable silences them. The first ``import tensorflow`` (often through ``import
keras``) therefore runs with descriptor 2 pointed at a temporary file, together with the device
discovery that prints the cuInit line; the file is shown if the import fails, and always with
``KAGGLE_DIGITS_VERBOSE=1``.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys
import tempfile
import threading
import time

VERBOSE_VARIABLE = "KAGGLE_DIGITS_VERBOSE"
PARENT_CHECK_S = 1.0  # How often a helper process checks that the process it serves is alive.


def verbose() -> bool:
    return os.environ.get(VERBOSE_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def native_output_captured():
    """Descriptor 2 into a temporary file for the block; replayed on failure (or verbose)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if failed or verbose():
                captured.seek(0)
                sys.stderr.write(captured.read().decode(errors="replace"))
                sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with native_output_captured():
            self.loader.exec_module(module)
            module.config.list_physical_devices()  # Device discovery prints the cuInit line.


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Wraps the first import of ``tensorflow``, then steps aside."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow_start() -> None:
    """Install the wrapper (once, before TensorFlow is imported; a no-op after, or verbose)."""
    if "tensorflow" in sys.modules or verbose():
        return
    if not any(isinstance(finder, _QuietTensorFlowFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


def cpu_has_native_bfloat16(cpuinfo: str | None = None) -> bool | None:
    """Whether this CPU computes in bfloat16 itself (AVX-512 BF16 or AMX), from the flags in
    ``/proc/cpuinfo`` (or the text given); None where they cannot be read. Without them
    TensorFlow emulates bfloat16 and ``--precision mixed_bfloat16`` is several times slower."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
                cpuinfo = handle.read()
        except OSError:
            return None
    flags = {flag for line in cpuinfo.splitlines() if line.startswith("flags")
             for flag in line.partition(":")[2].split()}
    return bool(flags & {"avx512_bf16", "amx_bf16"}) if flags else None


def leave_with_parent(parent: int, exit_code: int = 0, farewell: str | None = None) -> None:
    """Exit this process within ``PARENT_CHECK_S`` once ``parent`` (the pid of the process that
    started it, passed in: it may already be gone when this runs) is no longer its parent.

    A process killed outright (SIGTERM, kill -9) cannot shut its children down: an augmentation
    worker then idled on for good, and the pool children of ``train.py --folds K --parallel N``
    went on training their folds to the end, holding their locks. Leaving as kill -9 would is
    safe: every file of a run is written whole or not at all, and the run resumes."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        if farewell:
            os.write(2, f"{farewell}\n".encode())
        os._exit(exit_code)

    threading.Thread(target=watch, name="leave-with-parent", daemon=True).start()


def usable_cores() -> int:
    """The cores this process may run on: under ``taskset`` or a container's cpuset that is
    fewer than the machine has (``os.cpu_count``), and threads beyond it only queue."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1
