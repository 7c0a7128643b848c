"""Issue 24 item 7 (seeds, devices, signals): a seed numpy cannot take, a GPU that is not there and Ctrl-C
on a parallel sweep each end in one line, before any job starts and without a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import run_cli


@pytest.mark.parametrize("argv", [
    ["train", "baseline_cnn", "--seed", "-1"],
    ["train", "baseline_cnn", "--seed", str(2**32)],
    ["run", "--seeds=-1", "--dry-run"],
    ["run", "--seeds", "0,1,4294967296", "--dry-run"],
    ["evaluate", "baseline_cnn", "--seed", "-3"],
    ["explain", "baseline_cnn", "--seed", "-3"],
    ["oneshot", "--seeds", "0,-1", "--rehearse"],
])
def test_a_seed_outside_0_to_2_pow_32_is_refused_at_parse_time(tmp_path, capsys, monkeypatch, argv):
    from bloodbench.train import trainer

    monkeypatch.setattr(trainer.Trainer, "setup", lambda self: pytest.fail("work started"))
    rc, out, err = run_cli(capsys, *argv, "--results", tmp_path)
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("error: argument --seed") and "expected a seed in 0..4294967295 (2**32-1), got " in err
    assert not (tmp_path / "train").exists()


def test_the_largest_seed_is_taken(tmp_path, capsys):
    rc, out, _ = run_cli(capsys, "run", "--models", "baseline_cnn", "--seeds", f"0,{2**32 - 1}", "--no-profile",
                         "--device", "cpu", "--results", tmp_path, "--dry-run")
    assert rc == 0 and f"| {2**32 - 1} " in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
@pytest.mark.parametrize("argv", [
    ["run", "--models", "baseline_cnn", "--seeds", "0", "--device", "cuda", "--no-report"],
    ["run", "--models", "baseline_cnn", "--seeds", "0", "--device", "cpu", "--profile-devices", "cpu,cuda"],
    ["run", "--models", "baseline_cnn", "--seeds", "0", "--device", "cuda", "--jobs", "2", "--dry-run"],
    ["train", "baseline_cnn", "--device", "cuda", "--epochs", "1"],
    ["profile", "baseline_cnn", "--device", "cuda"],
])
def test_cuda_without_a_gpu_is_one_line_before_any_job(tmp_path, capsys, monkeypatch, argv):
    from bloodbench.sweep import jobs

    monkeypatch.setattr(jobs, "run_job", lambda *a: pytest.fail("a job started"))
    rc, out, err = run_cli(capsys, *argv, "--results", tmp_path)
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: --device cuda asked for, but there is no GPU here (CUDA is not available)")
    assert "attempts" not in err and "pending" not in out
    assert not (tmp_path / "claims").exists() and not (tmp_path / "failures").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_a_slurm_sweep_for_gpus_is_still_planned_from_a_login_node_without_one(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    rc, out, err = run_cli(capsys, "run", "--models", "baseline_cnn", "--seeds", "0", "--device", "cuda",
                           "--executor", "slurm", "--dry-run", "--results", tmp_path)
    assert rc == 0 and "#SBATCH --gpus-per-task=1" in out
    assert run_cli(capsys, "run", "--models", "baseline_cnn", "--seeds", "0", "--device", "cuda", "--status",
                   "--results", tmp_path)[0] == 0


def _sweep(tmp_path, real_data_dir, seeds: str, *extra: str, **popen) -> subprocess.Popen:
    """A 50-epoch baseline_cnn sweep on 512 images, in its own session, its output piped."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "BLOODBENCH_DATA_DIR": str(real_data_dir)}
    return subprocess.Popen([sys.executable, "-m", "bloodbench", "run", "--models", "baseline_cnn", "--seeds", seeds,
                             "--epochs", "50", "--limit-train", "512", "--no-profile", "--no-report", "--device", "cpu",
                             *extra, "--results", str(tmp_path)], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def test_ctrl_c_on_a_parallel_sweep_is_one_line_without_worker_tracebacks(tmp_path, real_data_dir):
    """SIGINT to the whole process group (what Ctrl-C in a terminal does) once both workers train."""
    proc = _sweep(tmp_path, real_data_dir, "0,1", "--jobs", "2",
                  # Ctrl-C's own setting, as in a terminal: a suite started in the background (`cmd &` without job
                  # control) hands its children SIGINT ignored, and the sweep would not stop
                  preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 240
        while len(list((tmp_path / "claims").glob("*.json"))) < 2 and proc.poll() is None:
            assert time.monotonic() < deadline, "the workers never claimed their runs"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    assert err.strip() == "error: interrupted; finished work is saved, run the same command again to resume", err
    logs = list(tmp_path.glob("logs/*/controller.log"))
    assert len(logs) == 2 and all("KeyboardInterrupt" in p.read_text() for p in logs)  # said there, not here


def test_sigterm_on_a_sweep_in_this_process_is_one_line_with_the_claim_released(tmp_path, real_data_dir):
    """`kill`, `timeout` and a scheduler's pre-emption send SIGTERM: the in-process sweep (`--jobs 1`) stops as
    on Ctrl-C, its claim released and last.pt kept, where Python's default would die silently, claim left."""
    proc = _sweep(tmp_path, real_data_dir, "0")
    try:
        deadline = time.monotonic() + 240
        while not list(tmp_path.glob("train/*/last.pt")) and proc.poll() is None:
            assert time.monotonic() < deadline, "no epoch ended"
            time.sleep(0.2)
        assert proc.poll() is None and len(list((tmp_path / "claims").glob("*.json"))) == 1
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1] == "error: stopped by SIGTERM; finished work is saved, run the same command again to resume"
    assert "Traceback" not in err
    assert not list((tmp_path / "claims").glob("*.json")) and list(tmp_path.glob("train/*/last.pt"))
