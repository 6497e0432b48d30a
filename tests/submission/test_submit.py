"""submit.py against the fake Kaggle server, through the real ``kaggle`` client."""

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

from kaggle_digits.submission.submit import SubmitError, submit


def submit_args(path, *extra):
    return (str(path), "-m", "5x improved_cnn", "--poll-every", "0.1", "--ledger",
            str(path.parent / "ledger.sqlite"), *extra)


@pytest.mark.slow  # A submit.py process: the kaggle client configures itself as it loads.
def test_submits_and_waits_for_the_public_score(tmp_path, isolated_env):
    path, data_dir = recorded_submission(tmp_path, "sub.csv")
    with FakeKaggle() as server:
        result = run_script("submit.py", *submit_args(path, "--wait", "--data", str(data_dir)),
                            env={**isolated_env, **server.client_env()}, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert f"public score: {PUBLIC_SCORE}" in result.stdout
    assert "provenance: " in result.stdout and "SHA-256 match" in result.stdout
    assert "submitted" in result.stdout and "not-a-real-key" not in result.stdout + result.stderr
    [submission] = server.submissions
    assert submission["content"] == path.read_bytes()
    assert submission["description"] == "5x improved_cnn"


@pytest.mark.slow  # A submit.py process: the kaggle client configures itself as it loads.
@pytest.mark.parametrize("mode, needles", [
    ("forbidden", ("403 Forbidden", "accept the rules",
                   "kaggle.com/competitions/digit-recognizer")),
    ("bad_request", ("400 Bad Request", "daily Submission allowance")),
    ("unauthorized", ("401 Unauthorized",)),
])
def test_refusals_are_one_line_with_the_servers_reason(mode, needles, tmp_path, isolated_env):
    path = write_submission_csv(tmp_path / "sub.csv")
    with FakeKaggle(mode=mode) as server:
        result = run_script("submit.py", *submit_args(path, "--no-provenance"),
                            env={**isolated_env, **server.client_env()}, cwd=tmp_path)
    assert_one_line_error(result, *needles)
    assert server.submissions == []


def test_rate_limit_waits_as_retry_after_says(tmp_path, isolated_env, monkeypatch):
    path = write_submission_csv(tmp_path / "sub.csv")
    with FakeKaggle(mode="rate_limited") as server:
        for name, value in {**isolated_env, **server.client_env()}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(tmp_path)
        waits, lines = [], []
        outcome = submit(path, "retry me", log=lines.append, sleep=waits.append,
                         ledger_path=tmp_path / "ledger.sqlite",
                         check_origin=False)
    assert waits == [2.0] and outcome.ref == 1000
    assert any("rate limited" in line and "Retry-After" in line for line in lines)
    assert len(server.submissions) == 1


@pytest.mark.slow  # A submit.py process: the kaggle client configures itself as it loads.
def test_invalid_file_is_never_sent(tmp_path, isolated_env):
    path = write_submission_csv(tmp_path / "short.csv", rows=27_999)
    with FakeKaggle() as server:
        result = run_script("submit.py", *submit_args(path),
                            env={**isolated_env, **server.client_env()}, cwd=tmp_path)
    assert_one_line_error(result, "not submitted", "27999", "28000")
    assert server.requests == []


@pytest.mark.slow  # A submit.py process: the kaggle client configures itself as it loads.
def test_predictions_for_another_test_csv_are_refused_from_any_directory(tmp_path,
                                                                          isolated_env):
    """The record is looked up beside the file, so running from elsewhere still checks it."""
    project = tmp_path / "project"
    project.mkdir()
    path, data_dir = recorded_submission(project)
    (data_dir / "test.csv").write_text("pixel0\n1\n")  # Not the file it was predicted for.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with FakeKaggle() as server:
        result = run_script("submit.py", *submit_args(path, "--data", str(data_dir)),
                            env={**isolated_env, **server.client_env()}, cwd=elsewhere)
    assert_one_line_error(result, "different test.csv", "ens.json")
    assert server.requests == []


def test_missing_credentials(tmp_path, isolated_env, monkeypatch):
    for name, value in isolated_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SubmitError, match="kaggle.json"):
        submit(write_submission_csv(tmp_path / "sub.csv"), "no creds", log=lambda _: None,
               ledger_path=tmp_path / "ledger.sqlite",
               check_origin=False)


def test_rate_limit_while_polling_waits_and_goes_on(tmp_path, isolated_env, monkeypatch):
    path = write_submission_csv(tmp_path / "sub.csv")
    with FakeKaggle(mode="rate_limited_poll") as server:
        for name, value in {**isolated_env, **server.client_env()}.items():
            monkeypatch.setenv(name, value)
        waits, lines = [], []
        outcome = submit(path, "poll me", wait=True, log=lines.append, sleep=waits.append,
                         ledger_path=tmp_path / "ledger.sqlite",
                         check_origin=False)
    assert waits[0] == 3.0 and outcome.public_score == PUBLIC_SCORE
    assert any("rate limited" in line for line in lines)


@pytest.mark.slow  # A submit.py process: the kaggle client configures itself as it loads.
def test_a_scoring_error_shows_kaggles_reason(tmp_path, isolated_env):
    path = write_submission_csv(tmp_path / "sub.csv")
    with FakeKaggle(mode="scoring_error") as server:
        result = run_script("submit.py", *submit_args(path, "--wait", "--no-provenance"),
                            env={**isolated_env, **server.client_env()}, cwd=tmp_path)
    assert_one_line_error(result, "could not score submission 1000", SCORING_ERROR)


@pytest.mark.slow  # A submit.py process: the kaggle client configures itself as it loads.
def test_a_failed_upload_is_not_reported_as_submitted(tmp_path, isolated_env):
    path = write_submission_csv(tmp_path / "sub.csv")
    with FakeKaggle(mode="upload_fails") as server:
        result = run_script("submit.py", *submit_args(path, "--no-provenance"),
                            env={**isolated_env, **server.client_env()}, cwd=tmp_path)
    assert_one_line_error(result, "did not complete", "nothing was submitted")
    assert server.submissions == [] and "submitted sub.csv" not in result.stdout


@pytest.mark.slow  # A submit.py process: the kaggle client configures itself as it loads.
@pytest.mark.parametrize("problem, needles", [
    ("no record", ("no record of where it came from", "--no-provenance")),
    ("edited after its record", ("not the file", "SHA-256 differs", "ens.json")),
    ("record without the CSV's hash", ("not a readable record", "submission_sha256")),
    ("no local test.csv", ("no competition test.csv",)),
])
def test_provenance_is_never_skipped_silently(problem, needles, tmp_path, isolated_env):
    path, data_dir = recorded_submission(tmp_path)
    record = path.with_suffix(".json")
    if problem == "no record":
        record.unlink()
    elif problem == "edited after its record":
        path.write_text(path.read_text().replace("\n1,0\n", "\n1,7\n", 1))
    elif problem == "record without the CSV's hash":
        record.write_text(json.dumps({"data_fingerprint": json.loads(record.read_text())[
            "data_fingerprint"]}))
    else:
        (data_dir / "test.csv").unlink()
    with FakeKaggle() as server:
        result = run_script("submit.py", *submit_args(path, "--data", str(data_dir)),
                            env={**isolated_env, **server.client_env()}, cwd=ROOT)
    assert_one_line_error(result, *needles)
    assert server.requests == []
