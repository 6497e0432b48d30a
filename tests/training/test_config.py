import pytest

from kaggle_digits.runs.io import write_json_atomic
from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.training.config import TrainConfig


def test_resolved_config_fills_architecture_defaults_and_keeps_explicit_values():
    config = TrainConfig(arch="simple_cnn", epochs=3).resolved()
    assert config.epochs == 3 and config.batch_size == 64 and config.lr_schedule == "plateau"
    assert TrainConfig().resolved().augment is True  # improved_cnn trains with augmentation.


def test_saved_config_loads_back_from_file_or_run_directory(tmp_path):
    config = TrainConfig(arch="mlp", seed=7, model_options={"dropout_rate": 0.1}).resolved()
    write_json_atomic(tmp_path / "config.json", config.to_dict())
    assert RunDir(tmp_path).read_config() == config
    assert TrainConfig.load(tmp_path / "config.json") == config


def test_unknown_fields_and_bad_values_are_refused(tmp_path):
    write_json_atomic(tmp_path / "config.json", {"arch": "mlp", "learning_rat": 0.1})
    with pytest.raises(ValueError, match="learning_rat"):
        TrainConfig.load(tmp_path / "config.json")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainConfig(optimizer="adagrad").resolved()
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        TrainConfig(lr_schedule="step").resolved()
    with pytest.raises(ValueError, match=r"ema_momentum must be in \[0, 1\)"):
        TrainConfig(ema_momentum=1.0).resolved()  # An average that never moves.
    with pytest.raises(ValueError, match="ema_momentum must be a finite number"):
        TrainConfig(ema_momentum=float("nan")).resolved()
    with pytest.raises(ValueError, match=r"pseudo_labels must hold one digit or '\.' per test "
                                         r"row. Received other characters: \['x'\]"):
        TrainConfig(pseudo_labels="..3x").resolved()


def test_resolved_config_writes_down_every_builder_option():
    options = TrainConfig(arch="improved_cnn", model_options={"dropout_rate": 0.3}).resolved() \
        .model_options
    assert options["dropout_rate"] == 0.3  # What was asked for wins...
    assert options["filters"] == [16, 32, 32, 64] and options["kernel_size"] == 3  # ...the rest
    # is the builder's default at the time, so a later default change cannot alter a repeat.


def test_a_config_saved_before_the_stem_option_rebuilds_its_5x5_stem(tmp_path):
    """Runs saved before 2026-12-06 wrote down every improved_cnn option of the time; resuming
    or repeating one must rebuild the stem it had, whatever the default is now."""
    old_options = {"filters": [16, 32, 32, 64], "kernel_size": 3, "stride": 1,
                   "dense_units": 128, "dropout_rate": 0.2, "activation": "relu"}
    old = TrainConfig(arch="improved_cnn", epochs=20, model_options=old_options).to_dict()
    write_json_atomic(tmp_path / "config.json", old)
    loaded = RunDir(tmp_path).read_config()
    assert loaded.model_options["stem"] == "conv5"
    assert loaded.resolved().model_options == {**old_options, "stem": "conv5",
                                               "stem_norm": "batch"}
    # A config that names only some options is a recipe for a new run: the defaults fill it.
    partial = TrainConfig(arch="improved_cnn", model_options={"dropout_rate": 0.3,
                                                            "stem": "space_to_depth"}).to_dict()
    write_json_atomic(tmp_path / "config.json", partial)
    assert RunDir(tmp_path).read_config().resolved().model_options["stem"] == "space_to_depth"


def test_configs_saved_before_each_later_option_rebuild_the_net_they_had(tmp_path):
    """Options are added one after another: a config that names the stem but not stem_norm
    predates stem_norm (batch norm in the stem), and one older than both gets both."""
    first = {"filters": [16, 32, 32, 64], "kernel_size": 3, "stride": 1, "dense_units": 128,
             "dropout_rate": 0.1, "activation": "relu"}
    for saved, expected in (({**first, "stem": "space_to_depth"},
                             {**first, "stem": "space_to_depth", "stem_norm": "batch"}),
                            (first, {**first, "stem": "conv5", "stem_norm": "batch"}),
                            ({**first, "stem": "conv5", "stem_norm": "none"},
                             {**first, "stem": "conv5", "stem_norm": "none"})):
        write_json_atomic(tmp_path / "config.json",
                          TrainConfig(arch="improved_cnn", model_options=saved).to_dict())
        assert RunDir(tmp_path).read_config().resolved().model_options == expected


def test_every_config_field_has_a_role():
    """Which settings a reused run or a full-data run's twin must share are derived from each
    field's role; a field added without one would fall through every such question."""
    import dataclasses

    from kaggle_digits.training.config import ROLES

    unclassified = [f.name for f in dataclasses.fields(TrainConfig)
                    if f.metadata.get("role") not in ROLES]
    assert unclassified == []


def test_the_named_option_groups_are_what_the_parsers_add():
    """train.py tells settings from the options that only say where fits run or whether they
    are tracked by these names; a group's new option must join its name list."""
    import argparse

    from kaggle_digits.cli.common import (
        EXECUTOR_OPTIONS,
        TRACKING_OPTIONS,
        add_executor_arguments,
        add_tracking_arguments,
    )

    for add, names in ((add_tracking_arguments, TRACKING_OPTIONS),
                       (add_executor_arguments, EXECUTOR_OPTIONS)):
        parser = argparse.ArgumentParser()
        add(parser)
        assert tuple(vars(parser.parse_args([]))) == names
