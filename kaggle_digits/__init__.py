"""kaggle-digits: a toolkit for Kaggle's Digit Recognizer (fetch, train, ensemble, submit)."""

import os
import sys

# TensorFlow CPU settings measured on 2-core machines (BENCHMARKS.md); they must be set before
# TensorFlow is imported, and an exported value wins over these defaults.
# - Its default CPU allocator hands large tensors to glibc malloc, which maps and unmaps them every
#   step, and runs fell into a half-speed mode at random. The BFC allocator keeps memory pooled.
# - oneDNN kernels (TensorFlow's own x86 default, stated here so it is not lost) train
#   improved_cnn much faster than Eigen's once BFC is on (docs/results.md).
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")



class UserError(ValueError):
    """Something the user can fix (a bad option, file or answer from outside, a run in use):
    every command prints it as one ``error:`` line and exits 2. Any other exception is a bug
    and keeps its traceback. A ValueError, so that callers that catch bad values catch it."""


def command_line(command: str) -> str:
    """How to run ``command`` the way this process was started: ``kaggle-digits train``,
    ``kaggle-digits-train`` or ``python scripts/train.py``, for the messages that say what to
    run next."""
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if prog.startswith("kaggle-digits-"):
        return f"kaggle-digits-{command}"
    if prog.startswith("kaggle-digits"):  # ``kaggle-digits <command>`` names itself so.
        return f"kaggle-digits {command}"
    return f"python scripts/{command}.py"


class Registry(dict):
    """Things of one kind by name (architectures, ensemble methods, executors), each added by a
    decorator where it is defined, as timm and keras-hub register models; the CLIs offer the
    registered names."""

    def __init__(self, kind: str, option: str):
        super().__init__()
        self.kind, self.option = kind, option  # "ensemble method", chosen with --method.

    def add(self, name: str, thing):
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self[name] = thing
        return thing

    def register(self, name: str):
        """``@registry.register("name")`` adds the decorated function under ``name``."""
        return lambda thing: self.add(name, thing)

    def lookup(self, name: str):
        """Raises UserError naming the registered choices for a name that is not one."""
        if name not in self:
            raise UserError(f"{self.option} must be one of {', '.join(self)}. Received: "
                            f"{self.option}={name!r}")
        return self[name]


# TensorFlow's native start-up lines are kept off the terminal (KAGGLE_DIGITS_VERBOSE=1 shows them).
from kaggle_digits.training.runtime import quiet_tensorflow_start  # noqa: E402

quiet_tensorflow_start()

__version__ = "0.1.0"
