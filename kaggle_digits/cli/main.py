"""``kaggle-digits <command> [options]``: every command of the toolkit under one name.

The commands are the modules of this package that define ``main`` (``train``, ``ensemble``,
``submit``, ...), found and described from their source without importing them, so that
``kaggle-digits --help`` answers at once; ``scripts/<command>.py`` and ``kaggle-digits-<command>``
run the same ``main``.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

CLI_DIR = Path(__file__).resolve().parent
PROG = "kaggle-digits"


def commands() -> dict[str, str]:
    """Each command's name and the first line of its module's docstring."""
    found = {}
    for path in sorted(CLI_DIR.glob("*.py")):
        if path.stem in ("__init__", "main"):
            continue
        tree = ast.parse(path.read_text())
        if any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body):
            found[path.stem] = (ast.get_docstring(tree) or "").splitlines()[0].rstrip(".")
    return found


def usage() -> str:
    known = commands()
    width = max(map(len, known))
    lines = [f"usage: {PROG} <command> [options]", "",
             "A toolkit for Kaggle's Digit Recognizer: get the data, train, ensemble, submit.", "",
             "commands:"]
    lines += [f"  {name:{width}s}  {summary}" for name, summary in known.items()]
    lines += ["", f"{PROG} <command> --help describes a command's options; "
                  f"python scripts/<command>.py and {PROG}-<command> are the same commands."]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in commands():
        print(f"{usage()}\n\nerror: no command {name!r}; the commands are "
              f"{', '.join(commands())}", file=sys.stderr)
        return 2
    sys.argv[0] = f"{PROG} {name}"  # What argparse names in the command's usage line.
    module = importlib.import_module(f"kaggle_digits.cli.{name}")
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
