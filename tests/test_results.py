"""Results store: atomic writes, concurrent writers, DataFrame loader."""

from __future__ import annotations

import json
import multiprocessing as mp
import os

import pytest

from bloodbench.store.fsutil import atomic_write_text
from bloodbench.store.results import ResultsStore, config_hash, resolve_results_dir


def _record(i: int, kind: str = "train") -> dict:
    # a registered model: the readers refuse records of models the registry lacks
    return {"kind": kind, "run_id": f"m{i}-bloodmnist-28-s{i}", "model": "baseline_cnn", "dataset": "bloodmnist",
            "size": 28, "seed": i, "status": "finished", "test": {"acc": i / 100}, "env": {"device": "cpu"}}


def test_write_and_load_roundtrip(tmp_path):
    store = ResultsStore(tmp_path)
    for i in range(3):
        store.write(_record(i))
    store.write(_record(9, "profile"))
    df = store.load("train")
    assert sorted(df["seed"]) == [0, 1, 2]
    assert sorted(df["test.acc"]) == [0.0, 0.01, 0.02]
    assert store.get("profile", "m9-bloodmnist-28-s9")["run_id"] == "m9-bloodmnist-28-s9"
    assert len(store.load()) == 4
    assert store.get("train", "missing") is None


def test_interrupted_write_keeps_the_old_record(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    path = store.write(_record(1))
    before = path.read_text()

    def crash(fd):
        raise KeyboardInterrupt  # the process is killed between write and rename

    monkeypatch.setattr(os, "fsync", crash)
    rec = _record(1)
    rec["test"]["acc"] = 0.99
    with pytest.raises(KeyboardInterrupt):
        store.write(rec)
    assert path.read_text() == before
    assert [p.name for p in path.parent.iterdir()] == ["record.json"]  # no temp file left behind


def _writer(root: str, start: int) -> None:
    store = ResultsStore(root)
    for i in range(start, start + 25):
        store.write(_record(i))


def test_concurrent_writers_lose_nothing(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), k * 25)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    assert len(ResultsStore(tmp_path).load("train")) == 50


def test_unreadable_record_is_warned_about_and_skipped(tmp_path, capsys):
    store = ResultsStore(tmp_path)
    path = store.write(_record(1))
    store.write(_record(2))
    path.write_text("{not json")
    assert list(store.load()["seed"]) == [2]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"warning: skipped train record {path}: it is unreadable")


def test_results_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("BLOODBENCH_RESULTS", str(tmp_path / "env"))
    assert resolve_results_dir(tmp_path / "opt") == tmp_path / "opt"
    assert resolve_results_dir() == tmp_path / "env"
    monkeypatch.delenv("BLOODBENCH_RESULTS")
    assert str(resolve_results_dir()) == os.path.join("reports", "results")


def test_config_hash_is_order_independent():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_atomic_write_text_creates_folders(tmp_path):
    target = tmp_path / "x" / "y.json"
    atomic_write_text(target, json.dumps({"ok": True}))
    assert json.loads(target.read_text()) == {"ok": True}
