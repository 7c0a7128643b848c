"""What a newcomer reads: messages that name the real fix, options checked at parse time,
a CLI that starts without torch, and the cached registry cost figures (issue 15)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest
from records_factory import train_record, write_store

from bloodbench.cli import build_parser, main
from bloodbench.commands.train import config_from_args
from bloodbench.formatting import device_label, fmt_count
from bloodbench.store import cache
from bloodbench.train import TrainConfig
from bloodbench.train.rundir import set_aside_old_run
from bloodbench.train.trainer import divergence_hint

HEAVY = ("torch", "fvcore", "pandas", "matplotlib", "sklearn")


def test_building_the_cli_parser_imports_no_heavy_module():
    """`bloodbench --help` must not pay for torch: the parser is built from bloodbench.choices."""
    code = ("import sys, bloodbench.cli as c; c.build_parser(); "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


# -- registry cost cache -------------------------------------------------------------------
def test_cost_cache_hit_returns_the_fresh_figures_and_a_new_key_recomputes(monkeypatch):
    import bloodbench.models
    from bloodbench.commands import models as models_cmd

    monkeypatch.setattr(bloodbench.models, "list_models", lambda family=None: ["baseline_cnn", "encoder_cnn"])
    fresh = models_cmd.compute_model_rows()
    assert [r["name"] for r in fresh] == ["baseline_cnn", "encoder_cnn"] and all(r["macs"] > 0 for r in fresh)

    calls = []
    real = models_cmd.compute_model_rows
    monkeypatch.setattr(models_cmd, "compute_model_rows", lambda *a: calls.append(a) or real(*a))
    assert models_cmd.model_rows() == fresh and len(calls) == 1  # miss: computed and stored
    assert models_cmd.model_rows() == fresh and len(calls) == 1  # hit: same figures, nothing traced
    assert json.loads((cache.cache_dir() / cache.COSTS_FILE).read_text())["rows"] == fresh
    assert models_cmd.model_rows(family="no such family") == [] and len(calls) == 1
    rows_64 = models_cmd.model_rows(size=64)  # other settings, other key: recomputed
    assert len(calls) == 2 and rows_64[0]["macs"] > fresh[0]["macs"]


def test_models_table_shows_each_recipe(capsys):
    # the recipe is the registry's, read each time: not frozen into the cost cache
    assert main(["models", "--family", "vgg"]) == 0
    out = capsys.readouterr().out
    assert "recipe (beyond the defaults)" in out
    vgg = next(line for line in out.splitlines() if line.startswith("| vgg11 "))
    assert "lr=0.001" in vgg and "channels_last=False" in vgg


def test_cost_cache_key_follows_model_source_package_versions_and_settings(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text("def build(): return 1\n")
    key = cache.registry_key(28, 3, 8, models_dir=tmp_path)
    assert cache.registry_key(28, 3, 8, models_dir=tmp_path) == key
    assert cache.registry_key(64, 3, 8, models_dir=tmp_path) != key
    monkeypatch.setattr(cache, "_version", lambda package: "9.9" if package == "torch" else "1.0")
    assert cache.registry_key(28, 3, 8, models_dir=tmp_path) != key  # another torch version
    monkeypatch.undo()
    (tmp_path / "a.py").write_text("def build(): return 2\n")
    assert cache.registry_key(28, 3, 8, models_dir=tmp_path) != key  # a builder changed
    key = cache.registry_key(28, 3, 8, models_dir=tmp_path)
    counting = tmp_path / "counting" / "counting.py"
    counting.parent.mkdir()
    counting.write_text("MACS = 1\n")
    assert cache.registry_key(28, 3, 8, models_dir=tmp_path, extra_sources=(counting,)) != key
    assert cache.registry_key() != cache.registry_key(models_dir=tmp_path)


def test_cost_cache_recomputes_a_corrupt_file_and_survives_an_unwritable_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("BLOODBENCH_CACHE_DIR", str(tmp_path / "c"))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / cache.COSTS_FILE).write_text("{not json")
    one, two = ([{"name": "m", "family": "f", "description": "d", "origin": "o", "params": p, "macs": 2, "flops": 4}]
                for p in (1, 2))
    assert cache.cached("k", lambda: one) == one
    assert cache.cached("k", lambda: pytest.fail("should be a hit")) == one
    monkeypatch.setenv("BLOODBENCH_CACHE_DIR", "/dev/null/cache")
    assert cache.cached("k", lambda: two) == two


# -- parse-time option checks --------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["train", "baseline_cnn", "--weight-decay", "-1"], "argument --weight-decay: expected a number >= 0, got -1"),
    (["train", "baseline_cnn", "--lr", "0"], "argument --lr: expected a number > 0, got 0"),
    (["train", "baseline_cnn", "--lr", "nan"], "argument --lr: expected a number > 0, got nan"),
    (["train", "baseline_cnn", "--epochs", "0"], "argument --epochs: expected an integer >= 1, got 0"),
    (["train", "baseline_cnn", "--batch-size", "0"], "argument --batch-size: expected an integer >= 1, got 0"),
    (["train", "baseline_cnn", "--patience", "-1"], "argument --patience: expected an integer >= 1, got -1"),
    (["train", "baseline_cnn", "--label-smoothing", "1"], "argument --label-smoothing: expected a number in [0, 1)"),
    (["train", "baseline_cnn", "--grad-clip", "-2"], "argument --grad-clip: expected a number >= 0, got -2"),
    (["train", "baseline_cnn", "--epochs", "two"], "argument --epochs: expected an integer, got 'two'"),
    (["run", "--epochs", "0"], "argument --epochs: expected an integer >= 1, got 0"),
])
def test_bad_numbers_are_refused_at_parse_time(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err


def test_weight_decay_is_checked_for_api_callers_too():
    with pytest.raises(Exception, match="--weight-decay must be >= 0"):
        TrainConfig.build("baseline_cnn", weight_decay=-1.0)


# -- messages ------------------------------------------------------------------------------
def test_evaluate_a_misspelt_model_says_unknown_model_with_a_suggestion(capsys, tmp_path):
    assert main(["evaluate", "resnet19", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown model 'resnet19'; did you mean resnet18")
    assert "(`bloodbench models` lists them)" in err and "train" not in err


def test_divergence_hint_suggests_fp32_only_to_reduced_precision_runs():
    fp32 = divergence_hint(TrainConfig.build("baseline_cnn", device="cpu", lr=100.0, precision="fp32"))
    assert "precision" not in fp32 and "--lr (was 100)" in fp32
    unclipped = divergence_hint(TrainConfig.build("baseline_cnn", device="cpu", grad_clip=0.0, precision="fp32"))
    assert "--grad-clip" in unclipped and "precision" not in unclipped
    bf16 = divergence_hint(TrainConfig.build("baseline_cnn", device="cpu", precision="bf16"))
    assert "--precision fp32 (was bf16)" in bf16


def test_explain_without_checkpoint_gives_a_command_that_rebuilds_the_same_run(tmp_path, capsys):
    cfg = TrainConfig.build("baseline_cnn", seed=2, device="cpu", lr=0.01, epochs=3, augment=False,
                            label_smoothing=0.1, class_weighting="loss", grad_clip=0.0)
    rec = train_record("baseline_cnn", 2, 0.9)
    rec.update(config=cfg.as_dict(), config_hash=cfg.hash(), run_id=cfg.run_id)
    write_store(tmp_path / "r", [rec])
    assert main(["explain", "baseline_cnn", "--results", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no checkpoint" in err and "--no-gradcam" in err
    command = err.split("`")[1]
    argv = shlex.split(command)
    assert argv[:2] == ["bloodbench", "train"] and "--force" in argv
    rebuilt = config_from_args(build_parser().parse_args(argv[1:]))
    assert rebuilt.hash() == rec["config_hash"] and rebuilt.run_id == rec["run_id"]
    # and the default recipe needs no option at all
    plain = TrainConfig.build("encoder_cnn", device="cpu")
    rec2 = train_record("encoder_cnn", 0, 0.9)
    rec2.update(config=plain.as_dict(), config_hash=plain.hash(), run_id=plain.run_id)
    write_store(tmp_path / "r2", [rec2])
    main(["explain", "encoder_cnn", "--results", str(tmp_path / "r2")])
    assert "`bloodbench train encoder_cnn --seed 0 --force --results " in capsys.readouterr().err


def test_evaluate_without_predictions_gives_the_same_retrain_command(tmp_path, capsys):
    cfg = TrainConfig.build("encoder_cnn", seed=1, device="cpu", weight_decay=0.0, optimizer="sgd")
    rec = train_record("encoder_cnn", 1, 0.9)
    rec.update(config=cfg.as_dict(), config_hash=cfg.hash(), run_id=cfg.run_id)
    write_store(tmp_path / "r", [rec])
    assert main(["evaluate", "encoder_cnn", "--results", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "test_predictions.npz is missing" in err
    argv = shlex.split(err.split("`")[1])
    assert "--force" in argv and config_from_args(build_parser().parse_args(argv[1:])).run_id == cfg.run_id


def test_force_sets_the_old_run_aside_until_the_new_record_exists(tmp_path):
    run = tmp_path / "train" / "m-bloodmnist-28-s0-abc"
    run.mkdir(parents=True)
    for name, text in (("record.json", "{}"), ("best.pt", "old best"), ("last.pt", "old last"),
                       ("test_predictions.npz", "old preds")):
        (run / name).write_text(text)
    kept = set_aside_old_run(run)
    assert kept == run / "replaced" and sorted(p.name for p in run.iterdir()) == ["replaced"]
    assert (kept / "best.pt").read_text() == "old best" and not (kept / "last.pt").exists()
    (run / "best.pt").write_text("partial new best")  # a forced retrain killed half-way, then forced again
    assert set_aside_old_run(run) == kept
    assert not (run / "best.pt").exists() and (kept / "best.pt").read_text() == "old best"


def test_run_dry_run_shows_the_eta_from_past_jobs(tmp_path, capsys):
    write_store(tmp_path / "r", [train_record("baseline_cnn", 7, 0.9, train_seconds=100.0)])
    assert main(["run", "--dry-run", "--models", "baseline_cnn", "--seeds", "0,1", "--no-profile",
                 "--device", "cpu", "--results", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out  # no epoch measured on cpu: 2 x the past 100 s job
    assert "2 of 2 jobs pending: about 3 min of this machine" in out and "about 2 min (past job times)" in out


def test_counts_and_threads_read_as_words():
    assert fmt_count(30.0) == "30" and fmt_count(29.666) == "29.7" and fmt_count(float("nan")) == ""
    from bloodbench.runtime.envinfo import device_name

    assert device_name("cpu").endswith(("(1 thread)", "threads)")) and "(1 threads)" not in device_name("cpu")
    assert device_label("AMD EPYC (1 threads)") == "AMD EPYC (1 thread)"
    assert device_label("AMD EPYC (11 threads)") == "AMD EPYC (11 threads)" and device_label(None) is None
