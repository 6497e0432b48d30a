"""The submission ledger, the daily quota and the public scores, through the real client against
the loopback fake Kaggle server."""

from __future__ import annotations

import json

import pytest
from fake_kaggle import PUBLIC_SCORE, SCORING_ERROR, FakeKaggle
from helpers import (
    ROOT,
    assert_one_line_error,
    recorded_submission,
    run_script,
    write_submission_csv,
)

from kaggle_digits.runs.io import sha256_file
from kaggle_digits.submission.ledger import Ledger, parse_score
from kaggle_digits.submission.submit import SubmitError, submit


def with_origin(path, run_dir, accuracy=0.9964, rows=8400):
    """Give a recorded submission the run it came from and its validation figure."""
    record = json.loads(path.with_suffix(".json").read_text())
    record.update(run_dir=str(run_dir), val_accuracy=accuracy, val_rows=rows, arch="improved_cnn")
    path.with_suffix(".json").write_text(json.dumps(record))
    return path


def use_server(monkeypatch, server, isolated_env):
    for name, value in {**isolated_env, **server.client_env()}.items():
        monkeypatch.setenv(name, value)


def ledger_rows(path):
    with Ledger(path) as ledger:
        return ledger.rows()


@pytest.mark.slow  # A submit.py or submissions.py process.
def test_quota_spent_is_refused_and_says_when_the_day_resets(tmp_path, isolated_env):
    path, data_dir = recorded_submission(tmp_path)
    with FakeKaggle() as server:
        server.limits.update(numToday=5, numTotal=40, numAllowedNow=0)
        result = run_script("submit.py", str(path), "-m", "over quota", "--data", str(data_dir),
                            "--ledger", str(tmp_path / "ledger.sqlite"),
                            env={**isolated_env, **server.client_env()}, cwd=ROOT)
    assert_one_line_error(result, "no submissions left today for digit-recognizer",
                          "resets at 00:00 UTC, in ")
    assert server.submissions == [] and server.uploads == {}
    assert ledger_rows(tmp_path / "ledger.sqlite") == []


@pytest.mark.slow  # A submit.py or submissions.py process.
def test_a_submit_writes_its_row_says_what_is_left_and_sync_fills_the_score(
        tmp_path, isolated_env):
    path, data_dir = recorded_submission(tmp_path)
    with_origin(path, tmp_path / "runs" / "best-run")
    ledger = tmp_path / "ledger.sqlite"
    with FakeKaggle() as server:
        env = {**isolated_env, **server.client_env()}
        sent = run_script("submit.py", str(path), "-m", "5x improved_cnn", "--data",
                          str(data_dir), "--ledger", str(ledger), env=env, cwd=ROOT)
        assert sent.returncode == 0, sent.stderr
        assert "4 submission(s) left today" in sent.stdout
        [row] = ledger_rows(ledger)
        assert row["kaggle_ref"] == 1000 and row["status"] == "PENDING"
        assert row["sha256"] == sha256_file(path) and row["source"].endswith("best-run")
        assert row["val_accuracy"] == 0.9964 and row["val_ci_low"] < 0.9964 < row["val_ci_high"]
        server.submissions[0]["polls"] = 1  # Kaggle has scored it by the next listing.
        synced = run_script("submissions.py", "--sync", "--ledger", str(ledger), env=env,
                            cwd=tmp_path)
    assert synced.returncode == 0, synced.stderr
    assert "synced 1 Kaggle submission(s): 1 updated" in synced.stdout
    [row] = ledger_rows(ledger)
    assert row["status"] == "COMPLETE" and row["public_score"] == float(PUBLIC_SCORE)
    gap = (0.9964 - float(PUBLIC_SCORE)) * 100
    assert f"| {gap:+.2f} points | COMPLETE |" in synced.stdout
    assert f"mean validation − public over 1 scored submission(s): {gap:+.2f} points" \
        in synced.stdout
    assert ("best public score: 99.5710% (submission 1000, ens.csv) from "
            f"{tmp_path / 'runs' / 'best-run'}") in synced.stdout


def test_a_scoring_error_is_kept_with_kaggles_reason(tmp_path, isolated_env, monkeypatch):
    path = write_submission_csv(tmp_path / "sub.csv")
    with FakeKaggle(mode="scoring_error") as server:
        use_server(monkeypatch, server, isolated_env)
        with pytest.raises(SubmitError, match="could not score"):
            submit(path, "bad", wait=True, log=lambda _: None, sleep=lambda _: None,
                   check_origin=False, ledger_path=tmp_path / "ledger.sqlite")
    [row] = ledger_rows(tmp_path / "ledger.sqlite")
    assert row["status"] == "ERROR" and row["error_description"] == SCORING_ERROR


def test_a_refused_submit_is_recorded_as_not_sent(tmp_path, isolated_env, monkeypatch):
    path = write_submission_csv(tmp_path / "sub.csv")
    with FakeKaggle(mode="bad_request") as server:
        use_server(monkeypatch, server, isolated_env)
        with pytest.raises(SubmitError, match="daily Submission allowance"):
            submit(path, "refused", log=lambda _: None, check_origin=False,
                   ledger_path=tmp_path / "ledger.sqlite")
    [row] = ledger_rows(tmp_path / "ledger.sqlite")
    assert row["status"] == "not sent" and "400 Bad Request" in row["error_description"]


def test_a_429_then_success_writes_exactly_one_row(tmp_path, isolated_env, monkeypatch):
    path = write_submission_csv(tmp_path / "sub.csv")
    with FakeKaggle(mode="rate_limited") as server:
        use_server(monkeypatch, server, isolated_env)
        outcome = submit(path, "retry me", log=lambda _: None, sleep=lambda _: None,
                         check_origin=False, ledger_path=tmp_path / "ledger.sqlite")
    assert len(server.submissions) == 1 and outcome.ref == 1000
    [row] = ledger_rows(tmp_path / "ledger.sqlite")
    assert row["kaggle_ref"] == 1000 and row["status"] == "PENDING"


@pytest.mark.slow  # A submit.py or submissions.py process.
def test_a_submit_killed_after_the_send_is_resolved_by_sync(tmp_path, isolated_env, monkeypatch):
    from kaggle_digits.cli import submissions

    path = write_submission_csv(tmp_path / "sub.csv")
    ledger = tmp_path / "ledger.sqlite"
    with FakeKaggle() as server:
        use_server(monkeypatch, server, isolated_env)

        def killed(self, row_id, ref):
            raise KeyboardInterrupt

        with monkeypatch.context() as patch:
            patch.setattr(Ledger, "sent", killed)
            with pytest.raises(KeyboardInterrupt):
                submit(path, "killed mid-send", log=lambda _: None, check_origin=False,
                       ledger_path=ledger)
        [row] = ledger_rows(ledger)
        assert row["status"] == "sending" and row["kaggle_ref"] is None
        listing = run_script("submissions.py", "--ledger", str(ledger), cwd=tmp_path)
        assert "incomplete (killed mid-send; --sync resolves it)" in listing.stdout
        monkeypatch.chdir(tmp_path)
        assert submissions.main(["--sync", "--ledger", str(ledger)]) == 0
    [row] = ledger_rows(ledger)
    assert row["kaggle_ref"] == 1000 and row["status"] in ("PENDING", "COMPLETE")
    assert len(server.submissions) == 1


@pytest.mark.slow  # A submit.py or submissions.py process.
def test_sync_pages_past_kaggles_page_size_and_imports_outside_submissions(
        tmp_path, isolated_env, monkeypatch):
    """25 submissions made with the kaggle CLI: the ledger learns every one, none credited to
    a run: a file here of the same name (and its record) says what it holds now, not what Kaggle
    received."""
    from kaggle_digits.cli import submissions

    subs = tmp_path / "submissions"
    subs.mkdir()
    path, _ = recorded_submission(subs, "kept.csv")
    with_origin(path, tmp_path / "runs" / "kept-run")
    with FakeKaggle() as server:
        use_server(monkeypatch, server, isolated_env)
        for number in range(25):
            server.submissions.append({"ref": 2000 + number, "description": f"cli {number}",
                                       "content": b"", "polls": 5,
                                       "fileName": "kept.csv" if number == 3 else "gone.csv"})
        monkeypatch.chdir(tmp_path)
        assert submissions.main(["--sync", "--ledger", str(tmp_path / "l.sqlite")]) == 0
    rows = ledger_rows(tmp_path / "l.sqlite")
    assert sorted(row["kaggle_ref"] for row in rows) == list(range(2000, 2025))
    kept = next(row for row in rows if row["kaggle_ref"] == 2003)
    assert kept["origin"] == "imported" and kept["file"] == "kept.csv"
    assert kept["sha256"] is None and kept["val_accuracy"] is None
    assert all(row["source"] is None and row["config_summary"].startswith("origin unknown")
               for row in rows)
    assert all(row["public_score"] == float(PUBLIC_SCORE) for row in rows)


@pytest.mark.parametrize("text", ["nan", "inf", "1.5", "-0.1", "0.9x"])
def test_a_public_score_that_is_no_accuracy_is_refused(text):
    with pytest.raises(ValueError, match="public score"):
        parse_score(text)
    assert parse_score("0.99571") == 0.99571 and parse_score(None) is None


@pytest.mark.slow  # A submit.py or submissions.py process.
def test_an_unreadable_ledger_is_one_line(tmp_path):
    (tmp_path / "l.sqlite").write_bytes(b"not a database" * 100)
    result = run_script("submissions.py", "--ledger", str(tmp_path / "l.sqlite"), cwd=tmp_path)
    assert_one_line_error(result, "not a usable submission ledger")
