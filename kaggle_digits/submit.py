"""Submitting a checked file to Kaggle through the official client, and waiting for its score.

Submissions are limited per day, so nothing is sent until the file passes the same checks as
``validate.py`` and, where the file's origin is recorded (a run's metrics.json or the JSON beside
an ensemble or predict.py output), its test.csv fingerprint matches the local test.csv.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kaggle_digits.data import COMPETITION_TEST_ROWS, find_csv, resolve_data_dir
from kaggle_digits.fetch import (
    DEFAULT_COMPETITION,
    FetchError,
    rules_url,
    authenticated_api,
    warn_if_credentials_readable,
)
from kaggle_digits.io_utils import sha256_file
from kaggle_digits.submission import check_submission_file

MAX_RATE_LIMIT_RETRIES = 3
DEFAULT_RETRY_AFTER_S = 30.0


class SubmitError(RuntimeError):
    """Why nothing was (or could be confirmed to be) submitted, in one line."""


@dataclass
class SubmitOutcome:
    ref: int | None
    message: str
    status: str | None = None
    public_score: str | None = None


def recorded_test_fingerprint(path: Path) -> tuple[str, Path] | None:
    """The test.csv SHA-256 recorded for a submission file, and the record it came from."""
    candidates = [path.with_suffix(".json"), Path("runs") / path.stem / "metrics.json"]
    if path.name == "submission.csv":  # Inside a run directory.
        candidates.insert(1, path.parent / "metrics.json")
    for record in candidates:
        try:
            fingerprint = json.loads(record.read_text()).get("data_fingerprint") or {}
        except (OSError, json.JSONDecodeError, AttributeError):
            continue
        if "test.csv" in fingerprint:
            return fingerprint["test.csv"], record
    return None


def check_provenance(path: Path, data_dir: str | None, log: Callable[[str], None]) -> None:
    """Refuse a file whose recorded test.csv is not the local one (predictions for other rows)."""
    recorded = recorded_test_fingerprint(path)
    resolved, is_sample = resolve_data_dir(data_dir)
    test_csv = find_csv(resolved, "test")
    if recorded is None or test_csv is None or is_sample:
        log("provenance: no recorded test.csv fingerprint to compare (checked the file only)")
        return
    fingerprint, record = recorded
    if sha256_file(test_csv) != fingerprint:
        raise SubmitError(f"{path} was predicted for a different test.csv than {test_csv} "
                          f"(SHA-256 recorded in {record} differs); not submitted")
    log(f"provenance: predicted for {test_csv} (SHA-256 matches {record})")


def _status_of(exc) -> int | None:
    return getattr(getattr(exc, "response", None), "status_code", None)


def _retry_after(exc) -> float:
    header = getattr(getattr(exc, "response", None), "headers", {}).get("Retry-After")
    try:
        return max(float(header), 0.0)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER_S


def describe_submit_error(exc, competition: str) -> str:
    status, reason = _status_of(exc), (str(exc).splitlines() or [""])[0]
    if status == 401:
        return ("Kaggle rejected the credentials (401 Unauthorized): check KAGGLE_USERNAME/"
                "KAGGLE_KEY, KAGGLE_API_TOKEN or kaggle.json")
    if status == 403:
        return (f"Kaggle refused the submission (403 Forbidden): accept the rules at "
                f"{rules_url(competition)} while logged in. Server said: {reason}")
    if status == 400:
        return f"Kaggle refused the submission (400 Bad Request): {reason}"
    if status == 429:
        return f"Kaggle is rate limiting (429 Too Many Requests) and kept refusing: {reason}"
    return f"Kaggle API error {status}: {reason}"


def call_with_retries(call: Callable, competition: str, log: Callable[[str], None],
                      sleep: Callable[[float], None] = time.sleep):
    """Run one API call, waiting as Retry-After says when Kaggle answers 429."""
    import requests

    for attempt in range(MAX_RATE_LIMIT_RETRIES + 1):
        try:
            return call()
        except requests.exceptions.HTTPError as exc:
            if _status_of(exc) == 429 and attempt < MAX_RATE_LIMIT_RETRIES:
                wait = _retry_after(exc)
                log(f"rate limited by Kaggle (429); retrying in {wait:.0f}s as Retry-After asks")
                sleep(wait)
                continue
            raise SubmitError(describe_submit_error(exc, competition)) from None
        except requests.exceptions.ConnectionError as exc:
            raise SubmitError(f"cannot reach the Kaggle API ({type(exc).__name__}); check the "
                              f"network or proxy settings") from None


def submit(path: str | os.PathLike, message: str, competition: str = DEFAULT_COMPETITION,
           data_dir: str | None = None, wait: bool = False, poll_every_s: float = 10.0,
           timeout_s: float = 600.0, log: Callable[[str], None] = print,
           sleep: Callable[[float], None] = time.sleep) -> SubmitOutcome:
    """Check ``path``, submit it and (with ``wait``) poll until Kaggle scores it."""
    path = Path(path)
    problems = check_submission_file(path, expected_rows=COMPETITION_TEST_ROWS)
    if problems:
        raise SubmitError(f"not submitted: {problems[0]}")
    log(f"checked: {path} has {COMPETITION_TEST_ROWS:,} rows, ImageId 1..{COMPETITION_TEST_ROWS}, "
        f"labels 0-9")
    check_provenance(path, data_dir, log)
    warn_if_credentials_readable(log)
    try:
        api = authenticated_api()
    except FetchError as exc:
        raise SubmitError(str(exc)) from None
    response = call_with_retries(
        lambda: api.competition_submit(str(path), message, competition, quiet=True),
        competition, log, sleep)
    if response.message == api.COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE or not response.ref:
        raise SubmitError(f"the upload of {path} did not complete ({response.message}); "
                          f"nothing was submitted")
    outcome = SubmitOutcome(ref=response.ref, message=response.message)
    log(f"submitted {path} to {competition} (submission {response.ref}): {response.message}")
    if wait:
        _wait_for_score(api, competition, outcome, poll_every_s, timeout_s, log, sleep)
    return outcome


def _wait_for_score(api, competition, outcome, poll_every_s, timeout_s, log, sleep) -> None:
    waited = 0.0
    while True:
        submissions = call_with_retries(lambda: api.competition_submissions(competition),
                                        competition, log, sleep) or []
        mine = next((s for s in submissions if s.ref == outcome.ref), None)
        status = getattr(getattr(mine, "status", None), "name", None)
        outcome.status = status
        if status == "COMPLETE":
            outcome.public_score = mine.public_score
            log(f"scored: public score {mine.public_score}")
            return
        if status == "ERROR":
            raise SubmitError(f"Kaggle could not score submission {outcome.ref}: "
                              f"{mine.error_description or 'no reason given'}")
        if waited >= timeout_s:
            raise SubmitError(f"submission {outcome.ref} is still {status or 'not listed'} after "
                              f"{timeout_s:.0f}s; see `kaggle competitions submissions -c "
                              f"{competition}`")
        log(f"waiting for the score (status {status or 'not listed yet'}, {waited:.0f}s)")
        sleep(poll_every_s)
        waited += poll_every_s
