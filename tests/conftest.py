"""Shared fixtures: the real MedMNIST files in ../shared/data and small made-up ones."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
REAL_DATA_DIR = Path(os.environ.get("BLOODBENCH_DATA_DIR") or REPO.parent / "shared" / "data")


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    if not (REAL_DATA_DIR / "bloodmnist.npz").is_file():
        pytest.fail(f"real BloodMNIST not found in {REAL_DATA_DIR}: set BLOODBENCH_DATA_DIR to ../shared/data")
    return REAL_DATA_DIR


@pytest.fixture(scope="session")
def blood(real_data_dir):
    """The real BloodMNIST 28 px, loaded once for the whole session."""
    from bloodbench import data

    return data.load_dataset("bloodmnist", 28, real_data_dir)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep md5 verdict caches and results out of the user's home and the repo."""
    monkeypatch.setenv("BLOODBENCH_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("BLOODBENCH_RESULTS", str(tmp_path_factory.getbasetemp() / "default-results"))


def _registry() -> dict:
    from bloodbench.models import _api

    return _api._REGISTRY


#: The registry as the package builds it, before any test module registers a made-up model.
BUILT_IN_MODELS = dict(_registry())


def _reset_registry() -> None:
    _registry().clear()
    _registry().update(BUILT_IN_MODELS)


def pytest_collectstart(collector) -> None:
    """Each module is collected with the package's own registry (a module's ``list_models()`` at import
    never sees the made-up models another module's parametrize registered)."""
    _reset_registry()


@pytest.fixture(autouse=True, scope="module")
def _registry_restored():
    """Every test module starts and ends with the package's own registry: models registered at runtime
    (records_factory.plugin_model, also by a module's shared fixtures) never leak into another module."""
    _reset_registry()
    yield
    _reset_registry()


def write_medmnist_npz(path: Path, size: int, channels: int = 3, n_classes: int = 8,
                       counts=(40, 16, 24), seed: int = 0) -> Path:
    """A small file in MedMNIST's layout: uint8 N x H x W (x 3), labels uint8 N x 1."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in zip(("train", "val", "test"), counts):
        shape = (n, size, size, channels) if channels == 3 else (n, size, size)
        arrays[f"{split}_images"] = rng.integers(0, 256, size=shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % n_classes).astype(np.uint8).reshape(n, 1)
    np.savez_compressed(path, **arrays)
    return path


@pytest.fixture
def small_npz_dir(tmp_path) -> Path:
    """bloodmnist_{64,128,224}.npz, made here (not the official files: load with verify=False)."""
    for size in (64, 128, 224):
        write_medmnist_npz(tmp_path / f"bloodmnist_{size}.npz", size)
    return tmp_path


@pytest.fixture(scope="module")
def one_thread():
    """Two shared cores: one intra-op thread for a test module avoids OpenMP spin contention
    (batches of 2-8 gain nothing from intra-op threads); restored afterwards for other modules."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """``bloodbench ARGV`` in this process: exit code, stdout, stderr (a bad option's SystemExit included)."""
    from bloodbench.cli import main

    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    out = capsys.readouterr()
    return rc, out.out, out.err
