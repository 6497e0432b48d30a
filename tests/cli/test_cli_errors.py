"""What a user can fix is one `error:` line (exit 2); anything else is a bug: its traceback, then
one line that says so and what to attach (exit 1). Through a CLI, both ways."""

from __future__ import annotations

from helpers import assert_one_line_error, run_cli

from kaggle_digits import UserError
from kaggle_digits.cli.common import BUG_LINE


def test_a_user_error_is_one_line(tmp_path, tiny_data_dir):
    result = run_cli("train.py", "--arch", "mlp", "--epochs", "1", "--lr", "nan", "--data",
                     str(tiny_data_dir), "--output-dir", str(tmp_path / "runs"))
    assert_one_line_error(result, "learning_rate must be a finite number")
    assert result.returncode == 2


def test_a_bug_keeps_its_traceback_and_says_what_to_attach(tmp_path, tiny_data_dir,
                                                          monkeypatch):
    """A ValueError from our code, numpy or Keras is not the user's fault: it printed as one
    `error:` line with no traceback."""
    from kaggle_digits.training import run

    def broken(config, log=print, callbacks=()):
        raise ValueError("operands could not be broadcast together with shapes (3,) (4,)")

    monkeypatch.setattr(run, "train", broken)
    result = run_cli("train.py", "--arch", "mlp", "--epochs", "1", "--data",
                     str(tiny_data_dir), "--output-dir", str(tmp_path / "runs"))
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "could not be broadcast" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == BUG_LINE.format(kind="ValueError")


def test_every_exception_class_of_the_package_is_a_user_error():
    """Twelve exception classes shared no base, so each CLI listed the ones it caught; every
    one the package defines is now a UserError (a Ctrl-C kept is a KeyboardInterrupt)."""
    import importlib
    import inspect
    import pkgutil

    import kaggle_digits

    defined = []
    for info in pkgutil.walk_packages(kaggle_digits.__path__, "kaggle_digits."):
        if info.name.endswith("ray_executor"):
            continue  # Needs Ray; it defines no exception.
        module = importlib.import_module(info.name)
        defined += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                    if issubclass(cls, BaseException) and cls.__module__ == info.name]
    assert len(defined) >= 12
    assert [cls.__name__ for cls in defined
            if not issubclass(cls, (UserError, KeyboardInterrupt))] == []


def test_an_os_error_of_the_code_is_a_bug_and_a_full_disk_the_users(tmp_path, tiny_data_dir,
                                                                    monkeypatch):
    """Every OSError was one `error:` line: a FileNotFoundError of the code's own hid there."""
    import errno

    from kaggle_digits.training import run

    def lost_a_file(config, log=print, callbacks=()):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/tmp/internal.npy")

    monkeypatch.setattr(run, "train", lost_a_file)
    args = ("train.py", "--arch", "mlp", "--epochs", "1", "--data", str(tiny_data_dir),
            "--output-dir", str(tmp_path / "runs"))
    result = run_cli(*args)
    assert result.returncode == 1 and "Traceback" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == BUG_LINE.format(kind="FileNotFoundError")

    def disk_full(config, log=print, callbacks=()):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "runs"))

    monkeypatch.setattr(run, "train", disk_full)
    assert_one_line_error(run_cli(*args), "No space left on device")


def test_what_to_run_next_is_named_as_the_user_ran_it(monkeypatch):
    from kaggle_digits import command_line

    for argv0, expected in (("kaggle-digits train", "kaggle-digits train"),
                            ("/venv/bin/kaggle-digits-train", "kaggle-digits-train"),
                            ("scripts/train.py", "python scripts/train.py")):
        monkeypatch.setattr("sys.argv", [argv0])
        assert command_line("train") == expected


def test_options_the_executor_would_ignore_are_refused(tmp_path, tiny_data_dir):
    common = ("--data", str(tiny_data_dir), "--output-dir", str(tmp_path / "runs"), "--check")
    for extra, needle in ((["--ray-address", "auto"], "--ray-address would do nothing"),
                          (["--cpus-per-job", "2"], "--cpus-per-job would do nothing"),
                          (["--gpus-per-job", "1"], "--gpus-per-job would do nothing"),
                          (["--parallel", "2"], "--parallel would do nothing")):
        assert_one_line_error(run_cli("train.py", "--arch", "mlp", *extra, *common), needle)
    folds = run_cli("train.py", "--arch", "mlp", "--folds", "2", "--parallel", "2", *common)
    assert folds.returncode == 0, folds.stderr  # Folds are what --parallel spreads.
    search = run_cli("search.py", "--arch", "mlp", "--parallel", "2", "--check", "--data",
                     str(tiny_data_dir), "--out-dir", str(tmp_path / "s"))
    assert_one_line_error(search, "--parallel would do nothing")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "s").exists()


def test_refusals_name_options_as_the_user_typed_them(tmp_path, tiny_data_dir):
    """The --resume refusal named --exclude-rows-file, --rotate-deg and --ema-momentum, which
    do not exist; a builder's refusal named dropout_rate for --dropout."""
    rows = tmp_path / "rows.csv"
    rows.write_text("row\n1\n")
    resumed = run_cli("train.py", "--resume", str(tmp_path / "runs" / "x"), "--exclude-rows",
                      str(rows), "--rotate", "5", "--ema", "0.9")
    assert_one_line_error(resumed, "--exclude-rows", "--rotate", "--ema")
    assert "--exclude-rows-file" not in resumed.stderr and "--rotate-deg" not in resumed.stderr
    built = run_cli("train.py", "--dropout", "1.5", "--data", str(tiny_data_dir), "--check")
    assert_one_line_error(built, "--dropout 1.5", "cannot be built with dropout_rate=1.5")
    assert built.returncode == 2


def test_ensemble_refuses_data_it_would_ignore(tmp_path):
    result = run_cli("ensemble.py", str(tmp_path / "a"), "--data", str(tmp_path / "nowhere"))
    assert_one_line_error(result, "--data applies to the members a recipe trains")
