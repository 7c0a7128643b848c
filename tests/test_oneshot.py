"""The GPU one-shot, rehearsed end to end on CPU (so it cannot rot before the next GPU), and its pack."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import torch

from bloodbench.cli import main
from bloodbench.errors import BloodbenchError
from bloodbench.remote import oneshot
from bloodbench.store.results import ResultsStore

STEPS = ["profile-fp32", "profile-bf16", "profile-graphs", "profile-agreement", "cuda-tests", "epoch-benchmark",
         "train"]


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    out = tmp_path_factory.mktemp("oneshot")
    summary = oneshot.run_oneshot(out, 240.0, out / "scratch-results", rehearse=True, echo=lambda line: None)
    return out, summary


@pytest.mark.slow
def test_rehearsal_runs_every_step_and_packs_the_gpu_layout(rehearsal):
    out, summary = rehearsal
    status = {s["name"]: s["status"] for s in summary["steps"]}
    assert list(status) == STEPS
    assert status.pop("profile-graphs") == "skipped"  # CUDA graphs need a GPU
    assert set(status.values()) == {"ok"}, summary["steps"]
    # 2 models x fp32 and bf16, each with its round p50s; the second process agrees on the same run ids
    assert sorted((p["model"], p["precision"]) for p in summary["profiles"]) == [
        ("baseline_cnn", "bf16"), ("baseline_cnn", "fp32"), ("mobilenet_v3_small", "bf16"),
        ("mobilenet_v3_small", "fp32")]
    assert all(p["rounds_spread"] >= 1.0 for p in summary["profiles"])
    assert {a["model"] for a in summary["agreement"]} == {"baseline_cnn", "mobilenet_v3_small"}
    assert all(a["ratio"] >= 1.0 for a in summary["agreement"])
    assert [e["model"] for e in summary["epoch"]] == ["baseline_cnn"] and summary["epoch"][0]["ratio"] > 0
    assert len(summary["trained"]) == 2 and summary["cut_off"] == []
    # the pack: summary + results + logs, within the device tool's limits
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    assert files == ["logs.tgz", "results-1.tgz", "summary.json"]
    assert all((out / f).stat().st_size <= oneshot.MAX_FILE_BYTES for f in files)
    with tarfile.open(out / "results-1.tgz") as tar:
        names = tar.getnames()
    assert sum(n.startswith("profile/") for n in names) == 4
    assert sum(n.endswith("/record.json") for n in names) == 2
    assert not any(n.endswith(".pt") or n.startswith(("logs/", "claims/")) for n in names)
    with tarfile.open(out / "logs.tgz") as tar:
        logs = tar.getnames()
    assert {f"oneshot/{s}.log" for s in STEPS if s != "profile-graphs"} <= set(logs)
    assert json.loads((out / "summary.json").read_text())["mode"] == "rehearsal"


@pytest.mark.slow
def test_what_the_rehearsal_packed_imports_into_a_fresh_store(rehearsal, tmp_path, capsys):
    out, summary = rehearsal
    assert main(["results", "import", str(out / "results-1.tgz"), "--results", str(tmp_path)]) == 0
    store = ResultsStore(tmp_path)
    assert sorted(r["run_id"] for r in store.iter_records("train")) == summary["trained"]
    assert len(list(store.iter_records("profile"))) == 4
    assert main(["results", "import", str(out / "results-1.tgz"), "--results", str(tmp_path)]) == 0
    assert "duplicate" in capsys.readouterr().out


def test_checkpoints_travel_as_whole_runs_or_not_at_all(tmp_path):
    train = tmp_path / "train"
    for name, last, best in (("small", 10, 10), ("big", 40, 30), ("done", 5, 5)):
        d = train / name
        d.mkdir(parents=True)
        (d / "last.pt").write_bytes(b"x" * last)
        (d / "best.pt").write_bytes(b"x" * best)
    (train / "done" / "record.json").write_text("{}")  # finished: nothing to resume
    pairs, too_big = oneshot._checkpoint_pairs(tmp_path, limit=50)
    assert [[p.name for p in fs] for fs in pairs] == [["last.pt", "best.pt"]]
    assert pairs[0][0].parent.name == "small" and too_big[0].startswith("big ")


def test_tar_groups_respect_the_size_limit(tmp_path):
    files = []
    for i, n in enumerate((30, 30, 50, 10)):
        p = tmp_path / f"f{i}"
        p.write_bytes(b"x" * n)
        files.append((p, p.name))
    groups = oneshot._tar_groups(files, limit=60)
    assert [[arc for _, arc in g] for g in groups] == [["f0", "f1"], ["f2", "f3"]]


def test_unknown_step_to_skip_is_a_clear_error(tmp_path):
    with pytest.raises(BloodbenchError, match="no such step"):
        oneshot.build_plan(tmp_path, tmp_path, rehearse=True, skip=["profile-fp64"])
    plan = oneshot.build_plan(tmp_path, tmp_path, rehearse=False, skip=["cuda-tests"])
    assert [s.name for s in plan.steps] == STEPS
    assert next(s for s in plan.steps if s.name == "cuda-tests").skip
    assert all("--missing" in s.argv for s in plan.steps if s.name.startswith("profile-") and
               s.name != "profile-agreement")


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine the one-shot would run")
def test_without_a_gpu_the_oneshot_says_rehearse(tmp_path, capsys):
    assert main(["oneshot", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--rehearse" in err and not list(tmp_path.iterdir())
