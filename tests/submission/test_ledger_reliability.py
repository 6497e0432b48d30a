"""The ledger records what Kaggle received, under kills, overlaps and odd answers: through
submit.py and submissions.py, the real kaggle client and the loopback fake Kaggle server."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from fake_kaggle import FakeKaggle
from helpers import (
    ROOT,
    assert_one_line_error,
    recorded_submission,
    run_cli,
    write_submission_csv,
)

from kaggle_digits.runs.io import sha256_file
from kaggle_digits.submission import kaggle_api
from kaggle_digits.submission import ledger as ledger_module
from kaggle_digits.submission.ledger import Ledger


def ledger_rows(path):
    with Ledger(path) as ledger:
        return ledger.rows()


def use_server(monkeypatch, server, isolated_env):
    for name, value in {**isolated_env, **server.client_env()}.items():
        monkeypatch.setenv(name, value)


def killed_after_the_send(monkeypatch):
    """Ledger.sent raising as a kill would land: the upload happened, its ref is not written."""
    def killed(self, row_id, ref):
        raise KeyboardInterrupt
    monkeypatch.setattr(Ledger, "sent", killed)


def test_two_killed_submits_with_one_message_keep_their_own_refs(tmp_path, isolated_env,
                                                                 monkeypatch):
    """--sync matched the newest ref to the oldest row: each public score landed on the other."""
    first = write_submission_csv(tmp_path / "a.csv")
    second = write_submission_csv(tmp_path / "b.csv", rows=28_000)
    ledger = tmp_path / "ledger.sqlite"
    with FakeKaggle() as server:
        use_server(monkeypatch, server, isolated_env)
        with monkeypatch.context() as patch:
            killed_after_the_send(patch)
            for path in (first, second, first):
                result = run_cli("submit.py", str(path), "-m", "same words", "--no-provenance",
                                 "--ledger", str(ledger), cwd=tmp_path)
                assert result.returncode == 130, result.stderr
        assert [row["status"] for row in ledger_rows(ledger)] == ["sending"] * 3
        result = run_cli("submissions.py", "--sync", "--ledger", str(ledger), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "3 interrupted submit(s) resolved" in result.stdout and "0 imported" in result.stdout
    sent = {submission["ref"]: submission["fileName"] for submission in server.submissions}
    rows = ledger_rows(ledger)
    assert [row["kaggle_ref"] for row in rows] == [1000, 1001, 1002]  # The order of sending.
    assert all(sent[row["kaggle_ref"]] == os.path.basename(row["file"]) for row in rows)


def submit_process(path, ledger, env):
    return subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "submit.py"), str(path), "-m", "in flight",
         "--no-provenance", "--ledger", str(ledger)], cwd=ROOT, env={**os.environ, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow  # A submit.py process.
def test_sync_leaves_a_submit_in_flight_alone_and_resolves_it_once_killed(
        tmp_path, isolated_env, monkeypatch):
    """Sync marked a submit still sending as "never reached Kaggle", then imported the same
    submission again once that submit was killed."""
    path = write_submission_csv(tmp_path / "flight.csv")
    ledger = tmp_path / "ledger.sqlite"
    with FakeKaggle() as server:
        server.hold_create = threading.Event()
        use_server(monkeypatch, server, isolated_env)
        sender = submit_process(path, ledger, {**isolated_env, **server.client_env()})
        try:
            deadline = time.monotonic() + 60
            while not server.submissions and time.monotonic() < deadline:
                time.sleep(0.1)
            assert server.submissions, sender.stderr.read() if sender.poll() else "not sent"
            during = run_cli("submissions.py", "--sync", "--ledger", str(ledger),
                             cwd=tmp_path)
            assert during.returncode == 0, during.stderr
            assert "1 still being sent (left alone)" in during.stdout
            assert "0 imported" in during.stdout
            [row] = ledger_rows(ledger)
            assert row["status"] == "sending" and row["kaggle_ref"] is None
        finally:
            sender.send_signal(signal.SIGKILL)
            sender.wait()
        after = run_cli("submissions.py", "--sync", "--ledger", str(ledger), cwd=tmp_path)
    assert after.returncode == 0, after.stderr
    assert "1 interrupted submit(s) resolved" in after.stdout and "0 imported" in after.stdout
    [row] = ledger_rows(ledger)
    assert row["kaggle_ref"] == 1000 and row["origin"] == "toolkit"


def test_an_edited_file_sent_without_provenance_is_credited_to_no_run(tmp_path, isolated_env,
                                                                      monkeypatch):
    path, _ = recorded_submission(tmp_path)
    record = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**record, "run_dir": "/runs/original",
                                                     "val_accuracy": 0.99, "val_rows": 8400}))
    edited = path.read_text().replace("\n1,0\n", "\n1,7\n", 1)  # Edited by hand.
    assert edited != path.read_text()
    path.write_text(edited)
    ledger = tmp_path / "ledger.sqlite"
    with FakeKaggle() as server:
        use_server(monkeypatch, server, isolated_env)
        result = run_cli("submit.py", str(path), "-m", "edited", "--no-provenance", "--ledger",
                         str(ledger), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [row] = ledger_rows(ledger)
    assert row["source"] is None and row["val_accuracy"] is None
    assert row["config_summary"].startswith("origin unknown") and "SHA-256" in \
        row["config_summary"]
    assert row["sha256"] == sha256_file(path)


def test_a_runs_own_submission_csv_names_the_run(tmp_path, isolated_env, monkeypatch):
    run_dir = tmp_path / "runs" / "X"
    run_dir.mkdir(parents=True)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "test.csv").write_text("pixel0\n0\n")
    path = write_submission_csv(run_dir / "submission.csv")
    (run_dir / "metrics.json").write_text(json.dumps({
        "data_fingerprint": {"test.csv": sha256_file(data_dir / "test.csv")},
        "submission_sha256": sha256_file(path), "val_accuracy": 0.995, "val_rows": 8400,
        "arch": "improved_cnn"}))
    ledger = tmp_path / "ledger.sqlite"
    with FakeKaggle() as server:
        use_server(monkeypatch, server, isolated_env)
        result = run_cli("submit.py", str(path), "-m", "run X", "--data", str(data_dir),
                         "--ledger", str(ledger), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [row] = ledger_rows(ledger)
    assert row["source"] == str(run_dir.resolve()) and row["val_accuracy"] == 0.995


def damaged_ledger(path):
    """A ledger whose pages were overwritten in the middle (a bad disk, a half-copied file)."""
    with Ledger(path) as ledger:
        for number in range(300):
            row, lock = ledger.begin(write_submission_csv(path.parent / "x.csv", rows=10),
                                     f"row {number}" * 20, "digit-recognizer")
            lock.release()
    data = bytearray(path.read_bytes())
    data[4096 + 100:4096 * 3] = b"\xff" * (4096 * 2 - 100)
    path.write_bytes(bytes(data))
    return path


def test_a_ledger_with_damaged_pages_is_one_line_and_nothing_is_sent(tmp_path, isolated_env,
                                                                     monkeypatch):
    ledger = damaged_ledger(tmp_path / "ledger.sqlite")
    listing = run_cli("submissions.py", "--ledger", str(ledger), cwd=tmp_path)
    assert_one_line_error(listing, "not a usable submission ledger", "--sync")
    path = write_submission_csv(tmp_path / "sub.csv")
    with FakeKaggle() as server:
        use_server(monkeypatch, server, isolated_env)
        result = run_cli("submit.py", str(path), "-m", "x", "--no-provenance", "--ledger",
                         str(ledger), cwd=tmp_path)
    assert_one_line_error(result, "not a usable submission ledger")
    assert server.submissions == [] and not any(
        request["path"].endswith("GetSubmissionLimits") for request in server.requests)


def test_a_ledger_held_by_another_program_during_the_upload_loses_nothing(
        tmp_path, isolated_env, monkeypatch):
    """A successful upload became a traceback and a row stuck at "sending"."""
    path = write_submission_csv(tmp_path / "sub.csv")
    ledger = tmp_path / "ledger.sqlite"
    monkeypatch.setattr(ledger_module, "LOCK_WAIT_S", 1.0)
    holder = {}

    def another_program_takes_the_ledger():
        connection = sqlite3.connect(ledger, check_same_thread=False)
        connection.execute("BEGIN EXCLUSIVE")
        holder["connection"] = connection

    with FakeKaggle() as server:
        server.on_create = another_program_takes_the_ledger
        use_server(monkeypatch, server, isolated_env)
        result = run_cli("submit.py", str(path), "-m", "held", "--no-provenance", "--ledger",
                         str(ledger), cwd=tmp_path)
        assert_one_line_error(result, "Kaggle took", "as submission 1000",
                              "held by another program", "submissions.py --sync")
        holder["connection"].rollback()
        holder["connection"].close()
        synced = run_cli("submissions.py", "--sync", "--ledger", str(ledger), cwd=tmp_path)
    assert synced.returncode == 0, synced.stderr
    [row] = ledger_rows(ledger)
    assert row["kaggle_ref"] == 1000 and row["origin"] == "toolkit"


def test_an_upload_answered_with_no_json_says_kaggle_may_have_it(tmp_path, isolated_env,
                                                                 monkeypatch):
    path = write_submission_csv(tmp_path / "sub.csv")
    ledger = tmp_path / "ledger.sqlite"
    with FakeKaggle(mode="not_json") as server:
        use_server(monkeypatch, server, isolated_env)
        result = run_cli("submit.py", str(path), "-m", "garbled", "--no-provenance",
                         "--ledger", str(ledger), cwd=tmp_path)
        assert_one_line_error(result, "could not be read", "may or may not have taken it",
                              "--sync")
        server.mode = "ok"
        synced = run_cli("submissions.py", "--sync", "--ledger", str(ledger), cwd=tmp_path)
    assert synced.returncode == 0, synced.stderr
    [row] = ledger_rows(ledger)
    assert row["kaggle_ref"] == 1000


def test_a_server_that_never_answers_times_out(tmp_path, isolated_env, monkeypatch):
    path = write_submission_csv(tmp_path / "sub.csv")
    monkeypatch.setattr(kaggle_api, "CALL_TIMEOUT_S", 2.0)
    with FakeKaggle() as server:
        server.hold_create = threading.Event()
        use_server(monkeypatch, server, isolated_env)
        started = time.monotonic()
        result = run_cli("submit.py", str(path), "-m", "silence", "--no-provenance",
                         "--ledger", str(tmp_path / "ledger.sqlite"), cwd=tmp_path)
    assert_one_line_error(result, "did not answer within 2s", "may or may not have taken it")
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("option,value", [("--poll-every", "-1"), ("--poll-every", "nan"),
                                          ("--poll-every", "0"), ("--timeout", "nan"),
                                          ("--timeout", "inf")])
def test_wait_options_no_clock_can_keep_are_refused_before_anything_is_sent(
        option, value, tmp_path, isolated_env, monkeypatch):
    path = write_submission_csv(tmp_path / "sub.csv")
    with FakeKaggle() as server:
        use_server(monkeypatch, server, isolated_env)
        result = run_cli("submit.py", str(path), "-m", "x", "--no-provenance", "--wait",
                         option, value, "--ledger", str(tmp_path / "l.sqlite"), cwd=tmp_path)
    assert_one_line_error(result, option, "nothing was sent")
    assert server.requests == [] and not (tmp_path / "l.sqlite").exists()


@pytest.mark.parametrize("content", ["[1, 2]", '{"username": 5, "key": "k"}', "{not json"])
def test_a_credentials_file_of_the_wrong_shape_is_named(content, tmp_path, isolated_env,
                                                        monkeypatch):
    path = write_submission_csv(tmp_path / "sub.csv")
    key_dir = tmp_path / "home" / ".kaggle"
    key_dir.mkdir(parents=True)
    (key_dir / "kaggle.json").write_text(content)
    (key_dir / "kaggle.json").chmod(0o600)
    with FakeKaggle() as server:
        env = {**isolated_env, **server.client_env()}
        env.pop("KAGGLE_USERNAME"), env.pop("KAGGLE_KEY")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        result = run_cli("submit.py", str(path), "-m", "x", "--no-provenance", "--ledger",
                         str(tmp_path / "l.sqlite"), cwd=tmp_path)
    assert_one_line_error(result, str(key_dir / "kaggle.json"))
    assert server.submissions == []


def test_a_rejected_token_is_not_called_missing(tmp_path, isolated_env, monkeypatch):
    path = write_submission_csv(tmp_path / "sub.csv")
    with FakeKaggle() as server:
        env = {**isolated_env, **server.client_env(KAGGLE_API_TOKEN="malformed")}
        env.pop("KAGGLE_USERNAME"), env.pop("KAGGLE_KEY")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        result = run_cli("submit.py", str(path), "-m", "x", "--no-provenance", "--ledger",
                         str(tmp_path / "l.sqlite"), cwd=tmp_path)
    assert_one_line_error(result, "did not accept the credentials in KAGGLE_API_TOKEN")
    assert "no Kaggle credentials found" not in result.stderr and server.submissions == []


def test_a_status_the_client_does_not_know_is_one_line(tmp_path, isolated_env, monkeypatch):
    ledger = tmp_path / "ledger.sqlite"
    with FakeKaggle(mode="odd_status") as server:
        server.submissions.append({"ref": 2000, "description": "web", "content": b"",
                                   "polls": 0, "fileName": "web.csv"})
        use_server(monkeypatch, server, isolated_env)
        result = run_cli("submissions.py", "--sync", "--ledger", str(ledger), cwd=tmp_path)
    assert_one_line_error(result, "could not be read", "QUEUED_FOR_REVIEW")
    assert ledger_rows(ledger) == []


@pytest.mark.parametrize("record", [{"members": 5}, {"members": [{"arch": "x"}]},
                                    {"val_accuracy": 7.0, "val_rows": 8400},
                                    {"val_accuracy": 0.99, "val_rows": -3}])
def test_a_record_with_odd_members_or_accuracies_is_refused_before_sending(
        record, tmp_path, isolated_env, monkeypatch):
    path, data_dir = recorded_submission(tmp_path)
    recorded = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**recorded, **record}))
    with FakeKaggle() as server:
        use_server(monkeypatch, server, isolated_env)
        result = run_cli("submit.py", str(path), "-m", "x", "--data", str(data_dir),
                         "--ledger", str(tmp_path / "l.sqlite"), cwd=tmp_path)
        assert_one_line_error(result, "not a readable submission record", "nothing was sent")
        assert server.submissions == []
        # Sent anyway with --no-provenance: the row says its origin is unknown.
        result = run_cli("submit.py", str(path), "-m", "x", "--no-provenance", "--ledger",
                         str(tmp_path / "l.sqlite"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [row] = ledger_rows(tmp_path / "l.sqlite")
    assert row["source"] is None and row["config_summary"].startswith("origin unknown")


def test_what_is_left_today_is_said_once(tmp_path, isolated_env, monkeypatch):
    path = write_submission_csv(tmp_path / "sub.csv")
    with FakeKaggle() as server:
        use_server(monkeypatch, server, isolated_env)
        result = run_cli("submit.py", str(path), "-m", "x", "--no-provenance", "--ledger",
                         str(tmp_path / "l.sqlite"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("submission(s) left today") == 1
