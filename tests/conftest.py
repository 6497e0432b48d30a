"""Fixtures and collection hooks; what else the tests share is in ``helpers.py``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import make_tiny_data_dir

# Under pytest-xdist each worker (and every process it starts) gets its share of the cores for
# TensorFlow's thread pools, set before TensorFlow loads: workers that each used every core spent
# the difference switching between threads. An exported value wins.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _threads = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    for _variable in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(_variable, _threads)

@pytest.fixture
def tiny_data_dir(tmp_path) -> Path:
    return make_tiny_data_dir(tmp_path)


@pytest.fixture
def isolated_env(tmp_path, monkeypatch) -> dict[str, str]:
    """No real credentials or config: HOME and the kaggle config dir point into tmp_path."""
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_API_ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)  # The client reads every KAGGLE_* variable.
    home = tmp_path / "home"
    home.mkdir()
    return {"HOME": str(home), "KAGGLE_CONFIG_DIR": str(home / ".kaggle"),
            "XDG_CONFIG_HOME": str(home / ".config")}


# Module fixtures that train a run: the tests using one share a worker (an xdist group), or each
# worker trained it again, and again each time its module came back in the order below.
SHARED_RUN_FIXTURES = ("improved_run", "tiny_run")


@pytest.hookimpl(tryfirst=True)  # Before xdist reads the groups.
def pytest_collection_modifyitems(items):
    """The longest tests first (the Ray group, then the rest marked slow), so that the workers
    end together instead of one finishing a long test while the other waits (stable: within
    each kind, files keep their order)."""
    for item in items:
        for name in SHARED_RUN_FIXTURES:
            if name in item.fixturenames:
                item.add_marker(pytest.mark.xdist_group(name))

    def kind(item):
        group = item.get_closest_marker("xdist_group")
        if group and group.args == ("ray",):
            return 0
        return 1 if item.get_closest_marker("slow") else 2

    items.sort(key=kind)


@pytest.fixture
def kaggle_client_forgotten():
    """For tests that run a Kaggle command in this process: the kaggle client reads its
    environment (where the API is) when first imported, so the modules it loaded here are
    forgotten afterwards, and a later test against the fake server imports it afresh."""
    import sys

    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.split(".")[0] in ("kaggle", "kagglesdk"):
            del sys.modules[name]
