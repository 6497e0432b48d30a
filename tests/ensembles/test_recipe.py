import importlib.util
import json
from pathlib import Path

import pytest
from helpers import ROOT

from kaggle_digits.ensembles import recipe
from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.submission.files import check_submission_file
from kaggle_digits.training.config import TrainConfig


@pytest.mark.slow
def test_recipe_trains_members_then_reuses_them(tmp_path, tiny_data_dir, monkeypatch):
    # Members may see the digits differently (b rescales them to 20 pixels wide inside its
    # model): the ensemble averages what each model says of the same raw rows.
    monkeypatch.setitem(recipe.RECIPES, "tiny", recipe.Recipe("two tiny CNNs", [
        ("a", "simple_cnn", {"seed": 1, "epochs": 1}),
        ("b", "simple_cnn", {"seed": 2, "epochs": 1, "input_width": 20}),
    ]))
    base = TrainConfig(data_dir=str(tiny_data_dir), output_dir=str(tmp_path / "runs"),
                       submissions_dir=str(tmp_path / "subs"))
    lines = []
    members, result, submission, record = recipe.run_recipe("tiny", base, log=lines.append)
    assert [m.name for m in members] == ["a", "b"]
    assert any("[recipe tiny: member 2/2] b" in line for line in lines)
    assert submission == tmp_path / "subs" / "recipe-tiny-mean.csv"
    assert check_submission_file(submission, expected_rows=60) == []
    assert json.loads(record.read_text())["val_accuracy"] == result.val_accuracy
    assert (tmp_path / "runs" / "recipe-tiny" / "a" / "metrics.json").exists()
    assert [RunDir(tmp_path / "runs" / "recipe-tiny" / name).read_config().input_width
            for name in "ab"] == [0, 20]

    lines.clear()
    recipe.run_recipe("tiny", base, log=lines.append)
    assert sum("finished earlier, reused" in line for line in lines) == 2

    # A recipe whose settings changed since (an upgrade's new default, say) retrains that member
    # and keeps the old one aside instead of silently reusing it.
    monkeypatch.setitem(recipe.RECIPES, "tiny", recipe.Recipe("two tiny CNNs", [
        ("a", "simple_cnn", {"seed": 1, "epochs": 1}),
        ("b", "simple_cnn", {"seed": 2, "epochs": 1, "input_width": 20, "dropout_rate": 0.3}),
    ]))
    lines.clear()
    recipe.run_recipe("tiny", base, log=lines.append)
    assert sum("finished earlier, reused" in line for line in lines) == 1
    assert any("b was trained with other settings (model_options)" in line for line in lines)
    assert RunDir(tmp_path / "runs" / "recipe-tiny" / "b").read_config().model_options[
        "dropout_rate"] == 0.3
    [old_b] = (tmp_path / "runs" / "recipe-tiny-replaced").iterdir()
    assert old_b.name.startswith("b-") and (old_b / "metrics.json").exists()


def test_recipes_are_listed_and_buildable():
    assert list(recipe.RECIPES)[:2] == ["bagged", "pseudo"]  # make ensemble's first.
    with pytest.raises(ValueError, match="once named default is `pseudo`"):
        recipe.run_recipe("default", TrainConfig())
    for entry in recipe.RECIPES.values():
        for _, arch, overrides in entry.all_members:
            TrainConfig().override({"arch": arch, **overrides})


@pytest.mark.slow
def test_recipe_cli_writes_the_recipe_submission(tmp_path, tiny_data_dir, monkeypatch, capsys):
    monkeypatch.setitem(recipe.RECIPES, "tiny", recipe.Recipe("two tiny CNNs", [
        ("a", "simple_cnn", {"seed": 1, "epochs": 1}),
        ("b", "simple_cnn", {"seed": 2, "epochs": 1}),
    ]))
    script = ROOT / "scripts" / "ensemble.py"
    spec = importlib.util.spec_from_file_location("ensemble_script", script)
    ensemble_script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ensemble_script)
    monkeypatch.chdir(tmp_path)
    assert ensemble_script.main(["--recipe", "tiny", "--data", str(tiny_data_dir),
                                 "--parallel", "1"]) == 0  # Child processes: test_executor.
    assert "submission: submissions/recipe-tiny-mean.csv" in capsys.readouterr().out
    assert check_submission_file(tmp_path / "submissions" / "recipe-tiny-mean.csv",
                                 expected_rows=60) == []
    plain = json.loads((tmp_path / "submissions" / "recipe-tiny-mean.json").read_text())
    # --tta re-predicts the members with a recipe too (it was silently ignored).
    assert ensemble_script.main(["--recipe", "tiny", "--data", str(tiny_data_dir), "--tta",
                                 "3"]) == 0
    assert "TTA 3 views: member 2/2 b" in capsys.readouterr().out
    with_tta = json.loads((tmp_path / "submissions" / "recipe-tiny-mean.json").read_text())
    assert with_tta["tta"] == 3 and "tta" not in plain
    assert with_tta["val_accuracy"] is not None


def two_mlps(monkeypatch, tmp_path, data_dir):
    monkeypatch.setitem(recipe.RECIPES, "tiny", recipe.Recipe("two tiny MLPs", [
        ("a", "mlp", {"seed": 1, "epochs": 1}),
        ("b", "mlp", {"seed": 2, "epochs": 1}),
    ]))
    return TrainConfig(data_dir=str(data_dir), output_dir=str(tmp_path / "runs"),
                       submissions_dir=str(tmp_path / "subs"))


@pytest.mark.slow
def test_finished_members_made_on_other_data_are_trained_again(tmp_path, tiny_data_dir,
                                                              monkeypatch):
    base = two_mlps(monkeypatch, tmp_path, tiny_data_dir)
    recipe.run_recipe("tiny", base, log=lambda _: None)
    with open(tiny_data_dir / "test.csv", "a") as handle:  # A re-fetched, different test.csv.
        handle.write(",".join(["0"] * 784) + "\n")
    lines = []
    members, result, submission, _ = recipe.run_recipe("tiny", base, log=lines.append)
    assert not any("finished earlier, reused" in line for line in lines)
    assert sum("trained with other settings (data files)" in line for line in lines) == 2
    assert check_submission_file(submission, expected_rows=61) == []
    assert len(list((tmp_path / "runs" / "recipe-tiny-replaced").iterdir())) == 2


@pytest.mark.slow
def test_a_member_that_failed_after_its_last_epoch_is_resumed(tmp_path, tiny_data_dir,
                                                             monkeypatch):
    import errno

    import kaggle_digits.training.finish as training

    base = two_mlps(monkeypatch, tmp_path, tiny_data_dir)
    real_write = training.write_submission
    calls = []

    def disk_full_once(labels, path, expected_rows=None):
        calls.append(path)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_write(labels, path, expected_rows=expected_rows)

    monkeypatch.setattr(training, "write_submission", disk_full_once)
    with pytest.raises(OSError, match="No space left"):
        recipe.run_recipe("tiny", base, log=lambda _: None)
    lines = []
    members, _, _, _ = recipe.run_recipe("tiny", base, log=lines.append)
    assert [m.name for m in members] == ["a", "b"]
    assert any(line.startswith("resuming") and line.endswith("recipe-tiny/a") for line in lines)
    assert any(line.startswith("a: training had finished (1 epochs)") for line in lines)
    assert json.loads((tmp_path / "runs" / "recipe-tiny" / "a" / "metrics.json").read_text())[
        "epochs_run"] == 1


@pytest.mark.slow
def test_second_round_trains_on_the_first_rounds_confident_test_predictions(
        tmp_path, tiny_data_dir, monkeypatch, capsys):
    import numpy as np

    from kaggle_digits.ensembles.combine import combine, load_members

    monkeypatch.setitem(recipe.RECIPES, "tiny", recipe.Recipe(
        "two MLPs, then one on pseudo-labels",
        (("a", "mlp", {"seed": 1, "epochs": 2}), ("b", "mlp", {"seed": 2, "epochs": 2})),
        pseudo_label_members=(("p", "mlp", {"seed": 3, "epochs": 2}),),
        pseudo_label_confidence=0.3))
    base = TrainConfig(data_dir=str(tiny_data_dir), output_dir=str(tmp_path / "runs"),
                       submissions_dir=str(tmp_path / "subs"))
    lines = []
    members, result, submission, record = recipe.run_recipe("tiny", base, log=lines.append)
    assert [m.name for m in members] == ["a", "b", "p"]
    assert any("[recipe tiny: member 3/3] p" in line for line in lines)

    first = combine(load_members([m.run_dir for m in members[:2]], log=lambda _: None))
    keep = first.test_probs.max(axis=1) >= 0.3
    assert 0 < keep.sum() < 60  # The threshold kept some test rows and left others out.
    labels = members[2].config.pseudo_labels
    assert labels == "".join(str(d) if k else "." for d, k in
                             zip(first.test_probs.argmax(axis=1), keep))
    assert members[0].config.pseudo_labels == ""
    assert members[2].metrics["pseudo_label_rows"] == keep.sum()
    assert members[2].metrics["train_rows"] == 320  # Labelled training rows; validation unchanged.
    np.testing.assert_array_equal(members[2].val_labels, members[0].val_labels)
    written = json.loads(record.read_text())
    assert written["first_round"]["pseudo_label_rows"] == keep.sum()
    assert written["first_round"]["val_accuracy"] == first.val_accuracy
    assert len(written["members"]) == 3 and check_submission_file(submission, 60) == []

    # Run again: every member is reused; the same first round gives the same pseudo-labels.
    lines.clear()
    recipe.run_recipe("tiny", base, log=lines.append)
    assert sum("finished earlier, reused" in line for line in lines) == 3

    from bench import rounds  # The lever report reads the rounds apart by their metrics.

    rounds.main([str(tmp_path / "runs" / "recipe-tiny")])
    report = capsys.readouterr().out
    assert "round 1: members median" in report and "round 2: members median" in report
    assert "pseudo-labels, same member count: round 2 mean" in report


@pytest.mark.slow
def test_a_member_finished_beside_a_stale_failed_marker_is_reused_and_counted(
        tmp_path, tiny_data_dir, monkeypatch):
    """metrics.json and FAILED both there (a Ctrl-C between writing metrics and clearing the
    resume files): it was reused by the recipe and then dropped by the ensemble, exit 0."""
    base = two_mlps(monkeypatch, tmp_path, tiny_data_dir)
    recipe.run_recipe("tiny", base, log=lambda _: None)
    member = tmp_path / "runs" / "recipe-tiny" / "a"
    (member / "FAILED").write_text("KeyboardInterrupt: interrupted\n")
    (member / "state.json").write_text("{}")
    lines = []
    members, _, _, record = recipe.run_recipe("tiny", base, log=lines.append)
    assert [m.name for m in members] == ["a", "b"]
    assert sum("finished earlier, reused" in line for line in lines) == 2
    assert len(json.loads(record.read_text())["members"]) == 2
    assert not (member / "FAILED").exists() and not (member / "state.json").exists()


DRIVER = """
import sys, time
from pathlib import Path
from kaggle_digits.ensembles import recipe
from kaggle_digits.cli import ensemble
from kaggle_digits.orchestration.executors import local

recipe.RECIPES["tiny"] = recipe.Recipe("two tiny MLPs", [
    ("a", "mlp", {"seed": 1, "epochs": 1}), ("b", "mlp", {"seed": 2, "epochs": 1})])
real_run_job, go = local.run_job, Path(sys.argv[1])


def run_job_when_told(job, *args, **kwargs):
    print("member started", flush=True)
    while not go.exists():
        time.sleep(0.05)
    return real_run_job(job, *args, **kwargs)


local.run_job = run_job_when_told
sys.exit(ensemble.main(["--recipe", "tiny", "--data", sys.argv[2], "--parallel", "1"]))
"""


@pytest.mark.slow
def test_a_second_recipe_command_in_the_same_folder_stops_at_once(tmp_path, tiny_data_dir):
    """Two recipe commands at once trained the same member, and one wrote an ensemble lacking
    it (exit 0) that the other then overwrote."""
    import subprocess
    import sys

    go = tmp_path / "go"
    command = [sys.executable, "-c", DRIVER, str(go), str(tiny_data_dir)]
    first = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        while "member started" not in first.stdout.readline():
            assert first.poll() is None, first.communicate()
        second = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True,
                                timeout=300)
        assert second.returncode == 2 and "Traceback" not in second.stderr
        assert (f"runs/recipe-tiny is in use by process {first.pid}"
                in second.stderr.strip().splitlines()[-1])
        go.touch()
        out, err = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 0, err
    record = json.loads((tmp_path / "submissions" / "recipe-tiny-mean.json").read_text())
    assert [Path(m["run_dir"]).name for m in record["members"]] == ["a", "b"]
    assert not list((tmp_path / "runs").glob(".*.lock"))


@pytest.mark.slow
def test_bagged_members_score_every_row_by_the_members_that_never_saw_it(
        tmp_path, tiny_data_dir, monkeypatch):
    import numpy as np

    monkeypatch.setitem(recipe.RECIPES, "bagged-tiny", recipe.Recipe("2 x 3-fold MLPs", tuple(
        (f"mlp-kfold3-split{seed}", "mlp", {"folds": 3, "split_seed": seed, "seed": seed,
                                           "epochs": 1}) for seed in (1, 2))))
    base = TrainConfig(data_dir=str(tiny_data_dir), output_dir=str(tmp_path / "runs"),
                       submissions_dir=str(tmp_path / "subs"))
    members, result, _, record = recipe.run_recipe("bagged-tiny", base, log=lambda _: None)
    assert result.val_rows == 400 and json.loads(record.read_text())["val_rows"] == 400
    folds = [RunDir(m.run_dir).load_array("fold_of_row") for m in members]
    assert not np.array_equal(folds[0], folds[1])  # Different rows held out by each split.
    oof = np.mean([m.val_probs for m in members], axis=0)  # Each from the folds without it.
    np.testing.assert_allclose(result.val_probs, oof, rtol=1e-5, atol=1e-6)
    assert result.val_accuracy == pytest.approx(np.mean(oof.argmax(1) == members[0].val_labels))
