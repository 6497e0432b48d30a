"""Run directories packed for a Ray worker and unpacked again, on every Python the toolkit
supports: tarfile's ``data`` filter arrived in 3.11.4, and Debian 12's own Python is 3.11.2."""

from __future__ import annotations

import io
import tarfile

import pytest

from kaggle_digits.orchestration.executors import snapshots


@pytest.fixture(params=["with the data filter", "without it (Python 3.11.2)"])
def python_tarfile(request, monkeypatch):
    if request.param.startswith("without"):
        monkeypatch.delattr(tarfile, "data_filter")
    return request.param


def test_a_directory_comes_back_as_it_left(python_tarfile, tmp_path):
    source = tmp_path / "run"
    (source / "folds" / "fold-1").mkdir(parents=True)
    (source / "config.json").write_text("{}")
    (source / "folds" / "fold-1" / "model.keras").write_bytes(b"\x00" * 100)
    target = tmp_path / "back" / "run"
    snapshots.unpack_directory(snapshots.pack_directory(source), target)
    assert (target / "config.json").read_text() == "{}"
    assert (target / "folds" / "fold-1" / "model.keras").read_bytes() == b"\x00" * 100


@pytest.mark.parametrize("name, kind", [("../outside.txt", tarfile.REGTYPE),
                                        ("{tmp}/outside.txt", tarfile.REGTYPE),
                                        ("link", tarfile.SYMTYPE)])
def test_an_archive_never_writes_outside_or_makes_links(python_tarfile, tmp_path, name, kind):
    name = name.format(tmp=tmp_path / "inside")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        member = tarfile.TarInfo(name)
        member.type = kind
        if kind == tarfile.SYMTYPE:
            member.linkname = "/etc/passwd"
        archive.addfile(member, io.BytesIO(b""))
    target = tmp_path / "inside" / "run"
    try:
        snapshots.unpack_directory(buffer.getvalue(), target)
    except tarfile.TarError:
        assert not target.exists()
        assert list((tmp_path / "inside").iterdir()) == []  # No staging left behind.
    else:  # The data filter keeps an absolute name inside, as a relative one.
        assert name.startswith("/") and list(target.rglob("outside.txt"))
    assert not (tmp_path / "inside" / "outside.txt").exists()
    assert not (target / "link").is_symlink()
