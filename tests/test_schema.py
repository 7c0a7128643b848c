"""One schema (bloodbench/store/schema.py) for the writers, the validator and docs/ARCHITECTURE.md."""

from __future__ import annotations

import re

import pytest
from conftest import REPO

from bloodbench.store import schema
from bloodbench.store.results import REPO_RESULTS, ResultsStore, read_json, record_problem

DOC = (REPO / "docs" / "ARCHITECTURE.md").read_text()
NAMED = set(re.findall(r"`([a-z0-9_]+)`", DOC))


@pytest.mark.parametrize("names", [schema.TRAIN, schema.PROFILE, schema.HISTORY_KEYS, schema.RESOURCES_KEYS,
                                   schema.METRICS_KEYS, schema.LATENCY_KEYS, schema.LOAD_KEYS],
                         ids=["train", "profile", "history", "resources", "metrics", "latency", "load"])
def test_the_architecture_doc_names_every_field(names):
    assert not [n for n in names if n not in NAMED], "document these in docs/ARCHITECTURE.md, 'Results store layout'"


def test_every_committed_record_declares_only_schema_fields_and_validates():
    store = ResultsStore(REPO_RESULTS)
    for kind, pattern in (("train", "train/*/record.json"), ("profile", "profile/*.json")):
        for path in sorted(REPO_RESULTS.glob(pattern)):
            rec = read_json(path)
            assert record_problem(rec, kind) is None, path
            assert set(rec) <= set(schema.FIELDS[kind]), (path, set(rec) - set(schema.FIELDS[kind]))
    assert store.records("train") and store.records("profile")


def test_a_writer_cannot_store_an_undeclared_field_or_a_wrong_type():
    rec = {"kind": "profile", "run_id": "m-bloodmnist-28-cpu-fp32-0", "model": "m", "dataset": "bloodmnist", "size": 28}
    assert schema.check_written(dict(rec), "profile") == rec
    with pytest.raises(ValueError, match="undeclared field.*latency_ms"):
        schema.check_written({**rec, "latency_ms": 1.0}, "profile")
    with pytest.raises(ValueError, match="macs is str, not a number"):
        schema.check_written({**rec, "macs": "1M"}, "profile")


def test_is_finished_is_the_one_answer():
    assert not schema.is_finished(None)
    assert schema.is_finished({"kind": "profile"})
    assert schema.is_finished({"kind": "train", "status": "finished"})
    diverged = {"kind": "train", "status": "diverged"}
    assert not schema.is_finished(diverged) and schema.is_finished(diverged, or_diverged=True)
