"""Issue 24 item 1: a profile taken under load is noisy, never replaces a quiet one, and `run` profiles
only on a machine quiet enough (else the profile stays pending, with the reason)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from records_factory import profile_record, write_store

from bloodbench.cli import main
from bloodbench.config import ProfileConfig
from bloodbench.profile import noise, record
from bloodbench.profile.record import profile_model
from bloodbench.remote.importer import settle
from bloodbench.store.results import ResultsStore
from bloodbench.store.verdicts import (
    is_noisy,
    load_problem,
    profile_choice,
    profile_noise,
)
from bloodbench.sweep import claims, jobs, run


def quiet_profile(p50: float = 1.185, spread: float = 1.02, **latency) -> dict:
    rec = profile_record("baseline_cnn", device="cpu", macs=1_000_000, p50=p50, throughput=3080.0)
    rec["latency"].update(rounds_spread=spread, noisy=False, load_avg_1m=0.3, cpu_count=4, noise_reasons=[],
                          **latency)
    return rec


def loaded_profile(p50: float = 408.0) -> dict:
    """The issue's case: baseline_cnn timed beside load 8 on 4 cores, rounds agreeing, ``noisy: false``."""
    rec = quiet_profile(p50, spread=1.01)
    rec["latency"].update(load_avg_1m=8.0, noise_reasons=None)
    return rec


def busy(monkeypatch, others: float, cores: int = 2) -> None:
    monkeypatch.setattr(noise, "machine_load", lambda: {"load_avg_1m": others, "cpu_count": cores})
    monkeypatch.setattr(noise, "runnable_now", lambda *a, **k: others)


def test_the_load_rule_counts_the_profilers_own_threads():
    # read after timing: up to `threads` of the load is the profiler itself
    assert load_problem(2.4, 2, threads=2) is None and load_problem(1.0, 2, threads=2) is None
    assert load_problem(8.0, 4, threads=4) == "machine is loaded (1-min load average 8.00 > 4 cores)"
    # before a profile: other work's load + the profiler's threads must fit the cores
    assert load_problem(0.3, 2, threads=2, includes_own=False) is None
    assert load_problem(1.0, 2, threads=2, includes_own=False).startswith("machine is busy (load 1.00 from other")
    assert load_problem(1.0, 4, threads=1, includes_own=False) is None
    assert load_problem(None, 2) is None and load_problem(float("nan"), 2) is None and load_problem("8", 2) is None


def test_a_profile_timed_on_a_loaded_machine_is_noisy_and_says_why(monkeypatch, capsys):
    monkeypatch.setattr(record, "machine_load", lambda: {"load_avg_1m": 9.0, "cpu_count": 2})
    cfg = ProfileConfig.build(device="cpu", batch_sizes=[1], warmup=1, iters=2, rounds=2, warmup_s=0.0,
                              threads=1, min_time_s=0.0, round_s=0.0)
    lat = profile_model("baseline_cnn", cfg, save=False)["latency"]
    assert lat["noisy"] is True
    assert lat["noise_reasons"][-1] == "machine is loaded (1-min load average 9.00 > 2 cores)"
    monkeypatch.setattr(record, "machine_load", lambda: {"load_avg_1m": 0.0, "cpu_count": 64})
    monkeypatch.setattr(record, "noise_reasons", lambda latency: [])  # rounds of a 2-call profile: not the point
    lat = profile_model("baseline_cnn", cfg, save=False)["latency"]
    assert lat["noisy"] is False and lat["noise_reasons"] == []


def test_an_older_record_under_load_is_judged_noisy_even_when_it_says_it_is_not():
    old = loaded_profile()
    assert old["latency"]["noisy"] is False
    assert profile_noise(old) == ["machine is loaded (1-min load average 8.00 > 4 cores)"]
    rounds = quiet_profile(spread=1.3)
    rounds["latency"].update(noisy=True, noise_reasons=None)
    assert profile_noise(rounds) == ["latency rounds disagree (max/min of the round p50s 1.30)"]
    assert not is_noisy(quiet_profile()) and not is_noisy({"latency": None}) and not is_noisy(None)


def test_a_noisy_profile_never_replaces_a_quiet_one_in_the_store(tmp_path, capsys):
    quiet = quiet_profile()
    store = write_store(tmp_path, [quiet])
    path = store.write(copy.deepcopy(loaded_profile()))
    assert "kept the quiet local record; the incoming one is noisy (machine is loaded" in capsys.readouterr().err
    assert ResultsStore(tmp_path).get("profile", quiet["run_id"])["latency"]["p50_ms"] == 1.185
    assert path == store.record_path("profile", quiet["run_id"])
    # the other way round: a quiet measurement replaces a noisy one, and a newer quiet one an older quiet one
    noisy_first = write_store(tmp_path / "b", [loaded_profile()])
    noisy_first.write(quiet_profile(p50=1.2))
    assert noisy_first.get("profile", quiet["run_id"])["latency"]["p50_ms"] == 1.2
    noisy_first.write(quiet_profile(p50=1.1, spread=1.05))
    assert noisy_first.get("profile", quiet["run_id"])["latency"]["p50_ms"] == 1.1


def test_results_import_follows_the_same_rule(tmp_path, capsys):
    quiet, loaded = quiet_profile(spread=1.05), loaded_profile()
    loaded["latency"]["rounds_spread"] = 1.001  # rounds agree better, but the machine was busy
    take, why = profile_choice(loaded, quiet, tie="spread")
    assert take is False and why.startswith("kept the quiet local record; the incoming one is noisy")
    assert settle("profile", quiet["run_id"], loaded, quiet, []).detail == why
    assert profile_choice(quiet, loaded, tie="spread")[0] is True
    assert profile_choice(quiet_profile(spread=1.01), quiet, tie="spread")[0] is True  # tie: lower spread
    assert profile_choice(quiet_profile(spread=1.09), quiet, tie="spread")[0] is None
    write_store(tmp_path / "local", [quiet])
    write_store(tmp_path / "incoming", [loaded])
    assert main(["results", "import", str(tmp_path / "incoming"), "--results", str(tmp_path / "local")]) == 0
    assert "kept the quiet local record" in capsys.readouterr().out
    assert ResultsStore(tmp_path / "local").get("profile", quiet["run_id"])["latency"]["p50_ms"] == 1.185


def _profile_job(root):
    return run.plan(["baseline_cnn"], [0], "bloodmnist", 28, str(root), ["cpu"], "cpu", {}, profile=True)[-1]


def test_run_defers_a_profile_on_a_busy_machine_and_it_stays_pending_with_the_reason(tmp_path, monkeypatch,
                                                                                     capsys):
    busy(monkeypatch, others=3.0)
    monkeypatch.setattr(record, "profile_model", lambda *a, **k: (_ for _ in ()).throw(AssertionError("profiled")))
    job = _profile_job(tmp_path)
    assert job.kind == "profile" and not job.done and job.note == ""
    entry = jobs.run_job(job, jobs.Context("bloodmnist", 28, str(tmp_path), quiet_wait_s=0.0))
    assert entry["status"].startswith("deferred: machine is busy (load 3.00 from other work")
    assert ResultsStore(tmp_path).records("profile") == [] and claims.list_claims(tmp_path) == {}
    again = _profile_job(tmp_path)
    assert not again.done and again.note.startswith("deferred: machine is busy")
    argv = ["run", "--models", "baseline_cnn", "--seeds", "0", "--profile-devices", "cpu", "--device", "cpu",
            "--results", str(tmp_path)]
    assert main([*argv, "--dry-run"]) == 0
    assert "| pending | deferred: machine is busy (load 3.00" in capsys.readouterr().out
    assert main([*argv, "--status"]) == 0
    status = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| profile"))
    assert "| pending |" in status and "deferred: machine is busy" in status

    # quiet again: the profile runs, its record is written, the deferral is cleared
    busy(monkeypatch, others=0.0, cores=64)
    monkeypatch.setattr(record, "profile_model",
                        lambda name, cfg, results: ResultsStore(results).write(quiet_profile()) and quiet_profile())
    entry = jobs.run_job(job, jobs.Context("bloodmnist", 28, str(tmp_path), quiet_wait_s=0.0))
    assert entry["status"] == "ok" and claims.list_failures(tmp_path) == {}


def test_a_noisy_record_stays_to_do_and_run_says_so(tmp_path, capsys):
    job = _profile_job(tmp_path)
    rec = loaded_profile()
    rec.update(run_id=job.run_id)
    write_store(tmp_path, [rec])
    again = _profile_job(tmp_path)
    assert not again.done
    assert again.note == ("redo on a quiet machine: the recorded profile is noisy "
                          "(machine is loaded (1-min load average 8.00 > 4 cores))")
    assert main(["run", "--models", "baseline_cnn", "--seeds", "0", "--profile-devices", "cpu", "--device", "cpu",
                 "--results", str(tmp_path), "--dry-run"]) == 0
    assert "| pending | redo on a quiet machine: the recorded profile is noisy" in capsys.readouterr().out


def test_the_quiet_check_waits_then_gives_the_reason(monkeypatch):
    loads = iter([5.0, 5.0, 0.0])
    monkeypatch.setattr(noise, "machine_load", lambda: {"load_avg_1m": 0.0, "cpu_count": 2})
    monkeypatch.setattr(noise, "runnable_now", lambda *a, **k: next(loads))
    monkeypatch.setattr(noise, "QUIET_POLL_S", 0.0)
    assert noise.wait_until_quiet(1, wait_s=60.0) is None  # quiet on the third look
    busy(monkeypatch, others=5.0)
    assert noise.wait_until_quiet(1, wait_s=0.0).startswith("machine is busy (load 5.00 from other work + 1")


def test_runnable_now_reads_the_threads_running_now():
    now = noise.runnable_now(samples=2, every_s=0.0)
    assert now >= 0 if Path("/proc/loadavg").is_file() else now is None


def test_profile_missing_measures_a_noisy_record_again(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(record, "machine_load", lambda: {"load_avg_1m": 0.0, "cpu_count": 64})
    monkeypatch.setattr(record, "noise_reasons", lambda latency: [])
    argv = ["profile", "baseline_cnn", "--device", "cpu", "--batch-sizes", "1", "--warmup", "1", "--iters", "2",
            "--rounds", "2", "--round-s", "0", "--warmup-s", "0", "--threads", "1", "--results", str(tmp_path),
            "--missing"]
    assert main(argv) == 0
    (path,) = (tmp_path / "profile").glob("*.json")
    rec = json.loads(path.read_text())
    rec["latency"].update(load_avg_1m=99.0, noise_reasons=["machine is loaded (1-min load average 99.00 > 64 cores)"],
                          noisy=True)
    path.write_text(json.dumps(rec))
    capsys.readouterr()
    assert main(argv) == 0  # the noisy record is not "done": measured again, and the quiet one replaces it
    assert "already profiled" not in capsys.readouterr().out
    assert json.loads(path.read_text())["latency"]["noisy"] is False
    assert main(argv) == 0
    assert "already profiled in this setting, skipped: baseline_cnn" in capsys.readouterr().out
