"""The Python API (bloodbench/api.py): `import bloodbench` stays light, and each function gives what its
command gives (the leaderboard's rows are the CLI's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO
from records_factory import profile_record, train_record, write_store
from torch import nn

import bloodbench
from bloodbench import api
from bloodbench.cli import main
from bloodbench.errors import BloodbenchError

TINY_PROFILE = dict(rounds=1, iters=2, warmup=0, warmup_s=0.0, round_s=0.0, batch_sizes=[1])


def test_import_bloodbench_loads_neither_torch_nor_pandas():
    code = ("import json, sys, bloodbench; print(json.dumps([[m for m in ('torch', 'pandas', 'numpy') "
            "if m in sys.modules], bloodbench.__all__]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    heavy, names = json.loads(proc.stdout)
    assert heavy == []
    assert {"list_models", "get_model", "load_results", "leaderboard", "profile", "train"} <= set(names)


def test_the_api_names_stay_functions_beside_their_subpackages():
    from bloodbench.leaderboard import Leaderboard  # noqa: F401  the subpackages load as before
    from bloodbench.profile import profile_model  # noqa: F401
    from bloodbench.train import Trainer  # noqa: F401

    assert bloodbench.train is api.train and bloodbench.profile is api.profile
    assert bloodbench.leaderboard is api.leaderboard and callable(bloodbench.leaderboard)
    assert sys.modules["bloodbench.train"].Trainer is Trainer
    with pytest.raises(AttributeError):
        bloodbench.no_such_function  # noqa: B018


def test_list_models_and_get_model():
    from bloodbench.models import get_model, list_models

    assert bloodbench.list_models() == list_models() and "resnet18" in bloodbench.list_models()
    assert bloodbench.list_models("resnet") == list_models("resnet")
    net = bloodbench.get_model("baseline_cnn", num_classes=5).eval()
    with torch.no_grad():
        assert net(torch.zeros(2, 3, 28, 28)).shape == (2, 5)
    with pytest.raises(BloodbenchError):
        bloodbench.get_model("baseline_cnn", weights="no/such/weights.safetensors")
    published = bloodbench.get_model("baseline_cnn", weights="published").state_dict()
    assert all(torch.equal(v, get_model("baseline_cnn", weights="published").state_dict()[k])
               for k, v in published.items())
    with pytest.raises(BloodbenchError, match="unknown model 'no_such_net'"):
        bloodbench.get_model("no_such_net")


@pytest.fixture
def store(tmp_path):
    records = [train_record(m, s, acc) for m, acc in (("baseline_cnn", 0.9), ("resnet18", 0.95)) for s in (0, 1, 2)]
    records += [profile_record("baseline_cnn", macs=2_000_000, p50=0.5, throughput=9_000),
                profile_record("resnet18", macs=50_000_000, p50=2.0, throughput=1_000)]
    write_store(tmp_path / "results", records)
    return tmp_path / "results", records


def test_leaderboard_gives_the_rows_of_the_cli(store, capsys):
    root, _ = store
    frame = bloodbench.leaderboard(root)
    assert main(["leaderboard", "--results", str(root), "--format", "json"]) == 0
    cli_rows = json.loads(capsys.readouterr().out)
    assert frame.astype(object).where(frame.notna(), None).to_dict("records") == cli_rows
    assert {"baseline_cnn", "resnet18"} <= set(frame["model"])
    only = bloodbench.leaderboard(root, models=["resnet18"], sort="macs")
    assert set(only.loc[only["kind"] == "model", "model"]) == {"resnet18"}
    with pytest.raises(BloodbenchError):
        bloodbench.leaderboard(root / "missing")


def test_load_results_is_every_record(store):
    root, records = store
    frame = bloodbench.load_results(root)
    assert sorted(frame["run_id"]) == sorted(r["run_id"] for r in records)
    assert set(bloodbench.load_results(root, kind="profile")["kind"]) == {"profile"}
    assert "test.acc" in frame.columns  # nested fields flattened
    with pytest.raises(BloodbenchError, match="does not exist"):
        bloodbench.load_results(root / "missing")


def test_profile_a_registry_model_and_a_module(tmp_path, one_thread):
    record = bloodbench.profile("baseline_cnn", results=tmp_path, **TINY_PROFILE)
    assert record["kind"] == "profile" and record["model"] == "baseline_cnn" and record["macs"] > 0
    assert (tmp_path / "profile" / f"{record['run_id']}.json").is_file()
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 26 * 26, 8))
    figures = bloodbench.profile(net, **TINY_PROFILE)
    assert figures["macs"] == 3 * 4 * 9 * 26 * 26 + 4 * 26 * 26 * 8 and figures["params"] == sum(
        p.numel() for p in net.parameters())
    assert figures["latency"]["p50_ms"] > 0 and figures["latency"]["batch_size"] == 1
    with pytest.raises(BloodbenchError, match="registry name or an nn.Module"):
        bloodbench.profile(42)


def test_a_model_registered_in_a_script_is_a_plugin_of_that_module(monkeypatch):
    from bloodbench.models import _api

    monkeypatch.setattr(_api, "_REGISTRY", dict(_api._REGISTRY))

    @bloodbench.register_model(family="mine", description="registered in a session", origin="a test")
    def session_net(in_channels: int = 3, num_classes: int = 8) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))

    assert "session_net" in bloodbench.list_models()
    assert _api.get_model_info("session_net").plugin == __name__  # marked, as a plug-in module's would be
    assert bloodbench.get_model("session_net", num_classes=3)(torch.zeros(1, 3, 28, 28)).shape == (1, 3)
    assert not [n for n in _api.list_models() if n != "session_net" and _api.get_model_info(n).plugin]
