"""``bloodbench run``: plans every model x seed, skips what is recorded, logs where time went."""

from __future__ import annotations

import json

from bloodbench.cli import main
from bloodbench.store.results import ResultsStore
from bloodbench.sweep import run

TINY = {"model_kwargs": {"widths": [8, 16]}, "limit_train": 128, "epochs": 1, "batch_size": 64}


def quiet_machine(monkeypatch) -> None:
    """A machine with nothing else on it: the sweep's profile is neither put off nor judged noisy."""
    from bloodbench.profile import noise, record

    monkeypatch.setattr(noise, "runnable_now", lambda *a, **k: 0.0)
    monkeypatch.setattr(noise, "machine_load", lambda: {"load_avg_1m": 0.0, "cpu_count": 64})
    monkeypatch.setattr(record, "machine_load", lambda: {"load_avg_1m": 0.0, "cpu_count": 64})
    monkeypatch.setattr(record, "noise_reasons", lambda latency: [])


def test_run_trains_profiles_then_skips(tmp_path, real_data_dir, monkeypatch):
    quiet_machine(monkeypatch)
    jobs = run.plan(["baseline_cnn"], [0, 1], "bloodmnist", 28, str(tmp_path), ["cpu"], "cpu", TINY)
    assert [(j.kind, j.seed, j.done) for j in jobs] == [("train", 0, False), ("train", 1, False),
                                                        ("profile", None, False)]
    log = run.execute(jobs, "bloodmnist", 28, str(tmp_path), str(real_data_dir), progress=False)
    assert [j["kind"] for j in log["jobs"]] == ["train", "train", "profile"]
    assert all(j["seconds"] > 0 for j in log["jobs"])
    store = ResultsStore(tmp_path)
    assert sorted(store.load("train")["seed"]) == [0, 1]
    assert len(store.load("profile")) == 1
    logs = list((tmp_path / "runs").glob("run-*.json"))
    assert len(logs) == 1 and json.loads(logs[0].read_text())["wall_seconds"] > 0

    again = run.plan(["baseline_cnn"], [0, 1], "bloodmnist", 28, str(tmp_path), ["cpu"], "cpu", TINY)
    assert all(j.done for j in again)


def test_eta_estimates_come_from_past_runs(tmp_path):
    (tmp_path / "runs").mkdir()
    log = {"jobs": [{"kind": "train", "model": "baseline_cnn", "seconds": 100.0},
                    {"kind": "train", "model": "baseline_cnn", "seconds": 300.0},
                    {"kind": "profile", "model": "baseline_cnn", "seconds": 20.0}]}
    (tmp_path / "runs" / "run-a.json").write_text(json.dumps(log))
    (tmp_path / "runs" / "run-b.json").write_text("{half written")  # another queue mid-write: ignored
    past = run.past_job_seconds(str(tmp_path))
    assert past == {("train", "baseline_cnn"): 200.0, ("profile", "baseline_cnn"): 20.0}
    jobs = [run.Job("train", "baseline_cnn", 0), run.Job("train", "resnet18", 0), run.Job("profile", "vgg11")]
    assert run.estimate_seconds(jobs, past) == [200.0, 200.0, 20.0]  # unknown model: its kind's mean
    assert run.estimate_seconds(jobs, {}) == [60.0, 60.0, 60.0]


def test_run_dry_run_lists_pending_jobs(tmp_path, capsys):
    assert main(["run", "--models", "baseline_cnn,resnet18", "--seeds", "0,1", "--results", str(tmp_path),
                 "--profile-devices", "cpu", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "6 of 6 jobs pending" in out and "resnet18" in out


def test_plan_takes_a_quiet_benchmark_of_the_jobs_setting_on_this_machine(tmp_path, monkeypatch):
    # a sweep's records are timed on a shared machine: the committed quiet benchmark (reports/benchmarks beside
    # reports/results) plans an epoch where it measured the job's very setting here, the records elsewhere
    import shutil

    from conftest import REPO
    from records_factory import profile_record, train_record, write_store

    committed = REPO / "reports" / "benchmarks" / "train_settings_cpu.json"
    bench = json.loads(committed.read_text())["benchmarks"]
    quiet = {(b["extra_info"]["model"], b["extra_info"]["setting"]): b["extra_info"] for b in bench}
    xeon = quiet[("vgg11", "fp32")]["device_name"]
    root = tmp_path / "reports" / "results"
    rec = train_record("baseline_cnn", 0, 0.97, epochs=30, device="cpu")
    for h in rec["history"]:
        h["epoch_seconds"] = 40.0  # a contended sweep
    write_store(root, [rec, profile_record("baseline_cnn", macs=20_000_000, p50=1.0, throughput=1e3, device="cpu"),
                       profile_record("vgg11", macs=100_000_000, p50=3.0, throughput=300.0, device="cpu")])
    (tmp_path / "reports" / "benchmarks").mkdir()
    shutil.copy(committed, tmp_path / "reports" / "benchmarks" / committed.name)

    def job(setting, model="vgg11"):
        return run.Job("train", model, 0, "cpu", recipe="r", precision="fp32", setting=setting)

    monkeypatch.setattr(run, "this_machine", lambda kind: xeon if kind == "cpu" else None)
    times = run.epoch_times(str(root))
    nchw = ("bloodmnist", 28, False, False, 128)
    seconds, how = times.estimate(job(nchw))
    assert seconds == 40 * quiet[("vgg11", "fp32")]["epoch_s"] and run.QUIET_PLAN in how
    seconds, _ = times.estimate(job(("bloodmnist", 28, True, False, 128)))
    assert seconds == 40 * quiet[("vgg11", "channels_last")]["epoch_s"]
    # a setting nobody benchmarked (batch 64), or a 64 px run: the records, scaled by MACs for an untrained model
    for other in (("bloodmnist", 28, False, False, 64), ("bloodmnist", 64, False, False, 128)):
        seconds, how = times.estimate(job(other))
        assert seconds == 40 * 200.0 and "scaled by MACs" in how
    # on another machine the committed benchmark says nothing of this one
    monkeypatch.setattr(run, "this_machine", lambda kind: "AMD EPYC 9654 (2 threads)")
    seconds, how = run.epoch_times(str(root)).estimate(job(nchw, "baseline_cnn"))
    assert seconds == 40 * 40.0 and run.QUIET_PLAN not in how


def test_run_unknown_model_is_one_line_error(tmp_path, capsys):
    assert main(["run", "--models", "baseline_cnn,nope", "--results", str(tmp_path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown model 'nope'") and "\n" not in err


def test_plan_in_hours_from_quiet_epochs_and_runs_of_the_recipe(tmp_path):
    from records_factory import profile_record, train_record, write_store

    recs = []
    for seed, epochs in ((0, 30), (1, 34)):
        rec = train_record("baseline_cnn", seed, 0.97, epochs=epochs, device="cpu")
        for i, h in enumerate(rec["history"]):  # a contended run: a quarter of its epochs quiet (10 s)
            h["epoch_seconds"] = 10.0 if i % 4 == 0 else 40.0
        recs.append(rec)
    recs.append(profile_record("baseline_cnn", macs=20_000_000, p50=1.0, throughput=1000.0, device="cpu"))
    recs.append(profile_record("vgg11", macs=100_000_000, p50=3.0, throughput=300.0, device="cpu"))
    write_store(tmp_path, recs)
    times = run.epoch_times(str(tmp_path))
    recipe = run.recipe_hash(recs[0]["config"])
    same = run.Job("train", "baseline_cnn", 2, "cpu", recipe=recipe, precision="fp32")
    seconds, how = times.estimate(same)
    assert seconds == 32 * 10.0 and "32 epochs (this recipe's runs) x 10 s" in how
    other = run.Job("train", "vgg11", 0, "cpu", recipe="another", precision="fp32")
    seconds, how = times.estimate(other)  # 5x the MACs, no run of its recipe: 40 epochs x 50 s
    assert seconds == 40 * 50.0 and "scaled by MACs" in how
    assert times.estimate(run.Job("train", "vgg11", 0, "cpu", recipe="x", precision="bf16")) is None
    assert run.about(33 * 3600 + 48 * 60) == "about 33 h 48 min" and run.about(20) == "about 1 min"
