"""fetch.py against a fake Kaggle server that the real ``kaggle`` client talks to."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import pytest
from fake_kaggle import DOWNLOAD_PATH, FakeKaggle
from helpers import assert_one_line_error, run_script

from kaggle_digits.data.fetch import FetchError, fetch

FILES = {
    "train.csv": b"label,pixel0\n1,0\n",
    "test.csv": b"pixel0\n0\n",
    "sample_submission.csv": b"ImageId,Label\n1,0\n",
}


def make_zip(members: dict[str, bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def only_dest_left(parent: Path) -> list[str]:
    """What is in ``parent``; a folder the refused fetch made for itself is gone again."""
    return sorted(p.name for p in parent.iterdir()) if parent.exists() else []


def test_downloads_through_the_kaggle_client_and_unpacks(tmp_path, isolated_env):
    dest = tmp_path / "out" / "digit-recognizer"
    with FakeKaggle(make_zip(FILES)) as server:
        result = run_script("fetch.py", "--dest", str(dest),
                            env={**isolated_env, **server.client_env()})
        assert result.returncode == 0, result.stderr
        assert {name: (dest / name).read_bytes() for name in FILES} == FILES
        download = [r for r in server.requests if r["path"] == DOWNLOAD_PATH][0]
        assert download["json"] == {"competitionName": "digit-recognizer"}
        assert download["authorization"].startswith("Basic ")
        assert only_dest_left(dest.parent) == ["digit-recognizer"]

        again = run_script("fetch.py", "--dest", str(dest),
                           env={**isolated_env, **server.client_env()})
        assert again.returncode == 0 and "nothing to do" in again.stdout
        assert len([r for r in server.requests if r["path"] == DOWNLOAD_PATH]) == 1


def test_forbidden_says_to_accept_the_rules_and_writes_nothing(tmp_path, isolated_env):
    dest = tmp_path / "out" / "digit-recognizer"
    with FakeKaggle(make_zip(FILES), mode="forbidden") as server:
        result = run_script("fetch.py", "--dest", str(dest),
                            env={**isolated_env, **server.client_env()})
    assert_one_line_error(result, "403", "accept the competition rules",
                          "kaggle.com/competitions/digit-recognizer/rules")
    assert only_dest_left(dest.parent) == []


def test_truncated_zip_is_refused_and_nothing_is_left(tmp_path, isolated_env):
    dest = tmp_path / "out" / "digit-recognizer"
    bundle = make_zip(FILES)
    with FakeKaggle(bundle[: len(bundle) // 2]) as server:
        result = run_script("fetch.py", "--dest", str(dest),
                            env={**isolated_env, **server.client_env()})
    assert_one_line_error(result, "corrupt or truncated")
    assert only_dest_left(dest.parent) == []


def test_missing_credentials_say_where_they_go(tmp_path, isolated_env):
    result = run_script("fetch.py", "--dest", str(tmp_path / "d"), env=isolated_env)
    assert_one_line_error(result, "kaggle.json", "KAGGLE_USERNAME", "KAGGLE_KEY")


def test_unreachable_network_is_one_line(tmp_path, isolated_env):
    with FakeKaggle(b"") as server:
        env = {**isolated_env, **server.client_env()}
    # The server has shut down: its port now refuses connections, as an offline network does.
    result = run_script("fetch.py", "--dest", str(tmp_path / "d"), env=env)
    assert_one_line_error(result, "cannot reach the Kaggle API")


def test_from_zip_unpacks_a_bundle_downloaded_by_hand(tmp_path):
    bundle = tmp_path / "digit-recognizer.zip"
    bundle.write_bytes(make_zip(FILES))
    result = fetch(dest=tmp_path / "d", from_zip=bundle, log=lambda _: None)
    assert sorted(result.files) == sorted(FILES)
    assert (tmp_path / "d" / "train.csv").read_bytes() == FILES["train.csv"]
    assert fetch(dest=tmp_path / "d", from_zip=bundle).skipped
    (tmp_path / "d" / "train.csv").write_bytes(b"changed")
    fetch(dest=tmp_path / "d", from_zip=bundle, force=True)
    assert (tmp_path / "d" / "train.csv").read_bytes() == FILES["train.csv"]


@pytest.mark.parametrize("members, symlink, reason", [
    ({**FILES, "../evil.csv": b"x"}, None, "leaves the destination"),
    ({**FILES, "/tmp/abs.csv": b"x"}, None, "absolute path"),
    (FILES, "link.csv", "symbolic link"),
])
def test_unsafe_members_are_refused_before_anything_is_written(tmp_path, members, symlink,
                                                               reason):
    bundle = tmp_path / "bad.zip"
    bundle.write_bytes(make_zip(members, symlink))
    dest = tmp_path / "out" / "d"
    with pytest.raises(FetchError, match=reason):
        fetch(dest=dest, from_zip=bundle)
    assert not (tmp_path / "evil.csv").exists()
    assert only_dest_left(dest.parent) == []


def test_a_zip_without_the_competition_files_is_refused(tmp_path):
    bundle = tmp_path / "other.zip"
    bundle.write_bytes(make_zip({"train.csv": b"x"}))
    with pytest.raises(FetchError, match="missing test.csv, sample_submission.csv"):
        fetch(dest=tmp_path / "d", from_zip=bundle)


def test_from_zip_cli_reports_a_missing_file(tmp_path):
    result = run_script("fetch.py", "--from-zip", str(tmp_path / "nope.zip"),
                        "--dest", str(tmp_path / "d"))
    assert_one_line_error(result, "no such file")


def test_world_readable_kaggle_json_is_warned_about(tmp_path, isolated_env, monkeypatch):
    from kaggle_digits.submission.kaggle_api import warn_if_credentials_readable

    config_dir = Path(isolated_env["KAGGLE_CONFIG_DIR"])
    config_dir.mkdir(parents=True)
    key_file = config_dir / "kaggle.json"
    key_file.write_text('{"username": "tester", "key": "secret-key-123"}')
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config_dir))
    lines = []
    key_file.chmod(0o644)
    warn_if_credentials_readable(lines.append)
    assert lines and "chmod 600" in lines[0] and "secret-key-123" not in lines[0]
    lines.clear()
    key_file.chmod(0o600)
    warn_if_credentials_readable(lines.append)
    assert lines == []


def test_api_token_alone_is_enough(tmp_path, isolated_env):
    with FakeKaggle(make_zip(FILES)) as server:
        env = {**isolated_env, **server.client_env()}
        del env["KAGGLE_USERNAME"], env["KAGGLE_KEY"]
        env["KAGGLE_API_TOKEN"] = "KGAT_not_a_real_token"
        result = run_script("fetch.py", "--dest", str(tmp_path / "d"), env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "d" / "train.csv").exists()
    assert "KGAT_not_a_real_token" not in result.stdout + result.stderr
    assert any("KGAT_not_a_real_token" in (r["authorization"] or "") for r in server.requests)


@pytest.mark.parametrize("mode, needles", [
    ("unauthorized", ("401 Unauthorized", "kaggle.json")),
    ("not_found", ("404 Not Found", "--competition")),
])
def test_download_refusals_are_one_line_and_write_nothing(mode, needles, tmp_path, isolated_env):
    dest = tmp_path / "out" / "digit-recognizer"
    with FakeKaggle(make_zip(FILES), mode=mode) as server:
        result = run_script("fetch.py", "--dest", str(dest),
                            env={**isolated_env, **server.client_env()})
    assert_one_line_error(result, *needles)
    assert only_dest_left(dest.parent) == []


def test_a_body_shorter_than_its_content_length_is_refused(tmp_path, isolated_env, monkeypatch):
    """The client retries a cut-off download (with back-off sleeps, skipped here) and then
    gives up: one line, and nothing partial under the destination."""
    import time

    for name, value in isolated_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    dest = tmp_path / "out" / "digit-recognizer"
    with FakeKaggle(make_zip(FILES), mode="short_body") as server:
        for name, value in server.client_env().items():
            monkeypatch.setenv(name, value)
        with pytest.raises(FetchError, match="download incomplete") as info:
            fetch(dest=dest, log=lambda _: None)
    assert "\n" not in str(info.value)
    assert len([r for r in server.requests if r["path"].startswith("/blobs/")]) > 1
    assert only_dest_left(dest.parent) == []


@pytest.mark.parametrize("extra, reason", [
    ({".": b"x"}, "no file name"),
    ({"nested/train.csv": b"label,pixel0\n2,0\n"}, "would both unpack to train.csv"),
], ids=["member named '.'", "two members with one base name"])
def test_ambiguous_members_are_refused(extra, reason, tmp_path):
    bundle = tmp_path / "bad.zip"
    bundle.write_bytes(make_zip({**FILES, **extra}))
    dest = tmp_path / "out" / "d"
    with pytest.raises(FetchError, match=reason):
        fetch(dest=dest, from_zip=bundle)
    assert only_dest_left(dest.parent) == []


def test_directory_entries_are_skipped(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("digit-recognizer/"), b"")
        for name, content in FILES.items():
            archive.writestr(f"digit-recognizer/{name}", content)
    bundle = tmp_path / "nested.zip"
    bundle.write_bytes(buffer.getvalue())
    result = fetch(dest=tmp_path / "d", from_zip=bundle, log=lambda _: None)
    assert sorted(result.files) == sorted(FILES)
    assert {name: (tmp_path / "d" / name).read_bytes() for name in FILES} == FILES


def test_force_killed_between_files_is_fetched_again(tmp_path, monkeypatch):
    """--force replaces three files; a kill after the first leaves a mix that the next fetch
    must not call complete."""
    import kaggle_digits.data.fetch as fetch_module

    bundle = tmp_path / "digit-recognizer.zip"
    bundle.write_bytes(make_zip(FILES))
    dest = tmp_path / "d"
    fetch(dest=dest, from_zip=bundle, log=lambda _: None)
    newer = {name: content + b"0\n" for name, content in FILES.items()}
    bundle.write_bytes(make_zip(newer))
    real_replace, moved = os.replace, []

    def killed_after_one(source, target):
        if moved:
            raise KeyboardInterrupt
        moved.append(target)
        return real_replace(source, target)

    monkeypatch.setattr(fetch_module.os, "replace", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        fetch(dest=dest, from_zip=bundle, force=True, log=lambda _: None)
    monkeypatch.setattr(fetch_module.os, "replace", real_replace)
    result = fetch(dest=dest, from_zip=bundle, log=lambda _: None)
    assert not result.skipped
    assert {name: (dest / name).read_bytes() for name in FILES} == newer
    assert only_dest_left(dest) == sorted(FILES)


def patch_member(bundle: bytes, name: str, method: int | None = None,
                 encrypted: bool = False) -> bytes:
    """A bundle whose member ``name`` claims another compression method or encryption (both in
    its local header and in the central directory, as other zip tools write them)."""
    data = bytearray(bundle)
    encoded = name.encode()
    for signature, flags_at, method_at, name_at in ((b"PK\x03\x04", 6, 8, 30),
                                                    (b"PK\x01\x02", 8, 10, 46)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            if data[start + name_at:start + name_at + len(encoded)] == encoded:
                if method is not None:
                    data[start + method_at:start + method_at + 2] = method.to_bytes(2, "little")
                if encrypted:
                    data[start + flags_at] |= 0x1
            start += 4
    return bytes(data)


@pytest.mark.parametrize("method, encrypted, reason", [
    (9, False, "uses compression method 9"),  # Deflate64, as Windows' Explorer writes it.
    (93, False, "uses compression method 93"),  # Zstandard.
    (None, True, "is encrypted"),
])
def test_bundles_python_cannot_read_are_one_line_and_unpack_nothing(method, encrypted, reason,
                                                                    tmp_path):
    bundle = tmp_path / "digit-recognizer.zip"
    bundle.write_bytes(patch_member(make_zip(FILES), "train.csv", method, encrypted))
    dest = tmp_path / "out" / "d"
    result = run_script("fetch.py", "--from-zip", str(bundle), "--dest", str(dest))
    assert_one_line_error(result, f"train.csv in {bundle} {reason}, which cannot be read; "
                                  f"unpack it by hand and use --data")
    assert not dest.exists()
    assert not (tmp_path / "out").exists() or only_dest_left(tmp_path / "out") == []


def test_a_server_that_never_answers_the_download_times_out(tmp_path, isolated_env,
                                                            monkeypatch):
    """The client passes requests no timeout: a server that took the connection and said
    nothing held the fetch forever."""
    import threading
    import time

    from kaggle_digits.submission import kaggle_api

    monkeypatch.setattr(kaggle_api, "CALL_TIMEOUT_S", 2.0)
    for name, value in isolated_env.items():
        monkeypatch.setenv(name, value)
    dest = tmp_path / "out" / "digit-recognizer"
    with FakeKaggle(make_zip(FILES)) as server:
        server.hold_download = threading.Event()
        for name, value in server.client_env().items():
            monkeypatch.setenv(name, value)
        started = time.monotonic()
        with pytest.raises(FetchError, match="did not answer within 2s") as info:
            fetch(dest=dest, log=lambda _: None)
    assert time.monotonic() - started < 30 and "\n" not in str(info.value)
    assert only_dest_left(dest.parent) == []


def test_a_server_that_trickles_the_download_meets_the_deadline(tmp_path, isolated_env,
                                                                monkeypatch):
    """requests' timeout is per read: one byte a second kept a fetch going for ever."""
    import time

    from kaggle_digits.submission import kaggle_api

    monkeypatch.setattr(kaggle_api, "CALL_TIMEOUT_S", 2.0)
    monkeypatch.setattr(kaggle_api, "CALL_DEADLINE_S", 3.0)
    for name, value in isolated_env.items():
        monkeypatch.setenv(name, value)
    dest = tmp_path / "out" / "digit-recognizer"
    with FakeKaggle(make_zip(FILES), mode="trickle") as server:
        for name, value in server.client_env().items():
            monkeypatch.setenv(name, value)
        started = time.monotonic()
        with pytest.raises(FetchError, match="or finish within 3s"):
            fetch(dest=dest, log=lambda _: None)
    assert time.monotonic() - started < 15
    assert only_dest_left(dest.parent) == []
