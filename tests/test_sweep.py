"""Sweeps through submitit: several jobs at once, claims between workers, retries, Slurm options, --status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from records_factory import train_record

from bloodbench.cli import main
from bloodbench.errors import BloodbenchError
from bloodbench.store.results import ResultsStore
from bloodbench.sweep import claims, executors, jobs, run

TINY = {"model_kwargs": {"widths": [8, 16]}, "limit_train": 128, "epochs": 1, "batch_size": 64}


def _plan(root, seeds=(0, 1)):
    return run.plan(["baseline_cnn"], list(seeds), "bloodmnist", 28, str(root), ["cpu"], "cpu", TINY, profile=False)


def _ctx(root, data_dir):
    return jobs.Context("bloodmnist", 28, str(root), str(data_dir), progress=True)


def test_local_executor_runs_two_jobs_at_once_into_one_results_dir(tmp_path, real_data_dir):
    planned = _plan(tmp_path)
    # a job that fails in its worker (the model rejects the option) is retried, reported, and the rest go on
    broken = run.plan(["baseline_cnn"], [2], "bloodmnist", 28, str(tmp_path), [], "cpu",
                      {**TINY, "model_kwargs": {"no_such_option": 1}}, profile=False)
    log = executors.run_local(broken + planned, _ctx(tmp_path, real_data_dir), n_jobs=2, retries=1, progress=False)
    assert log["jobs_at_once"] == 2 and len(log["jobs"]) == 3
    failed = [j for j in log["jobs"] if j.get("failed")]
    assert len(failed) == 1 and "unexpected keyword argument 'no_such_option'" in failed[0]["status"]
    assert "attempt 2 of 2 failed: TypeError" in open(failed[0]["log"]).read()
    assert claims.list_failures(tmp_path)[broken[0].run_id]["attempts"] == 2
    log["jobs"].remove(failed[0])
    assert all(j["status"].startswith("epoch_budget after 1 epochs") for j in log["jobs"])
    assert {j["pid"] for j in log["jobs"]} != {os.getpid()}  # ran in worker processes
    store = ResultsStore(tmp_path)
    assert sorted(store.load("train")["seed"]) == [0, 1]
    assert not list((tmp_path / "claims").glob("*.json"))  # released
    for j in log["jobs"]:  # a log per job, under logs/<run_id>/, with the trainer's epoch line
        assert f"baseline_cnn s{j['seed']} epoch 1/1" in open(j["log"]).read()
    subs = json.loads(next((tmp_path / "submissions").glob("*.json")).read_text())
    assert {s["run_id"] for s in subs["jobs"]} == {j.run_id for j in broken + planned}
    assert all(j.done for j in _plan(tmp_path))  # resume: nothing left to do


def _claim_in_a_process_then_kill(root, run_id) -> int:
    """A real worker that claims the run and is killed with SIGKILL before it can release it."""
    code = ("import sys, time; from bloodbench.sweep import claims; "
            f"claims.acquire({str(root)!r}, {run_id!r}, heartbeat_s=None); print('claimed', flush=True); "
            "time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.stdout.readline().strip() == "claimed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc.pid


def test_killed_workers_claim_is_taken_over_and_a_live_one_is_skipped(tmp_path, real_data_dir, capsys):
    seed0, seed1 = _plan(tmp_path)
    dead_pid = _claim_in_a_process_then_kill(tmp_path, seed0.run_id)
    assert claims.list_claims(tmp_path)[seed0.run_id]["stale"] == f"pid {dead_pid} on {claims.host()} is gone"
    live = claims.acquire(tmp_path, seed1.run_id, heartbeat_s=None)  # this process: alive
    assert isinstance(live, claims.Claim)
    log = run.execute([seed0, seed1], "bloodmnist", 28, str(tmp_path), str(real_data_dir), progress=False)
    first, second = log["jobs"]
    assert first["took_over"].startswith(f"took over the stale claim on {seed0.run_id}: pid {dead_pid}")
    assert "took over the stale claim" in capsys.readouterr().out
    assert first["status"].startswith("epoch_budget")
    assert second["status"] == f"running elsewhere ({claims.host()} pid {os.getpid()})"
    store = ResultsStore(tmp_path)
    assert store.get("train", seed0.run_id) is not None and store.get("train", seed1.run_id) is None
    # a second claimer of a held run gets the owner back, not a claim
    assert claims.acquire(tmp_path, seed1.run_id, heartbeat_s=None)["pid"] == os.getpid()
    live.release()
    assert claims.list_claims(tmp_path) == {}


def test_failing_job_is_retried_then_reported_and_the_sweep_goes_on(tmp_path, real_data_dir, monkeypatch):
    seed0, seed1 = _plan(tmp_path)
    real_run_job, calls = jobs.run_job, []

    def flaky(job, ctx):
        calls.append(job.seed)
        if job.seed == 0:
            raise RuntimeError("out of luck")
        return real_run_job(job, ctx)

    monkeypatch.setattr(jobs, "run_job", flaky)
    log = run.execute([seed0, seed1], "bloodmnist", 28, str(tmp_path), str(real_data_dir), progress=False,
                      retries=2)
    assert calls == [0, 0, 0, 1]
    assert log["jobs"][0]["failed"] and "out of luck" in log["jobs"][0]["status"]
    assert log["jobs"][1]["status"].startswith("epoch_budget")
    failure = claims.list_failures(tmp_path)[seed0.run_id]
    assert failure["attempts"] == 3 and failure["error"] == "RuntimeError: out of luck"


def test_status_lists_finished_running_failed_and_pending(tmp_path, capsys):
    argv = ["run", "--models", "baseline_cnn", "--seeds", "0,1,2,3", "--epochs", "1", "--limit-train", "500",
            "--no-profile", "--device", "cpu", "--results", str(tmp_path)]
    planned = run.plan(["baseline_cnn"], [0, 1, 2, 3], "bloodmnist", 28, str(tmp_path), [], "cpu",
                       {"epochs": 1, "limit_train": 500}, profile=False)
    ResultsStore(tmp_path).write({**train_record("baseline_cnn", 0, 0.9), "run_id": planned[0].run_id})
    held = claims.acquire(tmp_path, planned[1].run_id, heartbeat_s=None)
    claims.write_failure(tmp_path, planned[2].run_id, {"error": "RuntimeError: boom", "log": "/x/12_0_log.out"})
    assert main(argv + ["--status"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if "| train" in line}
    assert "finished" in rows["train baseline_cnn seed 0"]
    assert "running" in rows["train baseline_cnn seed 1"] and f"pid {os.getpid()}" in rows["train baseline_cnn seed 1"]
    assert "failed" in rows["train baseline_cnn seed 2"] and "/x/12_0_log.out" in rows["train baseline_cnn seed 2"]
    assert "pending" in rows["train baseline_cnn seed 3"]
    assert "1 failed, 1 finished, 1 pending, 1 running" in out
    held.release()


def test_slurm_without_sbatch_is_one_error_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch, no srun
    rc = main(["run", "--models", "baseline_cnn", "--seeds", "0", "--no-profile", "--results", str(tmp_path),
               "--executor", "slurm"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert err.startswith("error: --executor slurm needs Slurm's sbatch and srun on PATH")
    assert not (tmp_path / "submissions").exists()


def test_slurm_dry_run_prints_the_array_and_its_parameters(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    config = tmp_path / "slurm.toml"
    config.write_text('[slurm]\npartition = "gpu"\naccount = "lab"\nmem = "16G"\n'
                      'additional_parameters = { constraint = "a100" }\n')
    rc = main(["run", "--models", "baseline_cnn,resnet18", "--seeds", "0,1", "--no-profile", "--results",
               str(tmp_path), "--executor", "slurm", "--dry-run", "--slurm-config", str(config),
               "--array-parallelism", "3", "--time", "30", "--sbatch", "qos=high"])
    out = capsys.readouterr().out
    assert rc == 0 and "would submit 4 tasks as one Slurm job array" in out
    for flag in ("--array=0-3%3", "--partition=gpu", "--account=lab", "--mem=16G", "--time=30", "--gpus-per-task=1",
                 "--constraint=a100", "--qos=high", "--signal=USR2@90"):
        assert f"#SBATCH {flag}" in out
    assert "| cuda " in out  # --device auto with GPUs per task: the tasks train on cuda


def test_every_executor_returns_a_run_log_and_slurm_logs_what_went_out(tmp_path, capsys, monkeypatch):
    class FakeJob:
        def __init__(self, i):
            self.job_id = f"77_{i}"
            self.paths = type("P", (), {"stdout": tmp_path / f"77_{i}_log.out"})()

    class FakeExecutor:  # submitit's AutoExecutor as far as the Slurm executor uses it
        def __init__(self, **kw):
            self.n = 0

        def update_parameters(self, **kw):
            pass

        def batch(self):
            import contextlib
            return contextlib.nullcontext()

        def submit(self, *a):
            self.n += 1
            return FakeJob(self.n - 1)

    monkeypatch.setattr(executors.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(executors.submitit, "AutoExecutor", FakeExecutor)
    planned = _plan(tmp_path)
    for ex in (run.InProcess(), executors.Local(), executors.Slurm({"time": 5})):
        assert callable(ex.run)  # one interface: run(jobs, ctx) -> RunLog
    log = executors.Slurm({"time": 5}).run(planned, jobs.Context("bloodmnist", 28, str(tmp_path)))
    assert isinstance(log, run.RunLog) and log["executor"] == "slurm"
    assert [(e["job"], e["job_id"]) for e in log["jobs"]] == [("train baseline_cnn seed 0", "77_0"),
                                                              ("train baseline_cnn seed 1", "77_1")]
    assert json.loads(log.path.read_text())["jobs"] == log["jobs"]
    assert capsys.readouterr().out == ""  # the command prints the table, not the executor


def test_submitits_private_sbatch_maker_is_still_there():
    """executors.sbatch_script calls a private submitit function (no public API gives the sbatch text):
    a submitit release that drops or changes it must fail here, by name, not in a user's --dry-run."""
    import importlib
    import inspect

    module, name = executors.SBATCH_MAKER
    maker = getattr(importlib.import_module(module), name, None)
    assert maker is not None, (f"submitit {executors.submitit.__version__} no longer has {module}.{name}: "
                               f"find its replacement, or narrow the submitit range in pyproject.toml")
    used = {"command", "folder", "map_count", *executors.SLURM_KEYS, "job_name"}
    missing = used - set(inspect.signature(maker).parameters)
    assert not missing, f"submitit {executors.submitit.__version__}'s {name} no longer takes {sorted(missing)}"


def test_slurm_config_with_unknown_key_is_one_error_line(tmp_path, capsys):
    config = tmp_path / "slurm.json"
    config.write_text(json.dumps({"partition": "gpu", "gpus": 2}))
    rc = main(["run", "--models", "baseline_cnn", "--seeds", "0", "--results", str(tmp_path), "--executor", "slurm",
               "--dry-run", "--slurm-config", str(config)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: --slurm-config") and "unknown key(s) gpus" in err


def _foreign_claim(root, run_id, age_s=0.0, slurm_task=None):
    path = claims.claim_path(root, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run_id": run_id, "host": "other-node", "pid": 4242, "token": "t",
                                "slurm_task": slurm_task}))
    os.utime(path, (path.stat().st_mtime - age_s,) * 2)


def test_claims_from_other_hosts_expire_by_heartbeat_and_a_requeued_slurm_task_takes_its_own(tmp_path,
                                                                                             monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    _foreign_claim(tmp_path, "fresh")
    assert claims.acquire(tmp_path, "fresh", heartbeat_s=None)["host"] == "other-node"  # alive: skipped
    _foreign_claim(tmp_path, "silent", age_s=claims.STALE_AFTER_S + 60)
    taken = claims.acquire(tmp_path, "silent", heartbeat_s=None)
    assert isinstance(taken, claims.Claim) and "no heartbeat from other-node pid 4242" in taken.took_over
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    _foreign_claim(tmp_path, "requeued", slurm_task="77_3")
    again = claims.acquire(tmp_path, "requeued", heartbeat_s=None)
    assert isinstance(again, claims.Claim) and "Slurm task 77_3 was requeued" in again.took_over
    assert json.loads(again.path.read_text())["slurm_task"] == "77_3"


def test_heartbeat_refreshes_the_claim(tmp_path):
    held = claims.acquire(tmp_path, "beating", heartbeat_s=0.05)
    os.utime(held.path, (0, 0))
    deadline = time.time() + 5
    while os.stat(held.path).st_mtime == 0 and time.time() < deadline:
        time.sleep(0.05)
    assert os.stat(held.path).st_mtime > 0
    held.release()
    assert not held.path.exists()


def test_local_slots_spread_jobs_over_gpus_and_divide_cpu_threads():
    assert executors.local_slots([0, 1], None, 16) == ([0, 1, 0, 1, 0, 1, 0, 1], 2)  # default 4 per GPU
    assert executors.local_slots([], None, 8) == ([None], 8)  # CPU default: 1, all cores
    assert executors.local_slots([], 3, 8) == ([None, None, None], 2)
    assert executors.local_slots([], 4, 2) == ([None] * 4, 1)


def _sweep_failing_with(exc: Exception, retries: int, tmp_path, capsys, monkeypatch) -> tuple[int, str]:
    """``run`` of one training job whose every attempt raises ``exc``: exit code and the last stderr line."""
    def broken(job, ctx):
        raise exc

    monkeypatch.setattr(jobs, "run_job", broken)
    rc = main(["run", "--models", "baseline_cnn", "--seeds", "0", "--no-profile", "--no-report", "--device", "cpu",
               "--results", str(tmp_path), "--retries", str(retries)])
    return rc, capsys.readouterr().err.strip().splitlines()[-1]


def test_run_exits_non_zero_with_one_line_naming_the_failed_jobs(tmp_path, capsys, monkeypatch):
    rc, err = _sweep_failing_with(RuntimeError("no luck"), 1, tmp_path, capsys, monkeypatch)
    assert rc == 1
    assert err.startswith("error: 1 of 1 jobs failed: train baseline_cnn seed 0 (after 2 attempts); details under")
    assert len(claims.list_failures(tmp_path)) == 1


def test_a_job_a_retry_cannot_fix_is_said_not_retried_with_its_error(tmp_path, capsys, monkeypatch):
    rc, err = _sweep_failing_with(BloodbenchError("the recipe asks for something impossible"), 2, tmp_path, capsys,
                                  monkeypatch)
    assert rc == 1 and "after 3 attempts" not in err
    assert ("train baseline_cnn seed 0 (not retried, another attempt would meet it again: BloodbenchError: "
            "the recipe asks for something impossible)") in err


def test_local_dry_run_says_how_many_run_at_once(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(executors, "visible_gpus", lambda: [])
    monkeypatch.setattr(executors, "cpu_cores", lambda: 8)
    assert main(["run", "--models", "baseline_cnn", "--seeds", "0,1,2", "--no-profile", "--device", "cpu",
                 "--results", str(tmp_path), "--jobs", "3", "--dry-run"]) == 0
    assert "would train 3 at once on CPU, 2 torch thread(s) each" in capsys.readouterr().out
    assert not (tmp_path / "submissions").exists()


def test_a_retry_resumes_from_the_last_checkpoint(tmp_path, real_data_dir, monkeypatch):
    from bloodbench.train import Trainer

    job = run.plan(["baseline_cnn"], [0], "bloodmnist", 28, str(tmp_path), [], "cpu", {**TINY, "epochs": 2, "limit_train": 384},
                   profile=False)[0]
    real_epoch, epochs = Trainer.train_epoch, []

    def crash_once_in_epoch_2(self, st, epoch):
        epochs.append(epoch)
        if epochs == [0, 1]:
            raise RuntimeError("node lost")
        return real_epoch(self, st, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", crash_once_in_epoch_2)
    log = run.execute([job], "bloodmnist", 28, str(tmp_path), str(real_data_dir), progress=False, retries=1)
    assert epochs == [0, 1, 1]  # the retry started at epoch 2, from last.pt, not from scratch
    assert log["jobs"][0]["status"].startswith("epoch_budget after 2 epochs")
    assert claims.list_failures(tmp_path) == {}
