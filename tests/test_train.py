"""Training loop: resume equivalence, skip-if-finished, divergence, bad options (tiny runs on real data)."""

from __future__ import annotations

import json
import math
import os
import stat
import sys

import pytest
import torch
from conftest import write_medmnist_npz

from bloodbench.cli import main
from bloodbench.store.results import ResultsStore
from bloodbench.train import TrainConfig, Trainer, TrainingDiverged

TINY = dict(model_kwargs={"widths": [8, 16]}, limit_train=256, batch_size=64, epochs=3, patience=3,
            schedule="cosine", warmup_epochs=0, device="cpu")


def _strip_times(record: dict) -> dict:
    rec = {k: v for k, v in record.items() if k not in ("env", "created_at", "finished_at", "written_at",
                                                         "train_seconds", "data", "resources")}
    timings = ("epoch_seconds", "cpu_seconds", "load_avg")  # where and when it ran, not what it learned
    rec["history"] = [{k: v for k, v in h.items() if k not in timings} for h in record["history"]]
    return rec


class Interrupt(KeyboardInterrupt):
    pass


@pytest.mark.slow  # trains on the real BloodMNIST
def test_resume_after_interruption_gives_the_same_record(tmp_path, blood, capsys):
    cfg = TrainConfig.build("baseline_cnn", **TINY)
    straight = Trainer(cfg, results=tmp_path / "a", data=blood, progress=False, n_boot=50).fit()

    def stop_at_2(epoch, row):
        if epoch == 2:
            raise Interrupt

    interrupted = Trainer(cfg, results=tmp_path / "b", data=blood, progress=False, n_boot=50)
    with pytest.raises(Interrupt):
        interrupted.fit(on_epoch_end=stop_at_2)
    assert ResultsStore(tmp_path / "b").get("train", cfg.run_id) is None  # not finished yet
    assert (interrupted.run_dir / "last.pt").is_file()
    capsys.readouterr()
    resumed = Trainer(cfg, results=tmp_path / "b", data=blood, progress=False, n_boot=50).fit()
    assert f"{cfg.run_id}: resuming from epoch 3/3 (2 done" in capsys.readouterr().err

    assert len(resumed["history"]) == 3
    assert _strip_times(resumed) == _strip_times(straight)
    assert resumed["status"] == "finished" and resumed["stop_reason"] in ("epoch_budget", "converged")
    # CPU time and load survive the interruption: one figure per epoch, whichever process ran it
    res = resumed["resources"]
    assert res["epochs_measured"] == 3 and res["cpu_seconds"] > 0 and res["predict_seconds"] > 0
    assert res["load_avg_max"] >= res["load_avg_mean"] >= 0


@pytest.mark.slow  # trains on the real BloodMNIST
def test_finished_run_is_not_retrained_unless_forced(tmp_path, blood):
    cfg = TrainConfig.build("baseline_cnn", **{**TINY, "epochs": 1})
    first = Trainer(cfg, results=tmp_path, data=blood, progress=False, n_boot=50).fit()
    calls = []
    again = Trainer(cfg, results=tmp_path, data=blood, progress=False, n_boot=50).fit(on_epoch_end=lambda e, r: calls.append(e))
    assert calls == [] and again["finished_at"] == first["finished_at"]
    Trainer(cfg, results=tmp_path, data=blood, progress=False, n_boot=50).fit(force=True, on_epoch_end=lambda e, r: calls.append(e))
    assert calls == [1]


def test_cli_says_already_finished_and_force_retrains_with_tensorboard_scalars(tmp_path, capsys, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from bloodbench.train import finish

    real_ci = finish.bootstrap_ci
    monkeypatch.setattr(finish, "bootstrap_ci", lambda y, s, n_boot, seed: real_ci(y, s, n_boot=20, seed=seed))
    write_medmnist_npz(tmp_path / "bloodmnist.npz", 28)  # tiny made-up data: the CLI path is under test
    argv = ["train", "baseline_cnn", "--epochs", "2", "--batch-size", "16", "--schedule", "cosine", "--device", "cpu",
            "--data-dir", str(tmp_path), "--no-verify", "--results", str(tmp_path / "r"), "--quiet", "--json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    store = ResultsStore(tmp_path / "r")
    record_1 = store.get("train", first["run_id"])

    assert main(argv) == 0  # finished: says so, retrains nothing
    out, err = capsys.readouterr()
    assert err.startswith(f"already finished: {first['run_id']}; nothing retrained, --force retrains from scratch\n")
    assert json.loads(out) == first and store.get("train", first["run_id"]) == record_1

    # without --json: a short summary (percent, as the leaderboard prints), the record's path, the next command
    assert main(argv[:-1]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith(f"baseline_cnn seed 0 (bloodmnist 28 px): test accuracy {100 * first['test_acc']:.2f} %")
    assert lines[2] == f"record: {store.run_dir(first['run_id']) / 'record.json'}" and "{" not in out
    assert lines[3] == "next: bloodbench evaluate baseline_cnn --seed 0, or bloodbench leaderboard"
    # a run that learned nothing (random made-up images: likely) is said so on screen, not only in its record
    said = f"warning: {first['run_id']} learned nothing (val accuracy ≤ 1.5 × the majority-class rate)"
    assert (said in err) is bool(record_1["learned_nothing"])
    rec = store.get("train", first["run_id"])
    store.write({**rec, "learned_nothing": not rec["learned_nothing"]})
    assert main(argv[:-1]) == 0
    assert (said in capsys.readouterr().err) is not bool(record_1["learned_nothing"])
    store.write(rec)

    (store.run_dir(first["run_id"]) / "best.pt").unlink()  # what a fresh clone of the repo looks like
    assert main(argv) == 0
    assert "(best.pt missing)" in capsys.readouterr().err

    assert main(argv + ["--force", "--tensorboard", str(tmp_path / "tb")]) == 0
    out, err = capsys.readouterr()
    assert "--force: retraining" in err and json.loads(out)["run_id"] == first["run_id"]
    run_dir = store.run_dir(first["run_id"])
    assert (run_dir / "best.pt").is_file() and not (run_dir / "replaced").exists()
    assert store.get("train", first["run_id"])["finished_at"] >= record_1["finished_at"]

    events = EventAccumulator(str(tmp_path / "tb" / first["run_id"]))
    events.Reload()
    history = store.get("train", first["run_id"])["history"]
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "val/auc", "opt/lr"} <= set(events.Tags()["scalars"])
    for tag, key in (("train/loss", "train_loss"), ("val/acc", "val_acc"), ("opt/lr", "lr")):
        assert [(e.step, round(e.value, 5)) for e in events.Scalars(tag)] == \
            [(h["epoch"], round(h[key], 5)) for h in history]


@pytest.mark.slow  # trains on the real BloodMNIST
def test_record_carries_provenance_metrics_and_predictions(tmp_path, blood):
    cfg = TrainConfig.build("baseline_cnn", **{**TINY, "epochs": 1})
    old_umask = os.umask(0o027)
    try:
        rec = Trainer(cfg, results=tmp_path, data=blood, progress=False, n_boot=50).fit()
    finally:
        os.umask(old_umask)
    # one epoch cannot show a plateau: not converged (bloodbench.store.verdicts)
    assert rec["converged"] is False and isinstance(rec["learned_nothing"], bool)
    for name in ("record.json", "best.pt", "last.pt", "test_predictions.npz"):  # the umask, not mkstemp's 0600
        assert stat.S_IMODE((ResultsStore(tmp_path).run_dir(rec["run_id"]) / name).stat().st_mode) == 0o640, name
    for key in ("model", "model_info", "config", "config_hash", "dataset", "size", "seed", "env", "history",
                "stop_reason", "epochs_run", "train_seconds", "val", "test"):
        assert key in rec
    for key in ("device_name", "torch", "cuda", "git_commit"):
        assert key in rec["env"]
    assert rec["test"]["n"] == 3421 and len(rec["test"]["confusion_matrix"]) == 8
    lo, hi = rec["test"]["ci95"]["acc"]
    assert lo <= rec["test"]["acc"] <= hi
    run_dir = ResultsStore(tmp_path).run_dir(rec["run_id"])
    import numpy as np
    with np.load(run_dir / "test_predictions.npz") as npz:
        assert npz["y_score"].shape == (3421, 8)
        assert np.allclose(npz["y_score"].sum(1), 1, atol=1e-4)
    # val and test, plain and 8-view TTA, each named in artifacts under a key that says its split
    from bloodbench.store.predictions import load_predictions
    n = {"val": rec["val"]["n"], "test": 3421}
    for key in ("val_predictions", "test_predictions", "val_predictions_tta", "test_predictions_tta"):
        y, s = load_predictions(run_dir / rec["artifacts"][key])
        split = key.split("_")[0]
        assert s.dtype == np.float32 and s.shape == (n[split], 8) and np.allclose(s.sum(1), 1, atol=1e-4)
    y, s = load_predictions(run_dir / rec["artifacts"]["val_predictions"])
    assert abs(float(np.mean(s.argmax(1) == y)) - rec["val"]["acc"]) < 1e-12
    y, s = load_predictions(run_dir / rec["artifacts"]["test_predictions_tta"])
    assert abs(float(np.mean(s.argmax(1) == y)) - rec["test_tta"]["acc"]) < 1e-12
    assert not np.array_equal(s, load_predictions(run_dir / "test_predictions.npz")[1])
    df = ResultsStore(tmp_path).load("train")
    assert df.loc[0, "test.acc"] == rec["test"]["acc"]


@pytest.mark.slow  # trains on the real BloodMNIST
def test_training_lowers_the_loss(tmp_path, blood):
    cfg = TrainConfig.build("baseline_cnn", **{**TINY, "limit_train": 512})
    rec = Trainer(cfg, results=tmp_path, data=blood, progress=False, n_boot=50).fit()
    losses = [h["train_loss"] for h in rec["history"]]
    assert losses[-1] < losses[0]
    assert rec["test"]["acc"] > 0.3  # far above the 1/8 chance level after ~24 steps


@pytest.mark.slow  # trains on the real BloodMNIST
def test_nan_loss_marks_the_run_diverged(tmp_path, blood):
    cfg = TrainConfig.build("baseline_cnn", **{**TINY, "epochs": 2, "lr": 1e12, "optimizer": "sgd",
                                               "grad_clip": 0, "schedule": "none"})
    with pytest.raises(TrainingDiverged, match="diverged"):
        Trainer(cfg, results=tmp_path, data=blood, progress=False, n_boot=50).fit()
    rec = ResultsStore(tmp_path).get("train", cfg.run_id)
    assert rec["status"] == "diverged" and rec["stop_reason"] == "diverged"


@pytest.mark.slow  # trains on the real BloodMNIST
def test_weights_blowing_up_under_a_clipped_loss_mark_the_run_diverged(tmp_path, blood):
    """Gradient clipping keeps the loss finite while the weights go NaN: caught at validation."""
    cfg = TrainConfig.build("baseline_cnn", **{**TINY, "epochs": 2, "lr": 1e12, "optimizer": "sgd",
                                               "schedule": "none"})
    assert cfg.grad_clip
    with pytest.raises(TrainingDiverged, match="diverged"):
        Trainer(cfg, results=tmp_path, data=blood, progress=False, n_boot=50).fit()
    rec = ResultsStore(tmp_path).get("train", cfg.run_id)
    assert rec["status"] == "diverged" and rec["stop_reason"] == "diverged"


def test_cpu_and_gpu_runs_share_one_recipe(monkeypatch):
    # the recipe's precision is the same on every device, channels_last everywhere: a CPU seed and a
    # GPU seed are seeds of one recipe
    cpu = TrainConfig.build("encoder_cnn", device="cpu")
    assert (cpu.precision, cpu.channels_last) == ("fp32", True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert TrainConfig.build("encoder_cnn", device="cuda").run_id == cpu.run_id
    # resnet18 keeps the bf16 recipe it converged with, on both devices; baseline_cnn left it for fp32
    assert TrainConfig.build("baseline_cnn", device="cpu").precision == "fp32"
    bf16_cpu = TrainConfig.build("resnet18", device="cpu")
    bf16_gpu = TrainConfig.build("resnet18", device="cuda")
    assert bf16_cpu.precision == bf16_gpu.precision == "bf16" and bf16_cpu.run_id == bf16_gpu.run_id
    # a GPU without bf16 runs a bf16 recipe in fp16 (a recipe of its own); an fp32 recipe stays fp32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    old_gpu = TrainConfig.build("resnet18", device="cuda")
    assert old_gpu.precision == "fp16" and old_gpu.run_id != bf16_cpu.run_id
    assert TrainConfig.build("encoder_cnn", device="cuda").precision == "fp32"
    # an explicit option beats the recipe
    explicit = TrainConfig.build("resnet18", device="cpu", precision="fp32", channels_last=False)
    assert (explicit.precision, explicit.channels_last) == ("fp32", False) and explicit.run_id != bf16_cpu.run_id
    # VGG trains NCHW (channels_last slows its step on the project's Xeon): a speed setting, same recipe and run id
    vgg = TrainConfig.build("vgg11", device="cpu")
    vgg_cl = TrainConfig.build("vgg11", device="cpu", channels_last=True)
    assert vgg.channels_last is False and vgg.run_id == vgg_cl.run_id


def test_early_stopping_reports_converged(tmp_path, blood):
    # lr 0 cannot improve after epoch 1, so patience 1 stops at epoch 2 with "converged".
    cfg = TrainConfig.build("baseline_cnn", **{**TINY, "epochs": 5, "patience": 1, "lr": 1e-12,
                                               "schedule": "none"})
    rec = Trainer(cfg, results=tmp_path, data=blood, progress=False, n_boot=50).fit()
    assert rec["stop_reason"] == "converged" and rec["epochs_run"] == 2 and rec["best_epoch"] == 1
    assert rec["converged"] is True  # early stopping is the first convergence rule (bloodbench.store.verdicts)


@pytest.mark.parametrize("argv, message", [
    (["train", "resnet81"], "unknown model 'resnet81'; did you mean resnet18"),
    (["train", "baseline_cnn", "--size", "32"], "invalid choice: 32"),
    (["train", "baseline_cnn", "--batch-size", "0"], "argument --batch-size: expected an integer >= 1, got 0"),
    (["train", "baseline_cnn", "--precision", "fp16", "--device", "cpu"], "fp16 autocast needs CUDA"),
    (["evaluate", "baseline_cnn"], "no finished training run"),
])
def test_bad_options_are_one_line_errors(argv, message, capsys, real_data_dir, tmp_path):
    with pytest.raises(SystemExit) if "argument" in message or "invalid" in message else _no_raise() as exc:
        code = main(argv + ["--data-dir", str(real_data_dir), "--results", str(tmp_path)]
                    if argv[0] == "train" else argv + ["--results", str(tmp_path)])
    code = exc.value.code if isinstance(exc, pytest.ExceptionInfo) else code
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and "\n" not in err and message in err


class _no_raise:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def test_training_flags_hold_for_fit_only(monkeypatch, tmp_path):
    """On CUDA, fit turns cudnn autotune and TF32 on; the process gets its own flags back."""
    from bloodbench.runtime.backend import current_flags

    trainer = Trainer(TrainConfig.build("baseline_cnn", **TINY), results=tmp_path, progress=False)
    before = current_flags()
    with trainer.backend():  # cpu: nothing to set
        assert current_flags() == before
    trainer.device = torch.device("cuda")  # the flags are plain process state: settable without a GPU
    try:
        with pytest.raises(Interrupt), trainer.backend():
            assert torch.backends.cudnn.benchmark and torch.backends.cuda.matmul.allow_tf32
            raise Interrupt
    finally:
        after = current_flags()
    assert after == before


def test_an_epoch_reads_loss_and_accuracy_from_the_device_once(monkeypatch, tmp_path, blood):
    """No per-step host sync from the loop: 32 steps, two reads (mean loss and accuracy) at the end.

    (CPU AdamW's single-tensor path reads its step counter; on CUDA the fused optimizer does not.)"""
    cfg = TrainConfig.build("baseline_cnn", **{**TINY, "batch_size": 8})
    trainer = Trainer(cfg, results=tmp_path, data=blood, progress=False)
    st = trainer.setup()
    assert len(st.batches) == 32
    reads = []

    def spy(name):
        real = getattr(torch.Tensor, name)

        def read(self, *args, **kwargs):
            if "bloodbench" in sys._getframe(1).f_code.co_filename:
                reads.append(name)
            return real(self, *args, **kwargs)
        return read

    for name in ("item", "__float__", "cpu", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, spy(name))
    loss, acc, ok = trainer.train_epoch(st, 0)
    assert ok and 0 < loss < 10 and 0 <= acc <= 1
    assert sorted(reads) == ["__float__", "__float__"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.slow  # trains on the real BloodMNIST
def test_cuda_train_one_epoch_smoke(tmp_path, blood):
    from bloodbench.runtime.backend import current_flags

    before = current_flags()
    cfg = TrainConfig.build("baseline_cnn", **{**TINY, "epochs": 1, "device": "cuda"})
    trainer = Trainer(cfg, results=tmp_path, data=blood, progress=False, n_boot=50)
    rec = trainer.fit()
    assert rec["status"] == "finished" and rec["history"][0]["train_loss"] > 0 and rec["test"]["acc"] > 0
    assert current_flags() == before  # training's cudnn/TF32 flags do not outlive fit
    assert trainer.setup().opt.defaults.get("fused") is True


@pytest.mark.parametrize("steps", [1, 2, 4, 5])
def test_onecycle_schedule_runs_on_few_steps(steps):
    """A smoke run of a handful of steps (4 used to divide by zero inside OneCycleLR)."""
    from bloodbench.config import TrainConfig
    from bloodbench.train.optim import build_scheduler

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    cfg = TrainConfig.build("baseline_cnn", epochs=1, schedule="onecycle", lr=0.1)
    sched = build_scheduler(cfg, opt, steps)
    lrs = []
    for _ in range(steps):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert len(lrs) == steps and all(math.isfinite(lr) and lr >= 0 for lr in lrs)
