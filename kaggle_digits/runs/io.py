"""Atomic file output: a file appears under its final name complete, or not at all."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import tokenize
from pathlib import Path
from typing import Iterator

import numpy as np

from kaggle_digits import UserError


def _process_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by their owner only; finished outputs get the usual permissions.
_FILE_MODE = 0o666 & ~_process_umask()


# The longest file name the file systems people use take (ext4, XFS, btrfs, tmpfs, APFS), in
# bytes of its encoding, and the length of the random part of a tempfile.mkstemp name.
FILE_NAME_MAX_BYTES = 255
_TEMP_RANDOM_CHARS = 8


def _temp_affixes(final_name: str, suffix: str | None = None) -> tuple[str, str]:
    """The prefix and suffix of the temporary file :func:`atomic_path` writes ``final_name``
    through."""
    return f".{final_name}.", suffix or ".tmp" + Path(final_name).suffix


def temp_name_bytes(final_name: str) -> int:
    """How many bytes the name of the temporary file written for ``final_name`` takes."""
    prefix, suffix = _temp_affixes(final_name)
    return len(os.fsencode(prefix)) + _TEMP_RANDOM_CHARS + len(os.fsencode(suffix))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds.

    Writers that insist on a file name (``model.save`` wants ``.keras``) write to the yielded
    path; the temporary file lives in the same directory so the final rename is atomic.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = _temp_affixes(final.name, suffix)
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=prefix, suffix=suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _FILE_MODE)
        fsync_path(tmp)
        os.replace(tmp, final)
        # The rename itself survives a power cut only once its directory is synced.
        fsync_path(final.parent)
    except OSError as exc:
        if exc.filename is None:  # A failed write names no file: name the one being written.
            raise OSError(exc.errno, exc.strerror or str(exc), str(final)) from exc
        raise
    finally:
        tmp.unlink(missing_ok=True)


def fsync_path(path: Path) -> None:
    """Flush a file's (or a directory's entries') data to disk; writers like ``model.save`` close
    their files without syncing them."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, flushed to disk before the rename."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, payload: object) -> Path:
    return write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def save_npy_atomic(path: str | os.PathLike, array: np.ndarray) -> Path:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return write_bytes_atomic(path, buffer.getvalue())


def load_npy(path: str | os.PathLike) -> np.ndarray:
    """Load a saved array; pickles are refused because run directories may come from others.

    Raises:
        UserError: naming the file, where it is no readable array (cut short, overwritten,
            its header damaged): numpy's own errors for that range from EOFError to a
            tokenizer's.
    """
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (ValueError, EOFError, OverflowError, SyntaxError, MemoryError, OSError,
            tokenize.TokenError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise UserError(f"{path}: a damaged array, not what a run writes ({reason}); train "
                        f"or resume the run again") from None


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


# Records hold counts, seeds and scores: an integer beyond this is damage or hostility, never data.
JSON_INTEGER_LIMIT = 2**62


def _json_integer(text: str) -> int:
    value = int(text)
    if abs(value) > JSON_INTEGER_LIMIT:
        raise UserError(f"the number {text[:24]}{'...' if len(text) > 24 else ''} is too large")
    return value


def _json_constant(name: str):
    raise UserError(f"{name} is not a number a record may hold")


def parse_json(text: str):
    """JSON as this package's records allow it: no NaN or Infinity, no integer beyond 2**62, no
    float that overflows to infinity (json.loads accepts all three).

    Raises:
        ValueError (json.JSONDecodeError for malformed text).
    """
    def number(text: str) -> float:
        value = float(text)
        if value in (float("inf"), float("-inf")):
            raise UserError(f"the number {text[:24]} is too large")
        return value

    return json.loads(text, parse_int=_json_integer, parse_constant=_json_constant,
                      parse_float=number)
