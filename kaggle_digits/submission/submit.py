"""Submitting a checked file to Kaggle through the official client, and waiting for its score.

Submissions are limited per day, so nothing is sent until the file passes the same checks as
``validate.py``, its record (the JSON beside it, or a run's metrics.json) shows that it is the
file that was written and that it was predicted for the local test.csv, and Kaggle says a
submission is left today. A file without a record is sent only when the user says so
(``--no-provenance``). Every submission gets a row in the ledger
(:mod:`kaggle_digits.submission.ledger`), written before the upload and completed after it.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kaggle_digits import UserError
from kaggle_digits.data.load import COMPETITION_TEST_ROWS, find_csv, resolve_data_dir
from kaggle_digits.runs.io import sha256_file
from kaggle_digits.runs.rundir import differing_files
from kaggle_digits.submission.files import (
    SubmissionError,
    check_submission_file,
    find_record,
    read_record,
)
from kaggle_digits.submission.kaggle_api import (
    DEFAULT_COMPETITION,
    KaggleApiError,
    authenticated_api,
    call_with_retries,
    warn_if_credentials_readable,
)
from kaggle_digits.submission.ledger import DEFAULT_LEDGER, KaggleSubmission, Ledger, LedgerError

# Kaggle's answers that mean the submission was not taken (nothing of the day's quota spent).
REFUSED_STATUSES = (400, 401, 403, 404, 429)
LIST_PAGE_SIZE = 20  # Kaggle's own page size for the submission list.
MAX_LIST_PAGES = 500
MAX_WAIT_S = 7 * 24 * 3600.0  # --poll-every and --timeout beyond a week are typos.


class SubmitError(UserError):
    """Why nothing was (or could be confirmed to be) submitted, in one line."""


@dataclass
class SubmitOutcome:
    ref: int | None
    message: str
    status: str | None = None
    public_score: str | None = None
    ledger_id: int | None = None
    left_today: int | None = None


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
        recorded = read_record(path)
    except SubmissionError as exc:
        raise SubmitError(f"{exc}; nothing was sent{skip}") from None
    try:
        test_sha256 = recorded["data_fingerprint"]["test.csv"]
        csv_sha256 = recorded["submission_sha256"]
    except (KeyError, TypeError):
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


def _until_reset(now: dt.datetime | None = None) -> str:
    """How long until Kaggle's submission day ends (midnight UTC)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    midnight = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    minutes = int((midnight - now).total_seconds() // 60)
    return f"{minutes // 60}h {minutes % 60:02d}m"


def submissions_left(api, competition: str, log: Callable[[str], None],
                     sleep: Callable[[float], None] = time.sleep) -> int | None:
    """Submissions Kaggle allows now, or None when it cannot say (a user on no team yet sees
    all counts zero, and may still submit)."""
    limits = call_with_retries(lambda: api.competition_get_submission_limits(competition),
                               competition, log, sleep, action="submit")
    counts = [getattr(limits, name, None) for name in ("num_allowed_now", "num_today",
                                                       "num_total")]
    if any(isinstance(count, bool) or not isinstance(count, int) or not 0 <= count < 10**6
           for count in counts):
        raise SubmitError(f"Kaggle gave submission limits that are not counts: {counts}")
    allowed, today, total = counts
    if allowed == today == total == 0:
        return None
    return allowed


def submit(path: str | os.PathLike, message: str, competition: str = DEFAULT_COMPETITION,
           data_dir: str | None = None, wait: bool = False, poll_every_s: float = 10.0,
           timeout_s: float = 600.0, log: Callable[[str], None] = print,
           sleep: Callable[[float], None] = time.sleep, check_origin: bool = True,
           ledger_path: str | os.PathLike = DEFAULT_LEDGER) -> SubmitOutcome:
    """Check ``path``, check the day's quota, submit it and (with ``wait``) poll until Kaggle
    scores it; the ledger at ``ledger_path`` gets the submission's row.

    ``check_origin=False`` (``--no-provenance``) submits a file without a record, saying so.
    """
    path = Path(path)
    if wait:
        check_wait(poll_every_s, timeout_s)
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
    # The ledger is opened (and checked) before Kaggle is asked anything: a damaged one must not
    # be found after a submission was spent.
    with Ledger(ledger_path) as ledger:
        try:
            api = authenticated_api()
            left = submissions_left(api, competition, log, sleep)
        except KaggleApiError as exc:
            raise SubmitError(str(exc)) from None
        if left == 0:
            raise SubmitError(f"no submissions left today for {competition}; Kaggle's day "
                              f"resets at 00:00 UTC, in {_until_reset()}. Nothing was sent")
        # Before the send: a kill leaves a trace, and a sync sees the send is in flight.
        row, sending = ledger.begin(path, message, competition)
        try:
            outcome = _send(api, ledger, row, path, message, competition, log, sleep)
        finally:
            sending.release()
        try:
            outcome.left_today = submissions_left(api, competition, log, sleep)
        except (KaggleApiError, SubmitError):
            outcome.left_today = None
        if outcome.left_today is not None:
            log(f"{outcome.left_today} submission(s) left today")
        if wait:
            _wait_for_score(api, competition, outcome, poll_every_s, timeout_s, log, sleep,
                            ledger)
    return outcome


def check_wait(poll_every_s, timeout_s) -> None:
    """Refuse waits no clock can keep (NaN, infinite, negative; polling every 0 s), before
    anything is sent."""
    for option, value, low in (("--poll-every", poll_every_s, 0.1), ("--timeout", timeout_s, 0.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value) or not low <= value <= MAX_WAIT_S:
            raise SubmitError(f"{option} must be a number of seconds from {low:g} to "
                              f"{MAX_WAIT_S:.0f}. Received: {option} {value!r}; nothing was sent")


def _send(api, ledger: Ledger, row: int, path: Path, message: str, competition: str,
          log, sleep) -> SubmitOutcome:
    """The upload, retried on 429 (a refused call: never a second submission), and the
    ledger row completed with what Kaggle answered."""
    try:
        response = call_with_retries(
            lambda: api.competition_submit(str(path), message, competition, quiet=True),
            competition, log, sleep, action="submit")
    except KaggleApiError as exc:
        if exc.status in REFUSED_STATUSES:
            ledger.refused(row, str(exc))
            raise SubmitError(str(exc)) from None
        raise SubmitError(f"{exc}; Kaggle may or may not have taken it: `python "
                          f"scripts/submissions.py --sync` tells (ledger row {row})") from None
    ref = getattr(response, "ref", None)
    if not isinstance(ref, int) or isinstance(ref, bool) or not 0 < ref < 2**62:
        ref = None
    if response.message == api.COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE or ref is None:
        ledger.refused(row, f"upload failed: {response.message}")
        raise SubmitError(f"the upload of {path} did not complete ({response.message}); "
                          f"nothing was submitted")
    try:
        ledger.sent(row, ref)
    except LedgerError as exc:  # Kaggle has it: say so, and how the ledger learns it.
        raise SubmitError(f"Kaggle took {path} as submission {ref}, but the ledger "
                          f"could not record it ({exc}); once the ledger is usable, `python "
                          f"scripts/submissions.py --sync --ledger {ledger.path}` records it "
                          f"(row {row})") from None
    log(f"submitted {path} to {competition} (submission {ref}, ledger row {row}): "
        f"{response.message}")
    return SubmitOutcome(ref=ref, message=response.message, ledger_id=row)


def kaggle_submissions(competition: str, log: Callable[[str], None] = print,
                       sleep: Callable[[float], None] = time.sleep) -> list[KaggleSubmission]:
    """Every submission Kaggle lists for the competition, newest first, past its page size.

    Raises:
        SubmitError: no credentials, a refusal, or an entry no submission could have.
    """
    try:
        api = authenticated_api()
        listed, seen = [], set()
        for page in range(1, MAX_LIST_PAGES + 1):
            batch = call_with_retries(
                lambda: api.competition_submissions(competition, page_number=page,
                                                    page_size=LIST_PAGE_SIZE),
                competition, log, sleep, action="submit") or []
            entries = [KaggleSubmission.from_api(entry) for entry in batch if entry is not None]
            fresh = [entry for entry in entries if entry.ref not in seen]
            listed += fresh
            seen.update(entry.ref for entry in fresh)
            if len(batch) < LIST_PAGE_SIZE or not fresh:
                break
    except (KaggleApiError, ValueError) as exc:
        raise SubmitError(str(exc)) from None
    return listed


def _wait_for_score(api, competition, outcome, poll_every_s, timeout_s, log, sleep,
                    ledger: Ledger) -> None:
    waited = 0.0
    while True:
        try:
            submissions = call_with_retries(lambda: api.competition_submissions(competition),
                                            competition, log, sleep, action="submit") or []
        except KaggleApiError as exc:
            raise SubmitError(str(exc)) from None
        mine = next((s for s in submissions if s.ref == outcome.ref), None)
        status = getattr(getattr(mine, "status", None), "name", None)
        outcome.status = status
        if status in ("COMPLETE", "ERROR"):
            entry = KaggleSubmission.from_api(mine)
            ledger.scored(outcome.ledger_id, status, entry.public_score,
                          entry.error_description)
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
