"""Jobs as Ray tasks, on a local Ray instance started for the command or on an existing cluster.

Every result comes back as an ordinary run directory on this machine (same files, same
fingerprints), shared file system or not:

- the data files travel through Ray's object store and are checked by SHA-256 on the worker;
- after every epoch the worker sends a snapshot of its run directory (with the checkpoint and the
  resume record) to a small actor; this process unpacks the snapshots as they come, so a job whose
  worker dies is retried and resumes from its last completed epoch, and Ctrl-C leaves resumable
  runs;
- a job that fails for a reason of its own (a bad config, bad data) is reported and the others
  go on;
- a search's pruning is relayed through the same actor (:class:`RemotePruning`).

Keras' ``fit`` has no multi-worker data parallelism, and a 1.3 M-parameter CNN would not gain from
it: the cluster spreads whole fits, not the batches of one. This module is imported only when
``--executor ray`` is asked for.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import keras

from kaggle_digits import UserError
from kaggle_digits.data.load import competition_files, fingerprint_files, resolve_data_dir
from kaggle_digits.orchestration.executors.job import Job, JobResult
from kaggle_digits.orchestration.executors.jobs import run_job
from kaggle_digits.orchestration.executors.local import POLL_SECONDS
from kaggle_digits.orchestration.executors.snapshots import (
    pack_directory,
    relocate,
    unpack_directory,
)
from kaggle_digits.orchestration.progress import RunProgress
from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.submission.files import publish_submission
from kaggle_digits.training.config import TrainConfig
from kaggle_digits.training.runtime import usable_cores


class SendSnapshot(keras.callbacks.Callback):
    """After each epoch's checkpoint: the whole run directory to the broker, for this process to
    unpack (and for a retried job to resume from)."""

    def __init__(self, broker, key: str, run_path: Path):
        super().__init__()
        self.broker, self.key, self.run_path = broker, key, run_path

    def on_epoch_end(self, epoch, logs=None):
        self.broker.put.remote(self.key, pack_directory(self.run_path))


WORK_DIR_PREFIX = "kaggle-digits-job-"


def _process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # Alive, another user's.
        pass
    return False


def remove_abandoned_work_dirs(temp_dir: str | os.PathLike | None = None) -> list[Path]:
    """A cancelled (``ray.cancel(force=True)``) or crashed job's worker dies before its
    ``finally`` runs, leaving its copy of the data and run in the node's temp
    directory; each job removes the ones whose worker process is gone."""
    removed = []
    for path in Path(temp_dir or tempfile.gettempdir()).glob(f"{WORK_DIR_PREFIX}*-*"):
        pid = path.name[len(WORK_DIR_PREFIX):].split("-", 1)[0]
        if path.is_dir() and pid.isdigit() and _process_is_gone(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _ray_job(job: Job, key: str, files: dict[str, bytes], fingerprint: dict[str, str],
             snapshot: bytes | None, store, threads: int) -> dict:
    """The body of one Ray task: the data files, and the run's last snapshot when the job is
    retried, arrive as arguments (resolved before the task starts: a task blocked in ray.get
    would hand its CPU to another task); the finished run directory is the return value."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    remove_abandoned_work_dirs()
    work = Path(tempfile.mkdtemp(prefix=f"{WORK_DIR_PREFIX}{os.getpid()}-"))
    try:
        data_dir = work / "data"
        data_dir.mkdir()
        for name, content in files.items():
            (data_dir / name).write_bytes(content)
        if fingerprint_files([data_dir / name for name in files]) != fingerprint:
            raise RuntimeError("the data files changed on their way to the worker")
        config = TrainConfig.from_dict(job.config.to_dict())
        config.data_dir, config.output_dir = str(data_dir), str(work / "runs")
        config.submissions_dir = str(work / "submissions")
        local = Job(job.label, config, job.callbacks, fold=job.fold)
        if snapshot is not None:
            unpack_directory(snapshot, local.work_dir)
        local.callbacks = (*job.callbacks, SendSnapshot(store, key, local.work_dir))
        result = run_job(local, log=lambda line: print(line, flush=True), data_dir=str(data_dir))
        return {"error": result.error, "metrics": result.metrics,
                "run": pack_directory(local.work_dir) if local.work_dir.exists() else None}
    finally:
        shutil.rmtree(work, ignore_errors=True)


class RayExecutor:
    """Jobs as Ray tasks, ``cpus_per_job`` CPUs (and TensorFlow threads) each.

    ``address``: None starts a local Ray instance for the command; ``"auto"`` joins the cluster
    this machine belongs to; ``"ray://host:10001"`` connects through Ray Client.
    """

    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_job: float = 1,
                 gpus_per_job: float = 0, max_retries: int = 3,
                 on_snapshot: Callable[[Job, int], None] | None = None):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserError("--executor ray needs Ray: pip install 'kaggle-digits[cluster]' "
                            "(or python scripts/quickstart.py --test, which installs it)"
                            ) from None
        if cpus_per_job <= 0:
            raise UserError(f"cpus_per_job must be positive. Received: "
                             f"cpus_per_job={cpus_per_job}")
        self.address, self.cpus_per_job, self.gpus_per_job = address, cpus_per_job, gpus_per_job
        self.max_retries, self.on_snapshot = max_retries, on_snapshot
        self._broker, self._owns_ray, self._trials = None, True, {}

    def _connect(self, log) -> None:
        import ray

        if self._broker is not None and ray.is_initialized():
            return
        if ray.is_initialized():
            self._owns_ray = False
        elif self.address is None:
            cores = usable_cores()
            ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=True,
                     configure_logging=False)
            log(f"started a local Ray instance with {cores} CPUs")
        else:
            import kaggle_digits

            # Workers run this process's version of the package; its dependencies must be
            # installed on every node (pip install 'kaggle-digits[cluster]').
            ray.init(address=self.address, log_to_driver=True, configure_logging=False,
                     runtime_env={"py_modules": [str(Path(kaggle_digits.__file__).parent)]})
            log(f"connected to the Ray cluster at {self.address}: "
                f"{ray.cluster_resources().get('CPU', 0):.0f} CPUs")
        # On this process's node: a worker node that dies must not take the snapshots with it.
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        self._broker = JobBroker.options(num_cpus=0, scheduling_strategy=here).remote()

    def close(self) -> None:
        """Shut down the Ray instance this executor started (a joined cluster stays up)."""
        import ray

        self._broker = None
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def parallel_jobs(self, log: Callable[[str], None] = print) -> int:
        """How many jobs the cluster runs at once with ``cpus_per_job`` each."""
        import ray

        self._connect(log)
        return max(1, int(ray.cluster_resources().get("CPU", 1) // self.cpus_per_job))

    def pruning_callback(self, study, trial):
        """A Keras callback for a trial that runs on a worker: it reports each epoch's validation
        loss through the broker, this process asks the study's pruner, and the worker stops once
        told to (one or two epochs later than in a local search)."""
        self._connect(print)
        key = f"trial-{trial.number}"
        self._trials[key] = trial
        return RemotePruning(self._broker, key)

    def _judge_trials(self) -> None:
        import ray

        for key, step, value in ray.get(self._broker.take_reports.remote()):
            trial = self._trials.get(key)
            if trial is None:
                continue
            trial.report(value, step)
            if trial.should_prune():
                trial.set_user_attr("pruned_after_epoch", step + 1)
                self._broker.stop.remote(key)

    def run(self, jobs: list[Job], log: Callable[[str], None] = print,
            description: str = "jobs") -> list[JobResult]:
        """Run the jobs on the cluster; returns when all have finished or failed.

        Ray stays connected for the next call; ``close()`` (or ``with``) ends it.
        """
        self._connect(log)
        with contextlib.ExitStack() as locks:
            # This process unpacks every job's snapshots into its run directory: it holds them.
            for job in jobs:
                locks.enter_context(RunDir(job.run_dir).lock())
            return self._run_jobs(jobs, log, description)

    def _run_jobs(self, jobs: list[Job], log, description: str) -> list[JobResult]:
        import ray

        store = self._broker
        # No Ray-level retries: a retried job must start from its latest snapshot, which this
        # process passes in when it submits the job again.
        task = ray.remote(num_cpus=self.cpus_per_job, num_gpus=self.gpus_per_job, max_calls=1,
                          max_retries=0)(_ray_job)  # max_calls=1: a fresh TensorFlow per job.
        threads = max(1, int(self.cpus_per_job))
        payloads, pending, results = {}, {}, {}

        def submit(key, job, data_dir, is_sample, snapshot=None):
            files_ref, fingerprint = payloads[data_dir]
            done = RunDir(job.work_dir).epochs_done() if snapshot is not None else 0
            results[key].attempts += 1
            results[key].resumed_from.append(done)
            ref = task.remote(job, key, files_ref, fingerprint, snapshot, store, threads)
            pending[ref] = (key, job, data_dir, is_sample)

        for job in jobs:
            key = str(job.work_dir.resolve())
            data_dir, is_sample = resolve_data_dir(job.config.data_dir)
            if str(data_dir) not in payloads:
                payloads[str(data_dir)] = _data_payload(data_dir)
            results[key] = JobResult(job, attempts=0)
            submit(key, job, str(data_dir), is_sample)
        progress = RunProgress(len(jobs), description)
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
                self._judge_trials()
                self._take_snapshots(store, pending, results)
                for ref in ready:
                    key, job, data_dir, is_sample = pending.pop(ref)
                    outcome, lost = _outcome(ref)
                    if lost and results[key].attempts <= self.max_retries:
                        log(f"[{job.label}] its worker was lost ({outcome['error']}); retrying "
                            f"from its last completed epoch ({RunDir(job.work_dir).epochs_done()})")
                        submit(key, job, data_dir, is_sample, store.latest.remote(key))
                        continue
                    self._collect(outcome, job, data_dir, is_sample, results[key], log)
                    progress.update()
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            self._take_snapshots(store, pending, results)
            log(f"cancelled {len(pending)} job(s) in flight; each run is saved at its last "
                f"completed epoch")
            raise
        finally:
            progress.close()
        return list(results.values())

    def _take_snapshots(self, store, pending, results) -> None:
        import ray

        by_key = {key: (job, data_dir, is_sample) for key, job, data_dir, is_sample
                  in pending.values()}
        for key, payload in ray.get(store.take_new.remote()).items():
            if key not in by_key:
                continue  # Its final result is on the way or already unpacked.
            job, data_dir, is_sample = by_key[key]
            unpack_directory(payload, job.work_dir)
            relocate(RunDir(job.work_dir), data_dir, is_sample)
            if self.on_snapshot is not None:
                self.on_snapshot(job, RunDir(job.work_dir).epochs_done())

    @staticmethod
    def _collect(outcome: dict, job: Job, data_dir: str, is_sample: bool, result: JobResult,
                 log) -> None:
        """Unpack a finished job's run (or fold) directory here and finish it as a local run
        would."""
        result.error = outcome["error"]
        if outcome.get("run") is not None:
            unpack_directory(outcome["run"], job.work_dir)
            run = RunDir(job.work_dir)
            relocate(run, data_dir, is_sample)
            if job.fold:
                result.metrics = outcome["metrics"]  # The fold's record; the run is finished here.
            elif outcome["metrics"] is not None:
                metrics = {**run.read_metrics(), "data_dir": data_dir, "is_sample": is_sample}
                publish_submission(run, metrics, job.config.submissions_dir)
                run.write_metrics(metrics)
                result.metrics = metrics
        if result.error:
            log(f"[{job.label}] failed: {result.error}")


def _outcome(ref) -> tuple[dict, bool]:
    """A finished task's result, and whether it failed because its worker or node went away
    (worth a retry) rather than because of an error the job raised itself."""
    import ray

    try:
        return ray.get(ref), False
    except (ray.exceptions.RayTaskError, ray.exceptions.TaskCancelledError) as exc:
        return {"error": _last_line(exc), "metrics": None}, False
    except ray.exceptions.RayError as exc:
        return {"error": _last_line(exc), "metrics": None}, True


def _last_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[-1]


def _data_payload(data_dir: Path) -> tuple:
    """The data files in Ray's object store (put once, shared by every job), and their hashes."""
    import ray

    paths = competition_files(data_dir)
    files = {path.name: path.read_bytes() for path in paths}
    return ray.put(files), fingerprint_files(list(paths))


def _define_broker():
    import ray

    @ray.remote
    class JobBroker:
        """Between the workers and this process: the latest run-directory snapshot of every job,
        and a search's epoch reports and stop orders."""

        def __init__(self):
            self.snapshots, self.new = {}, {}
            self.reports, self.stopped = [], set()

        def put(self, key, payload):
            self.snapshots[key] = self.new[key] = payload

        def latest(self, key):
            return self.snapshots.get(key)

        def take_new(self):
            new, self.new = self.new, {}
            return new

        def report(self, key, step, value):
            self.reports.append((key, step, value))

        def take_reports(self):
            reports, self.reports = self.reports, []
            return reports

        def stop(self, key):
            self.stopped.add(key)

        def should_stop(self, key):
            return key in self.stopped

    return JobBroker


class _LazyActor:
    """Defines the actor class on first use, so importing this module does not import Ray."""

    def __init__(self, define):
        self.define, self.cls = define, None

    def options(self, **kwargs):
        if self.cls is None:
            self.cls = self.define()
        return self.cls.options(**kwargs)


JobBroker = _LazyActor(_define_broker)


class RemotePruning(keras.callbacks.Callback):
    """A trial's pruning on a Ray worker (see ``RayExecutor.pruning_callback``)."""

    def __init__(self, broker, key: str):
        super().__init__()
        self.broker, self.key, self.answer = broker, key, None

    def on_epoch_end(self, epoch, logs=None):
        import ray

        loss = (logs or {}).get("val_loss")
        if loss is None or not math.isfinite(loss):
            return
        # Never wait for the answer (a task blocked in ray.get gives its CPU away): read the
        # one asked after the previous epoch if it has come, and ask again.
        if self.answer is not None:
            ready, _ = ray.wait([self.answer], timeout=0)
            if ready and ray.get(ready[0]):
                self.model.stop_training = True
        self.broker.report.remote(self.key, epoch, float(loss))
        self.answer = self.broker.should_stop.remote(self.key)
