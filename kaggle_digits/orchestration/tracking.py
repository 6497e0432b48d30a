"""Tracked runs with MLflow, an optional extra (``pip install -e .[track]``).

With ``--track``, a finished training run is logged from its run directory: its config as
params, every epoch of ``history.csv`` as metrics with the epoch as step (a k-fold run's folds
as ``foldN/...``), its final scores with their 95% interval, and its report, confusion matrix,
error gallery, learning curves, config, metrics and model as artifacts. Ensembles, sweeps and
searches log a parent run with their members (or trials) as child runs. Logging from the run
directory, once it is finished, means a resumed run, a run brought back from a Ray worker and a
run made in a child process are all logged the same way.

The store is ``sqlite:///mlflow.db`` in the working folder (``mlflow ui`` there reads it), with
artifacts under ``mlartifacts/``; ``--tracking-uri`` or ``MLFLOW_TRACKING_URI`` names any other.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from kaggle_digits import UserError
from kaggle_digits.runs.rundir import REPORT_FILES, RunDir

EXPERIMENT = "kaggle-digits"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
ARTIFACT_ROOT = "mlartifacts"
INSTALL_HINT = "--track needs MLflow: pip install -e '.[track]' (or pip install mlflow)"


def require_mlflow() -> None:
    """Raises ValueError with the install command when MLflow is missing."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise UserError(INSTALL_HINT) from None


def check_tracking_target(uri: str | None = None) -> None:
    """Fail before any work when tracking could not happen at its end: MLflow missing, or a
    database URI whose driver is not installed (found by SQLAlchemy, as MLflow's store does).

    Raises:
        ValueError: with what to install.
    """
    require_mlflow()
    target = tracking_uri(uri)
    scheme = urlsplit(target).scheme.split("+")[0]
    if scheme not in ("sqlite", "postgresql", "mysql", "mssql"):
        return  # A file path, an MLflow server or Databricks: nothing to load here.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        make_url(target).get_dialect().import_dbapi()
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
        raise UserError(f"tracking URI {masked(target)} cannot be used: its database driver "
                         f"is not installed or not known ({type(exc).__name__}: "
                         f"{_scrubbed(str(exc), target)}); install the module it names, or "
                         f"name the driver that is installed (postgresql+psycopg2://, "
                         f"mysql+pymysql://)") from None


def tracking_uri(uri: str | None = None) -> str:
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


# Query parameters that carry secrets in database and service URIs (password=, sslpassword=,
# token=, api_key=, secret=, ...).
_SECRET_PARAMETER = re.compile(r"pass|pwd|secret|token|key|auth|credential", re.IGNORECASE)
# user:password@ as SQLAlchemy reads it: the password runs to the first "@", so a "/", "?" or
# "#" inside it stays the password's (a URL parser takes them for the path, query, fragment).
_USERINFO = re.compile(r"^(?P<head>[\w+.-]+://[^:/@]*):(?P<password>[^@]*)@")


def masked(uri: str) -> str:
    """``uri`` with its password and any secret-named query parameters shown as ``***`` (for
    every line that prints it). Database URIs are read as MLflow's database layer reads them,
    by SQLAlchemy, whose rendering hides the password; others by the same rule."""
    try:
        from sqlalchemy.engine import make_url

        url = make_url(uri) if "://" in uri and not uri.startswith(("http", "file")) else None
    except Exception:  # Not SQLAlchemy's kind of URL, or SQLAlchemy absent: the rule below.
        url = None
    if url is not None:
        query = {key: ("***" if _SECRET_PARAMETER.search(key) else value)
                 for key, value in url.query.items()}
        rendered = url.set(query=query).render_as_string(hide_password=True)
        return rendered.replace("%2A%2A%2A", "***")  # The query's mask, unescaped.
    shown = _USERINFO.sub(lambda match: f"{match['head']}:***@", uri)
    return re.sub(r"([?&;])([^=&;#]+)=([^&;#]*)",
                  lambda m: f"{m[1]}{m[2]}={'***' if _SECRET_PARAMETER.search(m[2]) else m[3]}",
                  shown)


def _secrets(uri: str) -> list[str]:
    """The password and secret query values in ``uri``, as they may appear in other text."""
    found = [match["password"] for match in [_USERINFO.match(uri)] if match]
    found += [value for key, value in re.findall(r"[?&;]([^=&;#]+)=([^&;#]*)", uri)
              if _SECRET_PARAMETER.search(key)]
    return [secret for secret in found if secret]


def _scrubbed(text: str, uri: str) -> str:
    """``text`` with the secrets of ``uri`` masked wherever they appear (drivers echo URLs)."""
    text = text.replace(uri, masked(uri))
    for secret in _secrets(uri):
        text = text.replace(secret, "***")
    return text


@contextlib.contextmanager
def tracked(name: str, uri: str | None = None, tags: dict | None = None):
    """An MLflow run in the kaggle-digits experiment (nested inside one already active)."""
    require_mlflow()
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        mlflow.set_tracking_uri(tracking_uri(uri))
        if mlflow.get_experiment_by_name(EXPERIMENT) is None:
            mlflow.create_experiment(EXPERIMENT,
                                     artifact_location=Path(ARTIFACT_ROOT).resolve().as_uri())
        mlflow.set_experiment(EXPERIMENT)
        with mlflow.start_run(run_name=name, tags=tags,
                              nested=mlflow.active_run() is not None) as run:
            yield run
    except MlflowException as exc:
        target = tracking_uri(uri)
        raise UserError(f"tracking to {masked(target)} failed: "
                         f"{_scrubbed((str(exc).splitlines() or ['MLflow error'])[0], target)}"
                         ) from None


def _params(config: dict) -> dict[str, str]:
    """A config as MLflow params: model options flattened, pseudo-labels as a count."""
    params = {}
    for key, value in config.items():
        if key == "model_options":
            params.update({f"model.{name}": str(option) for name, option in value.items()})
        elif key == "pseudo_labels":
            params["pseudo_label_rows"] = str(sum(char != "." for char in value))
        elif key != "versions":
            params[key] = str(value)
    return params


def _finite(values: dict) -> dict[str, float]:
    metrics = {}
    for key, value in values.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            metrics[key] = number
    return metrics


def _log_history(mlflow, history: Path, prefix: str = "") -> None:
    if not history.is_file():
        return
    with history.open(newline="") as handle:
        for row in csv.DictReader(handle):
            step = int(float(row.pop("epoch", 0) or 0))
            mlflow.log_metrics({f"{prefix}{key}": value for key, value in _finite(row).items()},
                               step=step)


def log_run(run_dir: str | os.PathLike, uri: str | None = None) -> str:
    """Log one finished run; returns the MLflow run id.

    Raises:
        ValueError: MLflow missing, or not a finished run.
    """
    run = RunDir(run_dir)
    run.require_finished()
    metrics, config = run.read_metrics(), run.read_config()
    with tracked(run.name, uri, tags={"kaggle_digits.run_dir": str(run.path.resolve()),
                                      "kaggle_digits.kind": metrics.get("kind", "holdout")}
                 ) as active:
        import mlflow

        mlflow.log_params(_params(config.to_dict()))
        _log_history(mlflow, run.history_path)
        for fold in run.folds():
            _log_history(mlflow, fold.history_path, prefix=f"{fold.name}/")
        final = {key: metrics.get(key) for key in ("val_accuracy", "val_loss", "train_time_s",
                                                   "time_per_epoch_s", "total_time_s",
                                                   "epochs_run", "parameters")}
        low_high = metrics.get("val_accuracy_ci95") or (None, None)
        final.update(val_accuracy_ci95_low=low_high[0], val_accuracy_ci95_high=low_high[1])
        mlflow.log_metrics({f"final_{key}": value for key, value in _finite(final).items()})
        for path in [run.config_path, run.metrics_path,
                     *(run.report_path(kind) for kind in REPORT_FILES)]:
            if path.is_file():
                mlflow.log_artifact(str(path))
        if run.model_path.is_file():
            mlflow.log_artifact(str(run.model_path))
        else:  # A k-fold run: every fold's model, under the fold's name.
            for fold in run.fold_models():
                mlflow.log_artifact(str(fold.model_path), artifact_path=f"folds/fold{fold.number}")
        return active.info.run_id


def log_ensemble(record_path: str | os.PathLike, submission: str | os.PathLike,
                 uri: str | None = None) -> str:
    """Log an ensemble's record (method, members, scores) and its submission."""
    from kaggle_digits.runs.io import parse_json

    record = parse_json(Path(record_path).read_text())
    with tracked(Path(submission).stem, uri, tags={"kaggle_digits.kind": "ensemble"}) as active:
        import mlflow

        mlflow.log_params({"method": record.get("method"), "members": len(record["members"]),
                           "tta": record.get("tta", 1)})
        versus = record.get("against_best_member") or {}
        mlflow.log_metrics(_finite({"val_accuracy": record.get("val_accuracy"),
                                    "val_rows": record.get("val_rows"),
                                    "best_member_accuracy": versus.get("member_accuracy"),
                                    "mcnemar_p_vs_best_member": versus.get("mcnemar_p")}))
        mlflow.log_artifact(str(submission))
        mlflow.log_artifact(str(record_path))
        for member in record["members"]:
            if RunDir(member["run_dir"]).finished:
                log_run(member["run_dir"], uri)
        return active.info.run_id


def log_study(name: str, run_dirs: list[Path], summary_files: list[Path],
              uri: str | None = None) -> str:
    """Log a sweep or search: a parent run with its summary, its finished runs as children."""
    with tracked(name, uri, tags={"kaggle_digits.kind": "study"}) as active:
        import mlflow

        for path in summary_files:
            if path.is_file():
                mlflow.log_artifact(str(path))
        for run_dir in run_dirs:
            if RunDir(run_dir).finished:
                log_run(run_dir, uri)
        return active.info.run_id
