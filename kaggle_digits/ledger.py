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
from dataclasses import dataclass
from pathlib import Path

from kaggle_digits.evaluation import accuracy_interval
from kaggle_digits.io_utils import sha256_file
from kaggle_digits.rundir import RunDir
from kaggle_digits.submission import SubmissionError, read_record, record_path

DEFAULT_LEDGER = Path("submissions") / "ledger.sqlite"
SENDING = "sending"  # Written before the upload; a row left so is incomplete.
NOT_SENT = "not sent"  # Refused before Kaggle accepted it, or never reached Kaggle.
FINAL_STATUSES = ("COMPLETE", "ERROR", NOT_SENT)
# How much earlier than the ledger row Kaggle's clock may date the submission it matches.
CLOCK_SKEW = dt.timedelta(minutes=10)

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
            raise ValueError(f"Kaggle listed a submission without a usable ref ({ref!r})")
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
        raise ValueError(f"Kaggle gave a public score that is not a number: {text!r}") from None
    if not math.isfinite(score) or not 0.0 <= score <= 1.0:
        raise ValueError(f"Kaggle gave a public score outside 0-1: {text!r}")
    return score


def provenance(path: Path) -> dict:
    """What the record beside a submission says of its origin: the run or ensemble, a summary
    of its settings, and its validation accuracy with 95% interval (empty without a record)."""
    try:
        record = read_record(path)
    except SubmissionError:
        return {}
    if record is None:
        return {}
    if "members" in record:  # An ensemble's record.
        archs = sorted({member.get("arch") or "?" for member in record["members"]})
        source = str(record_path(path))
        summary = (f"{record.get('method', 'mean')} of {len(record['members'])} members "
                   f"({', '.join(archs)})" + (f", tta {record['tta']}" if record.get("tta", 1)
                                              not in (None, 1) else ""))
    else:
        source = record.get("run_dir")
        summary = _run_summary(Path(source)) if source else record.get("arch")
    accuracy, rows = record.get("val_accuracy"), record.get("val_rows")
    low = high = None
    if isinstance(accuracy, float) and isinstance(rows, int) and rows > 0:
        low, high = accuracy_interval(round(accuracy * rows), rows)
    return {"source": source, "config_summary": summary, "val_accuracy": accuracy,
            "val_ci_low": low, "val_ci_high": high, "val_rows": rows}


def _run_summary(run_dir: Path) -> str | None:
    try:
        config = RunDir(run_dir).read_config()
    except ValueError:
        return None
    kind = f"{config.folds}-fold" if config.folds > 1 else "full data" if config.full else \
        f"holdout {config.val_split:g}"
    return (f"{config.arch}, {config.epochs} epochs, batch {config.batch_size}, lr "
            f"{config.learning_rate:g}, seed {config.seed}, split seed {config.split_seed}, {kind}"
            + (f", tta {config.tta}" if config.tta > 1 else ""))


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class Ledger:
    """The ledger in one SQLite file; each method is one transaction."""

    def __init__(self, path: str | os.PathLike = DEFAULT_LEDGER):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=30)
            self._db.row_factory = sqlite3.Row
            with self._db:
                self._db.execute(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{self.path}: not a usable submission ledger ({exc})") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def begin(self, path: Path, message: str, competition: str) -> int:
        """The row of a submission about to be sent (status ``sending``); returns its id."""
        origin = provenance(path)
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO submissions (competition, created, file, sha256, message, source, "
                "config_summary, val_accuracy, val_ci_low, val_ci_high, val_rows, status) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (competition, _now(), str(path), sha256_file(path), message,
                 origin.get("source"), origin.get("config_summary"), origin.get("val_accuracy"),
                 origin.get("val_ci_low"), origin.get("val_ci_high"), origin.get("val_rows"),
                 SENDING))
            return int(cursor.lastrowid)

    def sent(self, row_id: int, ref: int) -> None:
        with self._db:
            self._db.execute("UPDATE submissions SET kaggle_ref = ?, status = 'PENDING' "
                             "WHERE id = ?", (int(ref), row_id))

    def refused(self, row_id: int, reason: str) -> None:
        """Kaggle did not take the file (quota, rules, a failed upload): nothing was spent."""
        with self._db:
            self._db.execute("UPDATE submissions SET status = ?, error_description = ? "
                             "WHERE id = ?", (NOT_SENT, reason, row_id))

    def scored(self, row_id: int, status: str, public_score: float | None,
               error: str | None) -> None:
        with self._db:
            self._db.execute("UPDATE submissions SET status = ?, public_score = ?, "
                             "error_description = ? WHERE id = ?",
                             (status, public_score, error, row_id))

    def rows(self, competition: str | None = None) -> list[dict]:
        query = "SELECT * FROM submissions" + (" WHERE competition = ?" if competition else "")
        return [dict(row) for row in self._db.execute(query + " ORDER BY id",
                                                      (competition,) if competition else ())]

    def sync(self, listed: list[KaggleSubmission], competition: str,
             search_dirs: tuple[Path, ...] = (Path("submissions"),)) -> dict:
        """Bring the ledger in line with Kaggle's list (all of it, every page).

        Known refs get their status, public score and error; rows a killed submit left
        ``sending`` are matched to the newest unclaimed Kaggle submission with the same
        description made after them (else marked not sent); the rest are imported, their
        origin found where a file of that name with a matching record is still here.

        Returns:
            Counts: ``updated``, ``resolved``, ``imported``, ``not_sent``.
        """
        counts = {"updated": 0, "resolved": 0, "imported": 0, "not_sent": 0}
        with self._db:
            known = {row["kaggle_ref"]: row for row in self._query(competition)
                     if row["kaggle_ref"] is not None}
            unclaimed = [entry for entry in listed if entry.ref not in known]
            for row in self._query(competition):
                if row["status"] != SENDING:
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
            for entry in listed:
                if entry.ref in known:
                    self._db.execute(
                        "UPDATE submissions SET status = ?, public_score = ?, "
                        "error_description = ? WHERE kaggle_ref = ?",
                        (entry.status, entry.public_score, entry.error_description, entry.ref))
                    counts["updated"] += 1
            for entry in unclaimed:
                self._import(entry, competition, search_dirs)
                counts["imported"] += 1
        return counts

    def _query(self, competition: str) -> list[sqlite3.Row]:
        return list(self._db.execute("SELECT * FROM submissions WHERE competition = ? "
                                     "ORDER BY id", (competition,)))

    def _import(self, entry: KaggleSubmission, competition: str,
                search_dirs: tuple[Path, ...]) -> None:
        local, origin, digest = _find_local_file(entry.file_name, search_dirs)
        created = (entry.date or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds")
        self._db.execute(
            "INSERT INTO submissions (competition, kaggle_ref, created, file, sha256, message, "
            "source, config_summary, val_accuracy, val_ci_low, val_ci_high, val_rows, "
            "public_score, status, error_description, origin) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'imported')",
            (competition, entry.ref, created, str(local or entry.file_name or "?"), digest,
             entry.description, origin.get("source"), origin.get("config_summary"),
             origin.get("val_accuracy"), origin.get("val_ci_low"), origin.get("val_ci_high"),
             origin.get("val_rows"), entry.public_score, entry.status,
             entry.error_description))


def _match_sending(row: sqlite3.Row, unclaimed: list[KaggleSubmission]
                   ) -> KaggleSubmission | None:
    created = dt.datetime.fromisoformat(row["created"])
    candidates = [entry for entry in unclaimed if entry.description == (row["message"] or "")
                  and (entry.date is None or entry.date >= created - CLOCK_SKEW)]
    return max(candidates, key=lambda entry: entry.ref, default=None)


def _find_local_file(name: str | None, search_dirs: tuple[Path, ...]
                     ) -> tuple[Path | None, dict, str | None]:
    """A file here with Kaggle's file name whose record names its SHA-256 (the same file),
    its origin and that SHA-256; else ``(None, {}, None)``."""
    if not name or Path(name).name != name:
        return None, {}, None
    for directory in search_dirs:
        candidate = directory / name
        if not candidate.is_file():
            continue
        digest = sha256_file(candidate)
        try:
            record = read_record(candidate) or {}
        except SubmissionError:
            continue
        if record.get("submission_sha256") == digest:
            return candidate, provenance(candidate), digest
    return None, {}, None


def gap(row: dict) -> float | None:
    """Validation minus public score, in points of accuracy (positive: validation flatters)."""
    if row.get("val_accuracy") is None or row.get("public_score") is None:
        return None
    return row["val_accuracy"] - row["public_score"]


def best_public(rows: list[dict]) -> dict | None:
    scored = [row for row in rows if row.get("public_score") is not None]
    return max(scored, key=lambda row: (row["public_score"], -row["id"]), default=None)
