"""submit.py against the fake Kaggle server, through the real ``kaggle`` client."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import assert_one_line_error, run_script
from fake_kaggle import PUBLIC_SCORE, FakeKaggle

from kaggle_digits.submit import SubmitError, submit


def write_submission(path, rows=28_000):
    pd.DataFrame({"ImageId": range(1, rows + 1), "Label": [i % 10 for i in range(rows)]}).to_csv(
        path, index=False)
    return path


def submit_args(path, *extra):
    return (str(path), "-m", "5x improved_cnn", "--poll-every", "0.1", *extra)


def test_submits_and_waits_for_the_public_score(tmp_path, isolated_env):
    path = write_submission(tmp_path / "sub.csv")
    with FakeKaggle() as server:
        result = run_script("submit.py", *submit_args(path, "--wait"),
                            env={**isolated_env, **server.client_env()}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"public score: {PUBLIC_SCORE}" in result.stdout
    assert "submitted" in result.stdout and "not-a-real-key" not in result.stdout + result.stderr
    [submission] = server.submissions
    assert submission["content"] == path.read_bytes()
    assert submission["description"] == "5x improved_cnn"


@pytest.mark.parametrize("mode, needles", [
    ("forbidden", ("403 Forbidden", "accept the rules", "kaggle.com/competitions/digit-recognizer")),
    ("bad_request", ("400 Bad Request", "daily Submission allowance")),
    ("unauthorized", ("401 Unauthorized",)),
])
def test_refusals_are_one_line_with_the_servers_reason(mode, needles, tmp_path, isolated_env):
    path = write_submission(tmp_path / "sub.csv")
    with FakeKaggle(mode=mode) as server:
        result = run_script("submit.py", *submit_args(path),
                            env={**isolated_env, **server.client_env()}, cwd=tmp_path)
    assert_one_line_error(result, *needles)
    assert server.submissions == []


def test_rate_limit_waits_as_retry_after_says(tmp_path, isolated_env, monkeypatch):
    path = write_submission(tmp_path / "sub.csv")
    with FakeKaggle(mode="rate_limited") as server:
        for name, value in {**isolated_env, **server.client_env()}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(tmp_path)
        waits, lines = [], []
        outcome = submit(path, "retry me", log=lines.append, sleep=waits.append)
    assert waits == [2.0] and outcome.ref == 1000
    assert any("rate limited" in line and "Retry-After" in line for line in lines)
    assert len(server.submissions) == 1


def test_invalid_file_is_never_sent(tmp_path, isolated_env):
    path = write_submission(tmp_path / "short.csv", rows=27_999)
    with FakeKaggle() as server:
        result = run_script("submit.py", *submit_args(path),
                            env={**isolated_env, **server.client_env()}, cwd=tmp_path)
    assert_one_line_error(result, "not submitted", "27999", "28000")
    assert server.requests == []


def test_predictions_for_another_test_csv_are_refused(tmp_path, isolated_env):
    path = write_submission(tmp_path / "ens.csv")
    (tmp_path / "ens.json").write_text(json.dumps({"data_fingerprint": {"test.csv": "0" * 64}}))
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "test.csv").write_text("pixel0\n0\n")
    with FakeKaggle() as server:
        result = run_script("submit.py", *submit_args(path, "--data", str(data_dir)),
                            env={**isolated_env, **server.client_env()}, cwd=tmp_path)
    assert_one_line_error(result, "different test.csv", "ens.json")
    assert server.requests == []


def test_missing_credentials(tmp_path, isolated_env, monkeypatch):
    for name, value in isolated_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SubmitError, match="kaggle.json"):
        submit(write_submission(tmp_path / "sub.csv"), "no creds", log=lambda _: None)
