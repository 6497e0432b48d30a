"""Submitting a checked file to Kaggle through the official client, and waiting for its score.

Submissions are limited per day, so nothing is sent until the file passes the same checks as
``validate.py`` and its record (the JSON beside it, or a run's metrics.json) shows that it is the
file that was written and that it was predicted for the local test.csv. A file without a record
is sent only when the user says so (``--no-provenance``).
"""

from __future__ import annotations

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
from kaggle_digits.io_utils import parse_json, sha256_file
from kaggle_digits.rundir import RunDir, differing_files
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


def find_record(path: Path) -> Path | None:
    """The JSON that says where a submission came from: the sidecar that train.py, ensemble.py
    and predict.py write beside every CSV, or a run directory's metrics.json beside its
    submission.csv. Looked up beside the file, never relative to the working directory."""
    candidates = [path.with_suffix(".json")]
    run = RunDir(path.parent)
    if path.name == run.submission_path.name:
        candidates.append(run.metrics_path)
    return next((record for record in candidates if record.is_file()), None)


def check_provenance(path: Path, data_dir: str | None, log: Callable[[str], None]) -> None:
    """Refuse a file whose origin is unknown, that was edited after its record was written, or
    that was predicted for another test.csv than the local one (predictions for other rows).

    Raises:
        SubmitError: naming the record and what did not match.
    """
    skip = "; pass --no-provenance to submit it anyway"
    record = find_record(path)
    if record is None:
        raise SubmitError(f"{path}: no record of where it came from ({path.stem}.json beside "
                          f"it, as train.py, ensemble.py and predict.py write){skip}")
    try:
        recorded = parse_json(record.read_text())
        test_sha256 = recorded["data_fingerprint"]["test.csv"]
        csv_sha256 = recorded["submission_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        raise SubmitError(f"{record}: not a readable record of {path.name} (it needs "
                          f"data_fingerprint['test.csv'] and submission_sha256){skip}") from None
    if sha256_file(path) != csv_sha256:
        raise SubmitError(f"{path} is not the file {record} describes (SHA-256 differs: edited "
                          f"or replaced since it was written){skip}")
    resolved, is_sample = resolve_data_dir(data_dir)
    test_csv = find_csv(resolved, "test")
    if test_csv is None or is_sample:
        raise SubmitError(f"no competition test.csv to check {path} against (fetch the data or "
                          f"pass --data DIR){skip}")
    if differing_files({"test.csv": test_sha256}, {"test.csv": sha256_file(test_csv)}):
        raise SubmitError(f"{path} was predicted for a different test.csv than {test_csv} "
                          f"(SHA-256 recorded in {record} differs); not submitted")
    log(f"provenance: {path} is the file {record} describes, predicted for {test_csv} "
        f"(SHA-256 match)")


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
           sleep: Callable[[float], None] = time.sleep, check_origin: bool = True
           ) -> SubmitOutcome:
    """Check ``path``, submit it and (with ``wait``) poll until Kaggle scores it.

    ``check_origin=False`` (``--no-provenance``) submits a file without a record, saying so.
    """
    path = Path(path)
    problems = check_submission_file(path, expected_rows=COMPETITION_TEST_ROWS)
    if problems:
        raise SubmitError(f"not submitted: {problems[0]}")
    log(f"checked: {path} has {COMPETITION_TEST_ROWS:,} rows, ImageId 1..{COMPETITION_TEST_ROWS}, "
        f"labels 0-9")
    if check_origin:
        check_provenance(path, data_dir, log)
    else:
        log("provenance: NOT checked (--no-provenance): nothing shows which test.csv this file "
            "was predicted for")
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
