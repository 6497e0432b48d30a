"""Get the competition bundle through the official ``kaggle`` client, verify it, unpack it safely.

A fetch never leaves a half-written file under its final name: the download and the unpacking
happen in a temporary directory beside the destination, and only verified files are moved in.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from kaggle_digits import UserError
from kaggle_digits.runs.io import fsync_path
from kaggle_digits.submission import kaggle_api
from kaggle_digits.submission.kaggle_api import (
    DEFAULT_COMPETITION,
    KaggleApiError,
    authenticated_api,
    call_timeout,
    describe_http_error,
    warn_if_credentials_readable,
)

EXPECTED_FILES = {
    "digit-recognizer": ("train.csv", "test.csv", "sample_submission.csv"),
}
# The real bundle unpacks to ~128 MB; anything far beyond that is a zip bomb, not data.
MAX_UNPACKED_BYTES = 2 * 1024**3
# Present in the destination while its files are being replaced: a fetch killed midway leaves
# it behind, and the next fetch then knows the files are a mix and fetches again.
INCOMPLETE_MARKER = ".fetch-incomplete"


class FetchError(UserError):
    """A fetch that cannot complete; the message is one line that says what to do."""


@dataclass
class FetchResult:
    dest: Path
    files: list[str]
    source: str
    skipped: bool = False


def _already_present(dest: Path, competition: str) -> bool:
    if (dest / INCOMPLETE_MARKER).exists():
        return False
    expected = EXPECTED_FILES.get(competition)
    if expected:
        return all((dest / name).is_file() for name in expected)
    return dest.is_dir() and any(dest.iterdir())


def _is_unsafe_member(info: zipfile.ZipInfo) -> str | None:
    """Return why a zip member may not be extracted, or None if it is a plain relative file."""
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in path.parts:
        return "path leaves the destination"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    if not info.is_dir() and path.name in ("", ".", ".."):
        return "no file name"
    return None


# What Python's zip reader decompresses; Kaggle writes deflate, other tools may not.
READABLE_COMPRESSION = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate",
                        zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma"}


def _unreadable_member(info: zipfile.ZipInfo) -> str | None:
    """Why Python cannot read a member (encrypted, or compressed in a way it does not know)."""
    if info.flag_bits & 0x1:
        return "is encrypted"
    if info.compress_type not in READABLE_COMPRESSION:
        return f"uses compression method {info.compress_type}"
    return None


def verify_zip(zip_path: Path, competition: str) -> list[zipfile.ZipInfo]:
    """Check the archive is complete, safe to unpack and holds the competition's files.

    Raises:
        FetchError: for a corrupt or truncated archive, an unsafe member, a zip bomb or a
            missing expected file.
    """
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise FetchError(f"{zip_path}: not a readable zip archive ({exc}); the download is "
                         f"corrupt or truncated, fetch it again") from None
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        for info in archive.infolist():
            reason = _is_unsafe_member(info)
            if reason:
                raise FetchError(f"{zip_path}: refusing unsafe member {info.filename!r} "
                                 f"({reason}); nothing was unpacked")
        for info in members:
            reason = _unreadable_member(info)
            if reason:
                raise FetchError(f"{_base_name(info)} in {zip_path} {reason}, which cannot be "
                                 f"read; unpack it by hand and use --data (nothing was "
                                 f"unpacked)")
        total = sum(info.file_size for info in members)
        if total > MAX_UNPACKED_BYTES:
            raise FetchError(f"{zip_path}: would unpack to {total / 1024**3:.1f} GiB, more than "
                             f"the {MAX_UNPACKED_BYTES / 1024**3:.0f} GiB cap; refusing")
        try:
            bad_member = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError,
                NotImplementedError) as exc:
            raise FetchError(f"{zip_path}: corrupt or truncated archive ({exc}); fetch it "
                             f"again") from None
        if bad_member is not None:
            raise FetchError(f"{zip_path}: member {bad_member!r} fails its CRC check; the "
                             f"archive is corrupt, fetch it again")
        seen: dict[str, str] = {}
        for info in members:
            name = _base_name(info)
            if name in seen:
                raise FetchError(f"{zip_path}: members {seen[name]!r} and {info.filename!r} "
                                 f"would both unpack to {name}; refusing an ambiguous bundle")
            seen[name] = info.filename
        names = set(seen)
        missing = [n for n in EXPECTED_FILES.get(competition, ()) if n not in names]
        if missing:
            raise FetchError(f"{zip_path}: not a {competition} bundle, missing "
                             f"{', '.join(missing)}")
    return members


def _base_name(info: zipfile.ZipInfo) -> str:
    return PurePosixPath(info.filename.replace("\\", "/")).name


def _unpack(zip_path: Path, staging: Path) -> list[str]:
    """Extract verified members flat into ``staging``; the bundle has no meaningful folders."""
    written = []
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = _base_name(info)
            with archive.open(info) as source, open(staging / name, "wb") as target:
                while chunk := source.read(1 << 20):
                    target.write(chunk)
                target.flush()
                os.fsync(target.fileno())
            written.append(name)
    return written


def download_bundle(competition: str, work_dir: Path) -> Path:
    """Download the competition's zip with the official client (which shows a progress bar)."""
    import requests
    import urllib3

    try:
        api = authenticated_api()
    except KaggleApiError as exc:
        raise FetchError(str(exc)) from None
    try:
        with call_timeout():  # The client sets none: a silent server would hold the fetch.
            api.competition_download_files(competition, path=str(work_dir), force=True,
                                           quiet=False)
    except requests.exceptions.HTTPError as exc:
        raise FetchError(describe_http_error(exc, competition, "download")) from None
    except requests.exceptions.Timeout:
        raise FetchError(f"the Kaggle API did not answer within "
                         f"{kaggle_api.CALL_TIMEOUT_S:.0f}s (or finish within "
                         f"{kaggle_api.CALL_DEADLINE_S:.0f}s); retry later or download the bundle "
                         f"by hand and use --from-zip") from None
    except requests.exceptions.ConnectionError as exc:
        raise FetchError(f"cannot reach the Kaggle API (network unreachable?): "
                         f"{type(exc).__name__}; retry later or download the bundle by hand "
                         f"and use --from-zip") from None
    except (ValueError, requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
            OSError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise FetchError(f"download incomplete ({reason}); run the fetch again") from None
    zips = sorted(work_dir.glob("*.zip"))
    if not zips:
        raise FetchError(f"the Kaggle client wrote no zip archive for '{competition}'")
    return zips[0]


def fetch(competition: str = DEFAULT_COMPETITION, dest: str | os.PathLike = "data/digit-recognizer",
          force: bool = False, from_zip: str | os.PathLike | None = None,
          log: Callable[[str], None] = print) -> FetchResult:
    """Make ``dest`` hold the competition files, downloading them unless already there.

    Args:
        competition: Kaggle competition slug.
        dest: directory for the unpacked files.
        force: download and unpack again even if the files are present.
        from_zip: use this bundle (downloaded by hand) instead of the Kaggle API.
        log: where progress messages go.

    Raises:
        FetchError: with a one-line explanation; ``dest`` is left as it was.
    """
    dest = Path(dest)
    if not force and _already_present(dest, competition):
        return FetchResult(dest, sorted(p.name for p in dest.iterdir()), "existing", skipped=True)
    if from_zip is not None and not Path(from_zip).is_file():
        raise FetchError(f"{from_zip}: no such file")
    if from_zip is None:
        warn_if_credentials_readable(log)
    # The folders made for the download are removed again if it fails: a refused fetch
    # leaves the tree as it was.
    made = [folder for folder in (dest.parent, *dest.parent.parents) if not folder.exists()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.fetch-") as tmp:
            work_dir = Path(tmp)
            if from_zip is not None:
                zip_path, source = Path(from_zip), str(from_zip)
            else:
                log(f"downloading '{competition}' through the Kaggle API ...")
                zip_path, source = download_bundle(competition, work_dir), f"kaggle:{competition}"
            verify_zip(zip_path, competition)
            staging = work_dir / "unpacked"
            staging.mkdir()
            files = _unpack(zip_path, staging)
            _replace_files(staging, files, dest)
    except BaseException:
        for folder in made:  # Deepest first.
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return FetchResult(dest, sorted(files), source)


def _replace_files(staging: Path, files: list[str], dest: Path) -> None:
    """Move the unpacked files into ``dest`` under the incomplete marker, removed last."""
    dest.mkdir(parents=True, exist_ok=True)
    marker = dest / INCOMPLETE_MARKER
    marker.write_text("a fetch is replacing these files; if it was interrupted, fetch again\n")
    fsync_path(dest)
    for name in files:
        os.replace(staging / name, dest / name)
    fsync_path(dest)
    marker.unlink()
    fsync_path(dest)

