"""The submission ledger: one row per Kaggle submission, with the run it came from.

A competitor's day is train, pick a file, spend one of a few daily submissions, read the public
score, decide. The ledger remembers what the memory or a spreadsheet would: which file went to
Kaggle as which submission, from which run or ensemble, what its validation said (with its 95%
interval) and what the leaderboard then said. It is an SQLite file (``submissions/ledger.sqlite``
by default); every change is one transaction, so two commands at once never half-write a row.

A submit writes its row *before* the upload (status ``sending``) and completes it after, so a
killed submit leaves a row marked incomplete rather than no trace of a spent submission;
``sync`` (``submissions.py --sync``) resolves it against Kaggle's own list, fills in public
scores and statuses, and imports submissions made outside the toolkit.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from kaggle_digits import UserError
from kaggle_digits.evaluation.metrics import accuracy_interval
from kaggle_digits.runs.io import sha256_file
from kaggle_digits.runs.locks import DirectoryLock, RunInUse, directory_lock
from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.submission.files import SubmissionError, find_record, read_record, record_path

DEFAULT_LEDGER = Path("submissions") / "ledger.sqlite"
SENDING = "sending"  # Written before the upload; a row left so is incomplete.
NOT_SENT = "not sent"  # Refused before Kaggle accepted it, or never reached Kaggle.
FINAL_STATUSES = ("COMPLETE", "ERROR", NOT_SENT)
# How much earlier than the ledger row Kaggle's clock may date the submission it matches.
CLOCK_SKEW = dt.timedelta(minutes=10)
# How long a change waits for another program that holds the ledger, in all, before it says so.
LOCK_WAIT_S = 120.0
UNKNOWN_ORIGIN = "origin unknown"


class LedgerError(UserError):
    """A ledger that cannot be read or written (damaged, or held by another program), in one
    line that says what to do."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    competition TEXT NOT NULL,
    kaggle_ref INTEGER UNIQUE,
    created TEXT NOT NULL,
    file TEXT NOT NULL,
    sha256 TEXT,
    message TEXT,
    source TEXT,
    config_summary TEXT,
    val_accuracy REAL,
    val_ci_low REAL,
    val_ci_high REAL,
    val_rows INTEGER,
    public_score REAL,
    status TEXT NOT NULL,
    error_description TEXT,
    origin TEXT NOT NULL DEFAULT 'toolkit'
)
"""
COLUMNS = ("id", "competition", "kaggle_ref", "created", "file", "sha256", "message", "source",
           "config_summary", "val_accuracy", "val_ci_low", "val_ci_high", "val_rows",
           "public_score", "status", "error_description", "origin")


@dataclass(frozen=True)
class KaggleSubmission:
    """One entry of Kaggle's submission list, as the client returns it, checked."""

    ref: int
    date: dt.datetime | None
    description: str
    file_name: str | None
    status: str
    public_score: float | None
    error_description: str | None

    @classmethod
    def from_api(cls, submission) -> "KaggleSubmission":
        """Raises ValueError for an entry no submission could have (a score that is no
        accuracy, a missing ref): numbers from outside are checked where they are read."""
        ref = getattr(submission, "ref", None)
        if isinstance(ref, bool) or not isinstance(ref, int) or not 0 < ref < 2**62:
            raise UserError(f"Kaggle listed a submission without a usable ref ({ref!r})")
        date = getattr(submission, "date", None)
        if date is not None and date.tzinfo is None:
            date = date.replace(tzinfo=dt.timezone.utc)
        status = getattr(getattr(submission, "status", None), "name", None) or "PENDING"
        return cls(ref, date, getattr(submission, "description", None) or "",
                   getattr(submission, "file_name", None), status,
                   parse_score(getattr(submission, "public_score", None)),
                   getattr(submission, "error_description", None) or None)


def parse_score(text) -> float | None:
    """Kaggle's public score (a string) as an accuracy, or None when there is none yet."""
    if text in (None, ""):
        return None
    try:
        score = float(text)
    except (TypeError, ValueError):
        raise UserError(f"Kaggle gave a public score that is not a number: {text!r}") from None
    if not math.isfinite(score) or not 0.0 <= score <= 1.0:
        raise UserError(f"Kaggle gave a public score outside 0-1: {text!r}")
    return score


def provenance(path: Path, sent_sha256: str) -> dict:
    """What the record of a submission says of its origin: the run or ensemble, a summary of
    its settings, and its validation accuracy with 95% interval. Credited only when
    ``sent_sha256``, the SHA-256 of the bytes sent, is the one the record wrote; otherwise (an
    edited file, sent with --no-provenance) the origin is unknown and the summary says why.
    Empty without a record."""
    try:
        record, where = read_record(path), find_record(path)
    except SubmissionError:
        return {"config_summary": f"{UNKNOWN_ORIGIN} (its record is unreadable)"}
    if record is None:
        return {}
    if record.get("submission_sha256") != sent_sha256:
        return {"config_summary": f"{UNKNOWN_ORIGIN}: the file sent is not the one {where} "
                                  f"describes (SHA-256 differs)"}
    if "members" in record:  # An ensemble's record.
        members = record["members"] if isinstance(record["members"], list) else []
        archs = sorted({str(member.get("arch") or "?") for member in members
                        if isinstance(member, dict)})
        source = str(record_path(path))
        summary = (f"{record.get('method', 'mean')} of {len(members)} members "
                   f"({', '.join(archs)})" + (f", tta {record['tta']}" if record.get("tta", 1)
                                              not in (None, 1) else ""))
    else:
        # A run's own submission.csv is described by its metrics.json, which names no run_dir:
        # the run is the directory that holds them.
        source = record.get("run_dir") or (str(where.parent.resolve())
                                           if where.name == RunDir(where.parent).metrics_path.name
                                           else None)
        summary = _run_summary(Path(source)) if source else record.get("arch")
    accuracy, rows = record.get("val_accuracy"), record.get("val_rows")
    if not (isinstance(accuracy, float) and 0.0 <= accuracy <= 1.0 and isinstance(rows, int)
            and not isinstance(rows, bool) and 0 < rows < 10**9):
        accuracy = rows = None  # An accuracy outside [0, 1] or odd row counts: not shown.
    low = high = None
    if accuracy is not None:
        low, high = accuracy_interval(round(accuracy * rows), rows)
    return {"source": source, "config_summary": summary, "val_accuracy": accuracy,
            "val_ci_low": low, "val_ci_high": high, "val_rows": rows}


def _run_summary(run_dir: Path) -> str | None:
    try:
        config = RunDir(run_dir).read_config()
    except UserError:
        return None
    kind = f"{config.folds}-fold" if config.folds > 1 else "full data" if config.full else \
        f"holdout {config.val_split:g}"
    return (f"{config.arch}, {config.epochs} epochs, batch {config.batch_size}, lr "
            f"{config.learning_rate:g}, seed {config.seed}, split seed {config.split_seed}, {kind}"
            + (f", tta {config.tta}" if config.tta > 1 else ""))


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class Ledger:
    """The ledger in one SQLite file; each method is one transaction.

    A file SQLite cannot read, or whose pages are damaged, is a :class:`LedgerError` when it is
    opened (before anything is sent); a ledger another program holds is waited for up to
    ``lock_wait_s``, then a :class:`LedgerError`."""

    def __init__(self, path: str | os.PathLike = DEFAULT_LEDGER,
                 lock_wait_s: float | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock_wait_s = LOCK_WAIT_S if lock_wait_s is None else lock_wait_s
        try:
            self._db = sqlite3.connect(self.path, timeout=min(self.lock_wait_s, 30.0))
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        self._db.row_factory = sqlite3.Row

        def prepare():
            found = [line for (text,) in self._db.execute("PRAGMA quick_check(3)")
                     for line in str(text).splitlines() if line and "***" not in line]
            if found != ["ok"]:
                raise sqlite3.DatabaseError(f"damaged pages: {'; '.join(found)[:300]}")
            with self._db:
                self._db.execute(_SCHEMA)
        self._do(prepare)

    def _error(self, exc: sqlite3.Error) -> LedgerError:
        said = " ".join(str(exc).split())  # One line, whatever SQLite said.
        if _is_busy(exc):
            return LedgerError(f"{self.path}: the submission ledger is held by another program "
                               f"({said}) for over {self.lock_wait_s:.0f}s; close it (an sqlite3 "
                               f"shell, a browser of the file) and run this again")
        return LedgerError(f"{self.path}: not a usable submission ledger ({said}); move it "
                           f"aside and run `python scripts/submissions.py --sync --ledger "
                           f"{self.path}` to rebuild it from Kaggle's list")

    def _do(self, change):
        """Run ``change`` (one transaction), again while another program holds the file."""
        deadline = time.monotonic() + self.lock_wait_s
        while True:
            try:
                return change()
            except sqlite3.Error as exc:
                if _is_busy(exc) and time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                raise self._error(exc) from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def sending_lock(self, row_id: int) -> DirectoryLock:
        """Held by the submit that is sending row ``row_id``, for as long as it may still be
        sending (the kernel drops it when the process dies): sync leaves such a row alone."""
        return directory_lock(self.path.parent / f"{self.path.name}-sending-{row_id}")

    def begin(self, path: Path, message: str, competition: str) -> tuple[int, DirectoryLock]:
        """The row of a submission about to be sent (status ``sending``), committed with its
        sending lock already held; returns its id and that lock (release it once the upload has
        an answer)."""
        digest = sha256_file(path)
        origin = provenance(path, digest)

        def insert():
            with self._db:
                cursor = self._db.execute(
                    "INSERT INTO submissions (competition, created, file, sha256, message, "
                    "source, config_summary, val_accuracy, val_ci_low, val_ci_high, val_rows, "
                    "status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (competition, _now(), str(path), digest, message, origin.get("source"),
                     origin.get("config_summary"), origin.get("val_accuracy"),
                     origin.get("val_ci_low"), origin.get("val_ci_high"),
                     origin.get("val_rows"), SENDING))
                row = int(cursor.lastrowid)
                lock = self.sending_lock(row)
                lock.acquire()  # Before the commit: no sync can see the row without it.
            return row, lock
        return self._do(insert)

    def sent(self, row_id: int, ref: int) -> None:
        self._update("UPDATE submissions SET kaggle_ref = ?, status = 'PENDING' WHERE id = ?",
                     (int(ref), row_id))

    def refused(self, row_id: int, reason: str) -> None:
        """Kaggle did not take the file (quota, rules, a failed upload): nothing was spent."""
        self._update("UPDATE submissions SET status = ?, error_description = ? WHERE id = ?",
                     (NOT_SENT, reason, row_id))

    def scored(self, row_id: int, status: str, public_score: float | None,
               error: str | None) -> None:
        self._update("UPDATE submissions SET status = ?, public_score = ?, "
                     "error_description = ? WHERE id = ?", (status, public_score, error, row_id))

    def _update(self, statement: str, values: tuple) -> None:
        def update():
            with self._db:
                self._db.execute(statement, values)
        self._do(update)

    def rows(self, competition: str | None = None) -> list[dict]:
        query = "SELECT * FROM submissions" + (" WHERE competition = ?" if competition else "")
        return self._do(lambda: [dict(row) for row in self._db.execute(
            query + " ORDER BY id", (competition,) if competition else ())])

    def sync(self, listed: list[KaggleSubmission], competition: str) -> dict:
        """Bring the ledger in line with Kaggle's list (all of it, every page).

        Known refs get their status, public score and error. Rows a killed submit left
        ``sending`` are matched, in the order they were sent, to Kaggle's submissions of the
        same file name and description made after them, oldest first (else marked not sent);
        a row whose submit is still sending (its lock held) is left alone. The rest are
        imported with their origin unknown: Kaggle does not say what bytes it received, and a
        file here of the same name may have been rewritten since.

        Returns:
            Counts: ``updated``, ``resolved``, ``imported``, ``not_sent``, ``in_flight``.
        """
        return self._do(lambda: self._sync(listed, competition))

    def _sync(self, listed: list[KaggleSubmission], competition: str) -> dict:
        counts = {"updated": 0, "resolved": 0, "imported": 0, "not_sent": 0, "in_flight": 0}
        in_flight = []
        with self._db:
            known = {row["kaggle_ref"]: row for row in self._query(competition)
                     if row["kaggle_ref"] is not None}
            unclaimed = [entry for entry in listed if entry.ref not in known]
            for row in self._query(competition):
                if row["status"] != SENDING:
                    continue
                if self._still_sending(row["id"]):
                    in_flight.append(row)
                    continue
                match = _match_sending(row, unclaimed)
                if match is None:
                    self._db.execute("UPDATE submissions SET status = ?, error_description = ? "
                                     "WHERE id = ?", (NOT_SENT, "the submit was interrupted "
                                                      "before Kaggle listed it", row["id"]))
                    counts["not_sent"] += 1
                    continue
                unclaimed.remove(match)
                self._db.execute("UPDATE submissions SET kaggle_ref = ? WHERE id = ?",
                                 (match.ref, row["id"]))
                known[match.ref] = row
                counts["resolved"] += 1
            for row in in_flight:
                # What Kaggle lists of the file a submit is still sending is that submit's to
                # record, not an outside submission to import.
                unclaimed = [entry for entry in unclaimed
                             if entry not in _candidates(row, unclaimed)]
            counts["in_flight"] = len(in_flight)
            for entry in listed:
                if entry.ref in known:
                    self._db.execute(
                        "UPDATE submissions SET status = ?, public_score = ?, "
                        "error_description = ? WHERE kaggle_ref = ?",
                        (entry.status, entry.public_score, entry.error_description, entry.ref))
                    counts["updated"] += 1
            for entry in unclaimed:
                self._import(entry, competition)
                counts["imported"] += 1
        return counts

    def _still_sending(self, row_id: int) -> bool:
        try:
            with self.sending_lock(row_id):
                return False
        except RunInUse:
            return True

    def _query(self, competition: str) -> list[sqlite3.Row]:
        return list(self._db.execute("SELECT * FROM submissions WHERE competition = ? "
                                     "ORDER BY id", (competition,)))

    def _import(self, entry: KaggleSubmission, competition: str) -> None:
        created = (entry.date or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds")
        self._db.execute(
            "INSERT INTO submissions (competition, kaggle_ref, created, file, message, "
            "config_summary, public_score, status, error_description, origin) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'imported')",
            (competition, entry.ref, created, entry.file_name or "?", entry.description,
             f"{UNKNOWN_ORIGIN}: sent from outside the toolkit, so nothing shows which bytes "
             f"Kaggle received", entry.public_score, entry.status, entry.error_description))


def _is_busy(exc: sqlite3.Error) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and any(
        word in str(exc).lower() for word in ("locked", "busy"))


def _match_sending(row: sqlite3.Row, unclaimed: list[KaggleSubmission]
                   ) -> KaggleSubmission | None:
    """The oldest unclaimed submission of the row's file name and description made after it:
    rows are matched in the order they were sent, so two with the same message never swap."""
    created = dt.datetime.fromisoformat(row["created"])
    return min(_candidates(row, unclaimed), key=lambda entry: (entry.date or created, entry.ref),
               default=None)


def _candidates(row: sqlite3.Row, unclaimed: list[KaggleSubmission]) -> list[KaggleSubmission]:
    """Kaggle's submissions that may be the row's: the same file name and description, made
    after it (give or take the clocks' skew)."""
    created = dt.datetime.fromisoformat(row["created"])
    name = Path(row["file"]).name
    return [entry for entry in unclaimed if entry.description == (row["message"] or "")
            and entry.file_name in (None, name)
            and (entry.date is None or entry.date >= created - CLOCK_SKEW)]


def gap(row: dict) -> float | None:
    """Validation minus public score, in points of accuracy (positive: validation flatters)."""
    if row.get("val_accuracy") is None or row.get("public_score") is None:
        return None
    return row["val_accuracy"] - row["public_score"]


def best_public(rows: list[dict]) -> dict | None:
    scored = [row for row in rows if row.get("public_score") is not None]
    return max(scored, key=lambda row: (row["public_score"], -row["id"]), default=None)
