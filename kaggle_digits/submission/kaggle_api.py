"""The official ``kaggle`` client: credentials, the authenticated API, and what its errors mean.

Fetching, submitting and the submission ledger all talk to Kaggle through this module, so the
credential rules, the retry on 429 and the wording of every HTTP refusal live in one place.
``import kaggle`` authenticates at import time and prints a page of help when credentials are
missing, so the client is imported only here, quietly, when Kaggle is actually needed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable

from kaggle_digits import UserError

DEFAULT_COMPETITION = "digit-recognizer"
MAX_RATE_LIMIT_RETRIES = 3
DEFAULT_RETRY_AFTER_S = 30.0
MAX_RETRY_AFTER_S = 3600.0  # A Retry-After beyond an hour is damage, not advice.
# How long one call may wait on a silent connection (the client itself sets no timeout, and a
# server that accepts the connection and never answers would hold a submit forever).
CALL_TIMEOUT_S = 120.0
# How long one call may take in all: requests' timeout is per read, so a server that trickles a
# byte at a time never trips it. Enough for the competition bundle on a slow line.
CALL_DEADLINE_S = 1800.0


class KaggleApiError(UserError):
    """A call Kaggle refused or that could not reach it, in one line that says what to do.

    ``status`` is the HTTP status when Kaggle answered (None when it could not be reached, in
    which case a submission may or may not have been taken).
    """

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def rules_url(competition: str) -> str:
    return f"https://www.kaggle.com/competitions/{competition}/rules"


def no_credentials_message() -> str:
    config_dir = os.environ.get("KAGGLE_CONFIG_DIR") or "~/.kaggle"
    return ("no Kaggle credentials found: download kaggle.json from "
            f"https://www.kaggle.com/settings (API > Create New Token) to "
            f"{config_dir}/kaggle.json and chmod 600 it, or set "
            "KAGGLE_USERNAME and KAGGLE_KEY (or KAGGLE_API_TOKEN); or download the bundle by hand "
            "and use --from-zip")


def _credential_files() -> list[Path]:
    """The credential files the kaggle client would read, that exist."""
    config_dirs = [os.environ.get("KAGGLE_CONFIG_DIR"), "~/.kaggle",
                   os.path.join(os.environ.get("XDG_CONFIG_HOME") or "~/.config", "kaggle")]
    return [Path(os.path.expanduser(config_dir), name) for config_dir in filter(None, config_dirs)
            for name in ("kaggle.json", "access_token", "access_token.txt")
            if Path(os.path.expanduser(config_dir), name).is_file()]


def kaggle_credentials_present() -> bool:
    """Whether the kaggle client will find credentials, without contacting Kaggle."""
    return bool(os.environ.get("KAGGLE_API_TOKEN") or (
        os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY")) or _credential_files())


def check_credential_files() -> None:
    """Refuse a kaggle.json the client would misread (not JSON, or not an object whose
    ``username`` and ``key`` are text), naming the file, before anything is sent.

    Raises:
        KaggleApiError: naming the file and what it must hold.
    """
    for path in _credential_files():
        if path.name != "kaggle.json":
            continue
        try:
            values = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise KaggleApiError(f"{path}: not a readable Kaggle credentials file ({exc}); "
                                 f"download a new one from https://www.kaggle.com/settings") \
                from None
        if not isinstance(values, dict) or not all(
                isinstance(values.get(key), str) and values[key] for key in ("username", "key")):
            raise KaggleApiError(f"{path}: not a Kaggle credentials file: it must be a JSON "
                                 f"object whose \"username\" and \"key\" are text, as "
                                 f"https://www.kaggle.com/settings (API > Create New Token) "
                                 f"writes it")


def warn_if_credentials_readable(log: Callable[[str], None]) -> None:
    config_dir = Path(os.path.expanduser(os.environ.get("KAGGLE_CONFIG_DIR") or "~/.kaggle"))
    key_file = config_dir / "kaggle.json"
    if key_file.is_file() and key_file.stat().st_mode & 0o077:
        log(f"warning: {key_file} is readable by other users; run `chmod 600 {key_file}`")


def authenticated_api():
    """An authenticated ``KaggleApi``, the client's exit(1) turned into a KaggleApiError: "no
    credentials" when there are none, "not accepted" when those found were refused (a
    malformed, expired or revoked token)."""
    check_credential_files()
    with contextlib.redirect_stdout(io.StringIO()), call_timeout():
        try:
            from kaggle.api.kaggle_api_extended import KaggleApi

            api = KaggleApi()
            api.authenticate()
        except SystemExit:
            if not kaggle_credentials_present():
                raise KaggleApiError(no_credentials_message()) from None
            where = ("KAGGLE_API_TOKEN" if os.environ.get("KAGGLE_API_TOKEN") else
                     ", ".join(str(path) for path in _credential_files()) or
                     "KAGGLE_USERNAME/KAGGLE_KEY")
            raise KaggleApiError(f"Kaggle did not accept the credentials in {where} (a "
                                 f"malformed, expired or revoked token); create a new one at "
                                 f"https://www.kaggle.com/settings") from None
    return api


@contextlib.contextmanager
def call_timeout(seconds: float | None = None, deadline: float | None = None):
    """Inside, every request the kaggle client sends without a timeout of its own (all of them:
    the client sets none, and requests then waits forever) gives up after ``seconds`` of
    silence (default :data:`CALL_TIMEOUT_S`), and the whole call after ``deadline`` seconds
    (default :data:`CALL_DEADLINE_S`; in the main thread, where an alarm can interrupt a read).
    The client builds its sessions inside each call, so the default is set where every session
    sends, for the duration of the call.

    Raises:
        requests.exceptions.Timeout: the deadline passed.
    """
    import requests

    limit = CALL_TIMEOUT_S if seconds is None else seconds
    total = CALL_DEADLINE_S if deadline is None else deadline
    send = requests.Session.send

    def send_with_timeout(session, request, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = limit
        return send(session, request, **kwargs)

    class DeadlinePassed(BaseException):
        """Raised into the call by the alarm; a BaseException, so that no ``except Exception``
        in the client or requests takes it for a network error (it never leaves here)."""

    def expire(signum, frame):
        raise DeadlinePassed

    alarm = threading.current_thread() is threading.main_thread() and \
        signal.getitimer(signal.ITIMER_REAL)[0] == 0  # Never steal a timer someone else set.
    if alarm:
        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, total)
    requests.Session.send = send_with_timeout
    try:
        yield
    except DeadlinePassed:
        raise requests.exceptions.Timeout(f"not done within {total:.0f}s") from None
    finally:
        requests.Session.send = send
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def http_status(exc) -> int | None:
    return getattr(getattr(exc, "response", None), "status_code", None)


def retry_after(exc) -> float:
    """The seconds Kaggle's Retry-After asks for (checked: a number, 0 to an hour)."""
    header = getattr(getattr(exc, "response", None), "headers", {}).get("Retry-After")
    try:
        seconds = float(header)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER_S
    if seconds != seconds:  # NaN
        return DEFAULT_RETRY_AFTER_S
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def describe_http_error(exc, competition: str, action: str = "download") -> str:
    """One line for an HTTP error of a download (``action="download"``) or a submission
    (``"submit"``), with what the user should do about it."""
    status, reason = http_status(exc), (str(exc).splitlines() or [""])[0]
    submitting = action == "submit"
    if status == 401:
        return ("Kaggle rejected the credentials (401 Unauthorized): check KAGGLE_USERNAME/"
                "KAGGLE_KEY, KAGGLE_API_TOKEN or kaggle.json" if submitting else
                "Kaggle rejected the credentials (401 Unauthorized): check the username and key "
                f"in kaggle.json, and that you accepted the rules at {rules_url(competition)}")
    if status == 403:
        return (f"Kaggle refused the submission (403 Forbidden): accept the rules at "
                f"{rules_url(competition)} while logged in. Server said: {reason}" if submitting
                else f"Kaggle refused access to '{competition}' (403 Forbidden): accept the "
                     f"competition rules at {rules_url(competition)} while logged in, then retry")
    if status == 400 and submitting:
        return f"Kaggle refused the submission (400 Bad Request): {reason}"
    if status == 404 and not submitting:
        return f"Kaggle has no competition '{competition}' (404 Not Found): check --competition"
    if status == 429:
        return f"Kaggle is rate limiting (429 Too Many Requests) and kept refusing: {reason}"
    return f"Kaggle API error {status}: {reason}"


def call_with_retries(call: Callable, competition: str, log: Callable[[str], None],
                      sleep: Callable[[float], None] = time.sleep, action: str = "submit"):
    """Run one API call, waiting as Retry-After says when Kaggle answers 429.

    A 429 means the call was refused, so repeating it never does the thing twice.

    Raises:
        KaggleApiError: Kaggle refused (with its status), or could not be reached.
    """
    import requests

    for attempt in range(MAX_RATE_LIMIT_RETRIES + 1):
        try:
            with call_timeout():
                return call()
        except requests.exceptions.HTTPError as exc:
            if http_status(exc) == 429 and attempt < MAX_RATE_LIMIT_RETRIES:
                wait = retry_after(exc)
                log(f"rate limited by Kaggle (429); retrying in {wait:.0f}s as Retry-After asks")
                sleep(wait)
                continue
            raise KaggleApiError(describe_http_error(exc, competition, action),
                                 http_status(exc)) from None
        except requests.exceptions.Timeout:
            raise KaggleApiError(f"the Kaggle API did not answer within {CALL_TIMEOUT_S:.0f}s "
                                 f"(or finish within {CALL_DEADLINE_S:.0f}s)") from None
        except requests.exceptions.ConnectionError as exc:
            raise KaggleApiError(f"cannot reach the Kaggle API ({type(exc).__name__}); check "
                                 f"the network or proxy settings") from None
        except (requests.exceptions.RequestException, ValueError, KeyError) as exc:
            # A body that is no JSON, or JSON the client cannot read (a status it does not
            # know): Kaggle answered, but what it said is unknown.
            raise KaggleApiError(f"the Kaggle API gave an answer that could not be read "
                                 f"({type(exc).__name__}: {(str(exc).splitlines() or [''])[0]})"
                                 ) from None
