"""Names that become file names: their limit counts what the file system counts (bytes, with
the prefixes and suffixes the toolkit adds), checked before anything is trained."""

from __future__ import annotations

import json

from helpers import assert_one_line_error, run_cli, tiny_config

from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.training.config import name_max_bytes


def test_a_name_too_long_in_bytes_is_refused_before_training(tmp_path, tiny_data_dir):
    """120 x "é" is 120 characters but 240 bytes: it trained for the full run, then could not
    write its submission copy."""
    result = run_cli("train.py", "--arch", "mlp", "--epochs", "1", "--data",
                     str(tiny_data_dir), "--run-name", "é" * 120, "--output-dir",
                     str(tmp_path / "runs"), "--submissions-dir", str(tmp_path / "subs"))
    assert_one_line_error(result, "run_name is too long", "240 bytes",
                          f"at most {name_max_bytes()}")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "subs").exists()


def test_resuming_a_run_whose_name_cannot_be_written_is_one_line(tmp_path, tiny_data_dir):
    run = RunDir(tmp_path / "runs" / "cut")
    run.path.mkdir(parents=True)
    config = tiny_config(tmp_path, tiny_data_dir, arch="mlp").resolved().to_dict()
    run.config_path.write_text(json.dumps({**config, "run_name": "é" * 120}))
    run.write_state({"data_fingerprint": {}, "is_sample": False, "epochs_done": 1})
    result = run_cli("train.py", "--resume", str(run.path))
    assert_one_line_error(result, "run_name is too long")


def test_the_longest_name_allowed_writes_every_file(tmp_path, tiny_data_dir):
    name = "é" * ((name_max_bytes() - 1) // 2) + "a" * (1 + (name_max_bytes() - 1) % 2)
    assert len(name.encode()) == name_max_bytes()
    result = run_cli("train.py", "--arch", "mlp", "--epochs", "1", "--data",
                     str(tiny_data_dir), "--run-name", name, "--output-dir",
                     str(tmp_path / "runs"), "--submissions-dir", str(tmp_path / "subs"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "subs" / f"{name}.csv").is_file()
    assert (tmp_path / "subs" / f"{name}.json").is_file()
