import json

import numpy as np
import pytest
from helpers import assert_one_line_error, run_cli

from kaggle_digits.ensembles.combine import EnsembleError, combine, list_methods, load_members
from kaggle_digits.training.config import TrainConfig

FINGERPRINT = {"train.csv": "aaa", "test.csv": "bbb"}


def make_run(root, name, val_probs, test_probs, labels, *, kind="holdout", split_hash="split-1",
             fingerprint=FINGERPRINT, **config):
    run_dir = root / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(TrainConfig(**config).to_dict()))
    accuracy = None if val_probs is None else float(np.mean(val_probs.argmax(1) == labels))
    metrics = {"arch": "simple_cnn", "kind": kind, "val_accuracy": accuracy,
               "data_fingerprint": fingerprint, "is_sample": False,
               "split": None if kind == "full" else {"seed": 42, "val_split": 0.2, "folds": 1,
                                                     "val_indices_sha256": split_hash}}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    np.save(run_dir / "test_probs.npy", test_probs.astype(np.float32))
    if val_probs is not None:
        np.save(run_dir / "val_probs.npy", val_probs.astype(np.float32))
        np.save(run_dir / "val_labels.npy", labels)
    return run_dir


def noisy_member(labels, correct_fraction, seed, noise=1.0):
    """Probabilities that favour the true label on about ``correct_fraction`` of the rows."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, noise, size=(len(labels), 10))
    hit = rng.random(len(labels)) < correct_fraction
    logits[np.arange(len(labels))[hit], labels[hit]] += 3.0
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True)


@pytest.fixture
def labels():
    return np.arange(400) % 10


def three_members(root, labels):
    test_labels = np.arange(50) % 10
    return [make_run(root, f"m{i}", noisy_member(labels, 0.8, i), noisy_member(test_labels, 0.8,
                                                                                100 + i),
                     labels, seed=i) for i in range(3)]


def test_mean_ensemble_beats_independent_members(tmp_path, labels):
    members = load_members(three_members(tmp_path, labels))
    result = combine(members, "mean")
    best = max(m.val_accuracy for m in members)
    assert result.val_accuracy > best
    assert result.weights == pytest.approx([1 / 3] * 3)
    assert result.test_probs.shape == (50, 10)


def test_vote_and_weighted_give_valid_probabilities(tmp_path, labels):
    members = load_members(three_members(tmp_path, labels))
    for method in ("vote", "weighted"):
        result = combine(members, method)
        assert result.test_probs.shape == (50, 10) and 0.5 < result.val_accuracy <= 1.0
        assert sum(result.weights) == pytest.approx(1.0)


def test_refuses_runs_on_different_data(tmp_path, labels):
    runs = three_members(tmp_path, labels)
    runs.append(make_run(tmp_path, "other", noisy_member(labels, 0.8, 9),
                         noisy_member(np.arange(50) % 10, 0.8, 9), labels,
                         fingerprint={"train.csv": "aaa", "test.csv": "different"}))
    with pytest.raises(EnsembleError, match="other and m0 were made on different data "
                                            r"\(test.csv differ"):
        load_members(runs)


def test_refuses_runs_validated_on_different_rows(tmp_path, labels):
    runs = three_members(tmp_path, labels)
    runs.append(make_run(tmp_path, "resplit", noisy_member(labels, 0.8, 9),
                         noisy_member(np.arange(50) % 10, 0.8, 9), labels, split_hash="split-2"))
    with pytest.raises(EnsembleError, match="validated on different rows.*--split-seed"):
        load_members(runs)


def test_a_failed_member_is_an_error_unless_skipped_by_name(tmp_path, labels):
    runs = three_members(tmp_path, labels)
    (runs[1] / "metrics.json").unlink()
    (runs[1] / "FAILED").write_text("KeyboardInterrupt: interrupted\n")
    with pytest.raises(EnsembleError, match="1 of 3 member.*m1: a failed run \\(KeyboardInt"):
        load_members(runs)
    messages, skipped = [], []
    members = load_members(runs, log=messages.append, skip_missing=True, skipped=skipped)
    assert [m.name for m in members] == ["m0", "m2"]
    assert messages[0].startswith("warning: leaving out") and "m1: a failed run" in messages[0]
    assert [s.path for s in skipped] == [runs[1]]


def test_finished_is_finished_whatever_a_kill_left_beside_it(tmp_path, labels):
    """metrics.json and a FAILED marker (a Ctrl-C between the two): the run is finished, for
    the ensemble as for the recipe, and its leftovers are tidied."""
    from kaggle_digits.runs.rundir import RunDir, RunStatus

    runs = three_members(tmp_path, labels)
    (runs[1] / "FAILED").write_text("KeyboardInterrupt: interrupted\n")
    (runs[1] / "state.json").write_text("{}")
    assert RunDir(runs[1]).status is RunStatus.FINISHED and not RunDir(runs[1]).resumable
    assert len(load_members(runs)) == 3
    RunDir(runs[1]).tidy()
    assert not (runs[1] / "FAILED").exists() and not (runs[1] / "state.json").exists()


@pytest.mark.parametrize("damage", ["val_probs.npy", "test_probs.npy", "val_labels.npy"])
def test_a_damaged_member_is_named_not_a_traceback(damage, tmp_path, labels):
    runs = three_members(tmp_path, labels)
    (runs[2] / damage).unlink()
    with pytest.raises(EnsembleError, match=f"m2: damaged run \\({damage} is missing\\)"):
        load_members(runs)


@pytest.mark.slow
def test_damaged_members_through_the_script(tmp_path, labels):
    runs = three_members(tmp_path, labels)
    (runs[2] / "val_probs.npy").unlink()
    result = run_cli("ensemble.py", *map(str, runs), "--out", str(tmp_path / "e.csv"))
    assert_one_line_error(result, "damaged run (val_probs.npy is missing)", "--skip-missing")
    assert not (tmp_path / "e.csv").exists()
    result = run_cli("ensemble.py", *map(str, runs), "--out", str(tmp_path / "e.csv"),
                     "--skip-missing")
    assert result.returncode == 0, result.stderr
    assert f"warning: leaving out {runs[2]}" in result.stderr
    record = json.loads((tmp_path / "e.json").read_text())
    assert [m["run_dir"] for m in record["members"]] == [str(runs[0]), str(runs[1])]
    assert record["skipped"][0]["run_dir"] == str(runs[2])


@pytest.mark.slow
def test_a_run_given_twice_and_a_record_path_for_the_csv_are_refused(tmp_path, labels):
    runs = three_members(tmp_path, labels)
    twice = run_cli("ensemble.py", str(runs[0]), str(runs[1]), str(runs[0]) + "/",
                    "--out", str(tmp_path / "e.csv"))
    assert_one_line_error(twice, "is given twice")
    as_json = run_cli("ensemble.py", *map(str, runs), "--out", str(tmp_path / "e.json"))
    assert_one_line_error(as_json, "must end in .csv")
    assert not (tmp_path / "e.json").exists()


def test_stack_scores_without_leakage(tmp_path):
    """Members with no signal: a meta-model scored on its own fitting rows would look good."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=300)
    runs = []
    for i in range(8):
        noise = rng.dirichlet(np.ones(10), size=300)
        runs.append(make_run(tmp_path, f"r{i}", noise, rng.dirichlet(np.ones(10), size=40),
                             labels, seed=i))
    members = load_members(runs)
    result = combine(members, "stack")
    assert result.val_accuracy < 0.2  # Chance is 0.1.
    features = np.log(np.stack([m.val_probs for m in members])).transpose(1, 0, 2).reshape(300, -1)
    leaky = LogisticRegression(max_iter=2000).fit(features, labels).score(features, labels)
    assert leaky > 0.4  # The same model scored on its fitting rows: the leak this guards against.


def test_stack_learns_a_useful_combination(tmp_path, labels):
    members = load_members(three_members(tmp_path, labels))
    result = combine(members, "stack")
    assert result.val_accuracy > max(m.val_accuracy for m in members) - 0.02
    assert result.weights == [None, None, None]  # No single weight per member to report.


def test_full_run_uses_its_twin_or_equal_weight(tmp_path, labels):
    runs = three_members(tmp_path, labels)
    full = make_run(tmp_path, "full0", None, noisy_member(np.arange(50) % 10, 0.9, 7), labels,
                    kind="full", seed=0, full=True, epochs=15)
    members = load_members([*runs, full])
    assert members[-1].twin.name == "m0"
    result = combine(members, "weighted")
    assert any("validated through its held-out twin m0" in note for note in result.notes)
    assert result.weights[-1] == pytest.approx(result.weights[0])

    orphan = make_run(tmp_path, "full9", None, noisy_member(np.arange(50) % 10, 0.9, 8), labels,
                      kind="full", seed=9, full=True)
    members = load_members([*runs, orphan])
    result = combine(members, "mean")
    assert any("no held-out twin" in note for note in result.notes)
    with pytest.raises(EnsembleError, match="stack needs validation predictions"):
        combine(members, "stack")


def test_script_prints_members_and_writes_submission_and_json(tmp_path, labels):
    runs = three_members(tmp_path, labels)
    out = tmp_path / "subs" / "ens.csv"
    result = run_cli("ensemble.py", *map(str, runs), "--method", "mean", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "ensemble (mean) validation accuracy" in result.stdout and "m2" in result.stdout
    record = json.loads(out.with_suffix(".json").read_text())
    assert [m["run_dir"] for m in record["members"]] == list(map(str, runs))
    assert len(out.read_text().splitlines()) == 51

    bad = make_run(tmp_path, "bad", noisy_member(labels, 0.8, 9),
                   noisy_member(np.arange(50) % 10, 0.8, 9), labels, split_hash="other")
    result = run_cli("ensemble.py", str(runs[0]), str(bad), "--out", str(tmp_path / "x.csv"))
    assert result.returncode == 2 and "validated on different rows" in result.stderr
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("method", list_methods())  # A method registered tomorrow too.
def test_every_combiner_beats_its_best_member_on_validation_and_test_rows(method, tmp_path,
                                                                         labels):
    """Three members with independent errors: a combiner that drops, misaligns or copies one
    member's probabilities cannot beat the best member on both sets of rows."""
    members = load_members(three_members(tmp_path, labels))
    result = combine(members, method)
    assert result.val_accuracy > max(m.val_accuracy for m in members)
    test_labels = np.arange(50) % 10
    member_test = [np.mean(m.test_probs.argmax(1) == test_labels) for m in members]
    assert np.mean(result.test_probs.argmax(1) == test_labels) >= max(member_test)


def test_the_ensemble_is_tested_against_its_best_member_on_the_same_rows(tmp_path, labels):
    from kaggle_digits.ensembles.combine import against_best_member, write_ensemble

    members = load_members(three_members(tmp_path, labels))
    result = combine(members, "mean")
    versus = against_best_member(members, result)
    best = max(members, key=lambda m: m.val_accuracy)
    assert versus["member"] == best.name and versus["rows"] == 400
    ensemble_right = result.val_probs.argmax(1) == labels
    member_right = best.val_probs.argmax(1) == labels
    assert versus["ensemble_only_right"] == int(np.sum(ensemble_right & ~member_right))
    assert versus["member_only_right"] == int(np.sum(~ensemble_right & member_right))
    assert versus["mcnemar_p"] < 0.05  # Three independent 80% members: a real gain.
    low, high = versus["ensemble_ci95"]
    assert low < result.val_accuracy < high
    _, record = write_ensemble(members, result, tmp_path / "subs" / "ens.csv")
    assert json.loads(record.read_text())["against_best_member"]["mcnemar_p"] == \
        pytest.approx(versus["mcnemar_p"])


@pytest.mark.slow  # Two ensemble.py processes.
def test_two_ensembles_writing_one_out_at_once_never_mix_csv_and_record(tmp_path, labels):
    """The second writer of the same --out waits for the first, and each record names the
    SHA-256 of the CSV beside it (it could name the other command's)."""
    import subprocess
    import sys
    import time

    from helpers import ROOT, hold_lock

    from kaggle_digits.runs.io import sha256_file

    runs = three_members(tmp_path, labels)
    out = tmp_path / "ens.csv"
    holder = hold_lock(out)  # Another ensemble.py, in the middle of writing ens.csv.
    try:
        second = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "ensemble.py"),
                                   *map(str, runs[:2]), "--out", str(out)], cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        said = ""
        while "waiting for" not in said and (line := second.stderr.readline()):
            said = line
        assert "waiting for" in said and str(out) in said  # It waits, and says for whom.
        time.sleep(1)
        assert second.poll() is None and not out.exists()  # Nothing written meanwhile.
    finally:
        holder.stdin.close()
        holder.wait()
    stdout, stderr = second.communicate(timeout=120)
    assert second.returncode == 0, stderr
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["submission_sha256"] == sha256_file(out)
    assert len(record["members"]) == 2


@pytest.mark.parametrize("change", [dict(label_smoothing=0.2), dict(ema_momentum=0.99),
                                    dict(rotate_deg=15.0), dict(teacher=["runs/t"]),
                                    dict(pseudo_labels="1.")])
def test_a_full_run_trained_differently_has_no_twin(change, tmp_path, labels):
    """The twin key was an allow-list that lacked these: a full-data run was "validated" by a
    held-out run trained differently."""
    runs = three_members(tmp_path, labels)
    full = make_run(tmp_path, "full0", None, noisy_member(np.arange(50) % 10, 0.9, 7), labels,
                    kind="full", seed=0, full=True, epochs=15, **change)
    members = load_members([*runs, full])
    assert members[-1].twin is None
