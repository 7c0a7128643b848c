"""Plug-in models (bloodbench/models/plugins.py): a package outside bloodbench, written here into tmp_path,
registers its models through the entry-point group `bloodbench.models`, `--plugin` or $BLOODBENCH_PLUGINS;
they go through models, train, run, profile, leaderboard, report and explain like built-in ones, marked
with their origin. A failing or clashing plug-in is refused in one line and the built-ins keep working."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from conftest import run_cli

from bloodbench.choices import PLUGIN_GROUP, PLUGINS_ENV
from bloodbench.commands import models as models_cmd
from bloodbench.models import _api, get_model_info, list_models, plugins

BUILDER = '''
from torch import nn
from bloodbench.models import register_model


@register_model(family="mine", description="{description}", origin="a test of plug-ins")
def {name}(in_channels: int = 3, num_classes: int = 8) -> nn.Module:
    return nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, padding=1, stride=2), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, num_classes))
'''
MODULES = ("bbplug_pkg", "bbplug_script", "bbplug_broken", "bbplug_clash")


def write_dist(root: Path, module: str, dist: str, entry: str) -> None:
    """An installed distribution as importlib.metadata sees it: a dist-info with entry_points.txt."""
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{PLUGIN_GROUP}]\n{entry} = {module}\n")


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """Plug-in modules on sys.path; the registry and the plug-in state restored afterwards."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "bbplug_pkg").mkdir()
    (root / "bbplug_pkg" / "__init__.py").write_text(BUILDER.format(name="pkg_net", description="from a package"))
    (root / "bbplug_script.py").write_text(BUILDER.format(name="script_net", description="from a script"))
    (root / "bbplug_broken.py").write_text("import torch\nraise RuntimeError('this plug-in is broken')\n")
    (root / "bbplug_clash.py").write_text(BUILDER.format(name="fine_net", description="fine")
                                          + BUILDER.format(name="resnet18", description="clash")[1:])
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(_api, "_REGISTRY", dict(_api._REGISTRY))
    monkeypatch.setattr(plugins, "_LOADED", {})
    monkeypatch.setattr(plugins, "_FAILED", {})
    monkeypatch.setattr(plugins, "_STATE", {"started": False})
    monkeypatch.setenv(PLUGINS_ENV, "")  # recorded, so what `--plugin` adds to it is undone afterwards
    monkeypatch.delenv(PLUGINS_ENV)
    # `bloodbench models` counts the built-in models once per cache: only the plug-ins' rows here, from a
    # cache of this test's own (another test's `models` may have filled the session's)
    monkeypatch.setenv("BLOODBENCH_CACHE_DIR", str(tmp_path / "cache"))
    real = models_cmd.compute_model_rows
    monkeypatch.setattr(models_cmd, "compute_model_rows",
                        lambda *a, plugins=False: real(*a, plugins=True) if plugins else [])
    yield root
    for name in MODULES:
        sys.modules.pop(name, None)




def test_an_entry_point_adds_its_models_marked_with_the_distribution(plugin_dir, capsys):
    write_dist(plugin_dir, "bbplug_pkg", "bbplug-pkg", "pkg")
    rc, out, err = run_cli(capsys, "models", "--format", "json")
    assert rc == 0 and err == ""
    row = next(r for r in json.loads(out) if r["name"] == "pkg_net")
    assert row["plugin"] == "bbplug-pkg" and row["family"] == "mine" and row["params"] > 0 and row["macs"] > 0
    info = get_model_info("pkg_net")
    assert info.plugin == "bbplug-pkg" and info.as_dict()["plugin"] == "bbplug-pkg"
    assert "plugin" not in get_model_info("resnet18").as_dict()  # built-ins' records stay as they were
    rc, out, _ = run_cli(capsys, "models", "--family", "mine")
    assert "| source" in out and "plug-in: bbplug-pkg" in out


def test_the_plugin_option_and_the_environment_load_a_module(plugin_dir, capsys, monkeypatch):
    rc, out, err = run_cli(capsys, "--plugin", "bbplug_script", "models", "--format", "json")
    assert rc == 0 and err == ""
    assert {r["name"]: r["plugin"] for r in json.loads(out)}["script_net"] == "bbplug_script"
    assert plugins.env_modules() == ["bbplug_script"]  # a sweep's worker processes load it too
    # a fresh process: $BLOODBENCH_PLUGINS alone, loaded on the registry's first use (the Python API's way)
    monkeypatch.setattr(_api, "_REGISTRY", {k: v for k, v in _api._REGISTRY.items() if v.plugin is None})
    monkeypatch.setattr(plugins, "_LOADED", {})
    monkeypatch.setattr(plugins, "_STATE", {"started": False})
    sys.modules.pop("bbplug_script")
    assert "script_net" in list_models() and get_model_info("script_net").plugin == "bbplug_script"


def test_a_failing_plugin_is_one_line_and_the_builtins_keep_working(plugin_dir, capsys, monkeypatch):
    before = list_models()
    rc, out, err = run_cli(capsys, "--plugin", "bbplug_broken", "models")
    assert rc == 2 and out == ""
    assert err == "error: plug-in bbplug_broken failed to load: RuntimeError: this plug-in is broken\n"
    assert list_models() == before
    # an installed plug-in that fails: one warning, and every command still runs on the built-ins
    write_dist(plugin_dir, "bbplug_broken", "bbplug-broken", "broken")
    monkeypatch.setattr(plugins, "_FAILED", {})
    rc, out, err = run_cli(capsys, "models", "--format", "json")
    assert rc == 0 and json.loads(out) == []  # the built-in rows are stubbed out here, see the fixture
    assert err.count("\n") == 1 and err.startswith("warning: plug-in broken (bbplug_broken) failed to load: "
                                                   "RuntimeError: this plug-in is broken")
    assert list_models() == before
    rc, _, err = run_cli(capsys, "train", "broken_net")  # the warning, then the unknown model's error names it
    warning, error = err.splitlines()
    assert rc == 2 and warning.startswith("warning: plug-in broken") and error.startswith("error: unknown model")
    assert "(plug-in broken (bbplug_broken) failed to load: RuntimeError: this plug-in is broken)" in error


def test_a_name_clash_with_a_builtin_is_refused(plugin_dir, capsys):
    builtin = get_model_info("resnet18")
    rc, out, err = run_cli(capsys, "--plugin", "bbplug_clash", "models")
    assert rc == 2 and out == ""
    assert err == ("error: plug-in bbplug_clash refused: it registers 'resnet18', the name of a built-in model; "
                   "register it under another name\n")
    assert get_model_info("resnet18") is builtin and "fine_net" not in list_models()  # nothing of it stays


@pytest.mark.slow
def test_a_plugin_model_goes_through_train_profile_leaderboard_report_explain_and_run(
        plugin_dir, capsys, tmp_path, real_data_dir, one_thread):
    results, opts = tmp_path / "results", ["--plugin", "bbplug_script"]
    tiny = ["--epochs", "2", "--limit-train", "4096", "--data-dir", real_data_dir]
    rc, out, err = run_cli(capsys, *opts, "train", "script_net", *tiny, "--quiet", "--json", "--results", results)
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["run_id"].startswith("script_net-bloodmnist-28-s0-") and 0 < summary["test_acc"] <= 1
    record = json.loads((results / "train" / summary["run_id"] / "record.json").read_text())
    assert record["model_info"]["plugin"] == "bbplug_script"
    rc, _, err = run_cli(capsys, *opts, "profile", "script_net", "--results", results, "--rounds", "1",
                         "--iters", "2", "--warmup", "0", "--warmup-s", "0", "--round-s", "0", "--batch-sizes", "1")
    assert rc == 0, err
    rc, out, err = run_cli(capsys, *opts, "run", "--models", "script_net", "--seeds", "1", *tiny[:4],
                           "--data-dir", real_data_dir, "--no-profile",
                           "--no-report", "--results", results)
    assert rc == 0, err
    rc, out, err = run_cli(capsys, *opts, "leaderboard", "--results", results, "--format", "json")
    assert rc == 0, err
    row = next(r for r in json.loads(out) if r["model"] == "script_net" and r["kind"] == "model")
    seed1 = json.loads(next((results / "train").glob("script_net-*-s1-*/record.json")).read_text())
    assert not summary.get("learned_nothing") and not seed1["learned_nothing"], (summary, seed1["test"]["acc"])
    assert row["seeds"] == 2 and row["acc_mean"] == pytest.approx((summary["test_acc"] + seed1["test"]["acc"]) / 2)
    assert row["macs"] > 0 and row["latency_p50_ms"] > 0
    rc, out, _ = run_cli(capsys, *opts, "leaderboard", "--results", results)
    assert "plug-in model, not part of bloodbench (from the package or module named): script_net (bbplug_script)" in out
    rc, _, err = run_cli(capsys, *opts, "report", "--results", results, "--out", tmp_path / "report")
    assert rc == 0, err
    card = (tmp_path / "report" / "models" / "script_net.md").read_text()
    assert re.search(r"\| plug-in +\| from bbplug_script, not part of bloodbench +\|", card), card
    rc, _, err = run_cli(capsys, *opts, "explain", "script_net", "--results", results, "--data-dir", real_data_dir,
                         "--out", tmp_path / "explain", "--n", "4")
    assert rc == 0, err
    assert (tmp_path / "explain" / "gradcam_correct.png").is_file()
    assert "A plug-in model, from bbplug_script, not part of bloodbench." in (tmp_path / "explain" / "errors.md").read_text()
