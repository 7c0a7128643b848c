"""The GPU one-shot: everything a short GPU slot can give, under one deadline, back in at most 8 files.

A lent GPU is rare and brief here (15 minutes in all, one command of at most 10), and so is a
user's cloud or cluster reservation. This runs the steps in order of value, each as its own
process with its own time cap, and never lets one step's failure or overrun cost the others:

1. profiles of every model on the GPU: fp32 eager, bf16 eager, fp32 CUDA graphs; then a few
   models again in a second process (cross-process agreement);
2. the GPU checks: the CUDA tests and the epoch-overhead benchmark;
3. training, for the rest of the time, the costliest models first, ``--jobs`` side by side;
4. the pack: new records, predictions, cut-off checkpoints (if they fit) and logs, as tars.

``rehearse=True`` is the same sequence on CPU with tiny settings (no CUDA graphs there), so the
script is exercised end to end before a GPU ever runs it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from bloodbench.errors import BloodbenchError
from bloodbench.store.fsutil import strict_json

#: Costliest to train on 2 CPU cores first: what the GPU saves the CPU sweep the most hours on.
GPU_TRAIN_ORDER = ("densenet121", "resnet18", "efficientnet_b0", "vgg11_attention", "vgg11", "inception",
                   "cnn_attention", "mobilenet_v3_small", "autoencoder_cnn", "encoder_cnn_se", "encoder_cnn",
                   "baseline_cnn")
AGREEMENT_MODELS = ("baseline_cnn", "resnet18", "densenet121")
AGREEMENT_TARGET = 1.10      # second process's p50 / first process's p50, either way
SPREAD_TARGET = 1.10         # max / min of one record's round p50s
MAX_FILES = 8                # what the device tool brings back
MAX_FILE_BYTES = 15 * 2**20  # under its 16 MiB per file
MAX_TOTAL_BYTES = 60 * 2**20  # under its 64 MiB in all
#: Where the test and benchmark paths of the check steps resolve: the checkout this package runs from.
REPO = Path(__file__).resolve().parents[2]
PACK_RESERVE_S = 30.0        # kept back from the last step for packing


@dataclass
class Step:
    """One process of the one-shot, capped at ``cap_s`` seconds (and by what is left of the budget)."""
    name: str
    argv: list[str]
    cap_s: float
    skip: str | None = None   # why it does not run in this mode
    fill: bool = False        # takes whatever time is left (training)


@dataclass
class StepResult:
    name: str
    argv: list[str]
    status: str               # ok | failed | cut (time cap) | skipped
    rc: int | None
    seconds: float
    log: str
    note: str = ""


@dataclass
class Plan:
    device: str
    steps: list[Step]
    results: Path
    work: Path
    agreement_dir: Path  # where the second process writes its profiles


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "bloodbench.cli", *args]


def _pytest(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]


def build_plan(results: Path, work: Path, rehearse: bool = False, jobs: int | None = None,
               train_models: Sequence[str] | None = None, seeds: str = "0,1,2",
               skip: Sequence[str] = ()) -> Plan:
    """The steps, GPU or rehearsal; the same names and order in both, so the rehearsal proves the GPU path."""
    res = ["--results", str(results)]
    agree_dir = work / "agreement"
    if rehearse:
        device, models = "cpu", ["baseline_cnn", "mobilenet_v3_small"]
        prof = ["--device", "cpu", "--batch-sizes", "1,2", "--rounds", "2", "--round-s", "0.01",
                "--warmup-s", "0.01", "--warmup", "1", "--iters", "2", "--threads", "1"]
        caps = {"fp32": 60.0, "bf16": 60.0, "graphs": 60.0, "agree": 40.0, "tests": 90.0, "epoch": 90.0}
        epoch_opts = ["--bb-device", "cpu", "--bb-threads", "1", "-k", "baseline_cnn"]
        train = ["--models", ",".join(train_models or ["baseline_cnn"]), "--seeds", "0,1", "--device", "cpu",
                 "--jobs", str(jobs or 2), "--epochs", "1", "--limit-train", "128"]
    else:
        device, models = "cuda", None
        # 4 batch sizes of the throughput sweep and 0.1 s rounds: on the H200 (2026-11-30) 12 models took
        # 71 s in fp32, 78 s with CUDA graphs and ~96 s in bf16 (autocast adds launches). --missing skips
        # what a slot before this one measured, leaving its time to training.
        prof = ["--device", "cuda", "--batch-sizes", "1,16,256,1024", "--round-s", "0.1", "--warmup-s", "0.5",
                "--missing"]
        caps = {"fp32": 85.0, "bf16": 105.0, "graphs": 90.0, "agree": 35.0, "tests": 60.0, "epoch": 45.0}
        epoch_opts = ["--bb-device", "cuda", "--bb-precision", "bf16"]
        train = ["--models", ",".join(train_models or GPU_TRAIN_ORDER), "--seeds", seeds, "--device", "cuda",
                 "--jobs", str(jobs or 8)]
    which = models or ["--all"]
    graphs_skip = "CUDA graphs need a GPU" if rehearse else None
    steps = [
        Step("profile-fp32", _cli("profile", *which, *prof, "--precision", "fp32", *res), caps["fp32"]),
        Step("profile-bf16", _cli("profile", *which, *prof, "--precision", "bf16", *res), caps["bf16"]),
        Step("profile-graphs", _cli("profile", *which, *prof, "--precision", "fp32", "--cuda-graphs", *res),
             caps["graphs"], skip=graphs_skip),
        Step("profile-agreement", _cli("profile", *(models or AGREEMENT_MODELS), *prof, "--precision", "fp32",
                                       "--results", str(agree_dir)), caps["agree"]),
        Step("cuda-tests", _pytest("tests/test_latency_method.py", "tests/test_train.py",
                                   "tests/test_benchmark_suite.py", "-k", "cuda",
                                   "--junitxml", str(work / "cuda_tests.xml")), caps["tests"]),
        Step("epoch-benchmark", _pytest("benchmarks/test_epoch_time.py", *epoch_opts,
                                        "--benchmark-json", str(work / "epoch.json")), caps["epoch"]),
        Step("train", _cli("run", *train, "--no-profile", "--no-report", *res), 0.0, fill=True),
    ]
    unknown = set(skip) - {s.name for s in steps}
    if unknown:
        raise BloodbenchError(f"--skip {','.join(sorted(unknown))}: no such step; the steps are "
                              f"{', '.join(s.name for s in steps)}")
    for s in steps:
        if s.name in skip:
            s.skip = "skipped by --skip"
    return Plan(device, steps, results, work, agree_dir)


def _run_step(step: Step, log_path: Path, time_left: float) -> StepResult:
    """Run one step as its own process group; past its cap, SIGTERM (the sweep stops its workers, who keep
    their ``last.pt``), then SIGKILL after a grace period."""
    if step.skip:
        return StepResult(step.name, step.argv, "skipped", None, 0.0, str(log_path), step.skip)
    cap = time_left if step.fill else min(step.cap_s, time_left)
    if cap < 5:
        return StepResult(step.name, step.argv, "skipped", None, 0.0, str(log_path), "no time left")
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(step.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO)
        try:
            rc = proc.wait(timeout=cap)
            status = "ok" if rc == 0 else "failed"
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            rc, status = proc.returncode, "cut"
    # whatever the leader left behind (workers of a cut sweep) goes with it
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return StepResult(step.name, step.argv, status, rc, round(time.monotonic() - t0, 1), str(log_path),
                      f"stopped at its {cap:.0f} s cap" if status == "cut" else "")


def _new_files(root: Path, since: float) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.stat().st_mtime >= since) if root.is_dir() else []


def profile_summary(results: Path, since: float) -> list[dict[str, Any]]:
    """Each profile record this one-shot wrote: setting, p50, round spread, noise flag."""
    rows = []
    for p in _new_files(results / "profile", since):
        if p.suffix != ".json":
            continue
        rec = json.loads(p.read_text())
        lat = rec.get("latency") or {}
        rows.append({"model": rec.get("model"), "precision": rec.get("precision"),
                     "cuda_graphs": bool(rec.get("cuda_graphs")), "p50_ms": lat.get("p50_ms"),
                     "rounds_spread": lat.get("rounds_spread"), "noisy": lat.get("noisy"),
                     "peak_throughput": rec.get("peak_throughput"), "run_id": rec.get("run_id")})
    return sorted(rows, key=lambda r: (r["precision"] or "", r["cuda_graphs"], r["model"] or ""))


def agreement(results: Path, second: Path) -> list[dict[str, Any]]:
    """The second process's p50 against the first's, model by model (same setting, same run id)."""
    rows = []
    for p in sorted((second / "profile").glob("*.json")) if (second / "profile").is_dir() else []:
        first = results / "profile" / p.name
        if not first.is_file():
            continue
        a, b = (json.loads(f.read_text())["latency"]["p50_ms"] for f in (first, p))
        ratio = max(a, b) / min(a, b) if a and b else None
        rows.append({"model": json.loads(p.read_text())["model"], "p50_ms_first": a, "p50_ms_second": b,
                     "ratio": ratio, "within_target": ratio is not None and ratio <= AGREEMENT_TARGET})
    return rows


def epoch_ratios(path: Path) -> list[dict[str, Any]]:
    """``extra_info`` of the epoch-overhead benchmark: loop / pure forward+backward epoch time."""
    if not path.is_file():
        return []
    keys = ("model", "device_name", "precision", "images", "loop_epoch_s", "pure_epoch_s", "ratio", "meets_target")
    return [{k: b.get("extra_info", {}).get(k) for k in keys} for b in json.loads(path.read_text()).get("benchmarks", [])]


def _cut_runs(results: Path) -> list[Path]:
    """Run folders with a ``last.pt`` but no record: trainings the next machine resumes."""
    train = results / "train"
    if not train.is_dir():
        return []
    return sorted(d for d in train.iterdir() if (d / "last.pt").is_file() and not (d / "record.json").exists())


def _checkpoint_pairs(results: Path, limit: int) -> tuple[list[list[Path]], list[str]]:
    """``[last.pt, best.pt]`` of each cut-off run, smallest first, and the runs too big to travel.

    A run travels whole or not at all: ``last.pt`` alone resumes but loses the best-on-val weights,
    ``best.pt`` alone resumes nothing.
    """
    pairs, too_big = [], []
    for d in _cut_runs(results):
        files = [p for p in (d / "last.pt", d / "best.pt") if p.is_file()]
        if sum(p.stat().st_size for p in files) > limit:
            too_big.append(f"{d.name} (checkpoints {sum(p.stat().st_size for p in files) / 2**20:.0f} MiB)")
        else:
            pairs.append(files)
    return sorted(pairs, key=lambda fs: sum(p.stat().st_size for p in fs)), too_big


def _tar_groups(files: list[tuple[Path, str]], limit: int) -> list[list[tuple[Path, str]]]:
    """Files in groups of at most ``limit`` bytes (before compression), in their given order."""
    groups: list[list[tuple[Path, str]]] = [[]]
    size = 0
    for path, arc in files:
        n = path.stat().st_size
        if groups[-1] and size + n > limit:
            groups.append([])
            size = 0
        groups[-1].append((path, arc))
        size += n
    return [g for g in groups if g]


def pack(out: Path, results: Path, work: Path, since: float, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Everything new, in at most ``MAX_FILES`` files: summary.json, results tars, checkpoints, logs.

    Results tars hold paths relative to the results root (``train/<run_id>/...``, ``profile/...``,
    ``runs/...``), the layout ``bloodbench results import`` reads. Checkpoints go last and only as far
    as the limits allow; what is left out is listed in the summary.
    """
    out.mkdir(parents=True, exist_ok=True)
    skip_dirs = {"logs", "claims", "submissions", "failures"}
    new = [p for p in _new_files(results, since) if p.relative_to(results).parts[0] not in skip_dirs
           and p.suffix != ".pt" and ".tmp" not in p.name and not p.name.startswith("tmp")]
    new_records = [(p, str(p.relative_to(results))) for p in new]
    logs = [(p, "results-logs/" + str(p.relative_to(results / "logs"))) for p in _new_files(results / "logs", since)]
    logs += [(p, "oneshot/" + str(p.relative_to(work))) for p in _new_files(work, since)]
    pairs, too_big = _checkpoint_pairs(results, MAX_FILE_BYTES)

    written: list[dict[str, Any]] = []
    total = 0
    slots = MAX_FILES - 1  # summary.json

    def write(name: str, group: list[tuple[Path, str]]) -> bool:
        nonlocal total, slots
        path = out / name
        with tarfile.open(path, "w:gz") as tar:
            for f, arc in group:
                tar.add(f, arcname=arc)
        n = path.stat().st_size
        if n > MAX_FILE_BYTES + 2**20 or total + n > MAX_TOTAL_BYTES or slots < 1:
            path.unlink()
            return False
        total, slots = total + n, slots - 1
        written.append({"file": name, "bytes": n, "members": len(group)})
        return True

    left_out: list[str] = []
    for i, group in enumerate(_tar_groups(new_records, MAX_FILE_BYTES)):
        if not write(f"results-{i + 1}.tgz", group):
            left_out += [arc for _, arc in group]
    if logs:
        slots -= 1  # keep one file for the logs, which go last but must not be crowded out
    left_out += too_big
    for i, files in enumerate(pairs):
        if not write(f"checkpoints-{i + 1}.tgz", [(p, str(p.relative_to(results))) for p in files]):
            left_out.append(f"{files[0].parent.name} (no room left)")
    if logs:
        slots += 1
        if not write("logs.tgz", logs):
            left_out.append("logs.tgz (over the size limit)")
    summary["left_out"] = left_out
    summary["files"] = written
    (out / "summary.json").write_text(strict_json(summary, indent=1) + "\n")
    return written


def run_oneshot(out: Path, budget_s: float, results: Path, rehearse: bool = False, jobs: int | None = None,
                train_models: Sequence[str] | None = None, seeds: str = "0,1,2", skip: Sequence[str] = (),
                echo=print) -> dict[str, Any]:
    """Every step within ``budget_s`` seconds from now, then the pack; returns the summary."""
    t_start = time.monotonic()
    since = time.time() - 1
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    plan = build_plan(results, work, rehearse, jobs, train_models, seeds, skip)
    deadline = t_start + budget_s - PACK_RESERVE_S
    steps: list[StepResult] = []
    for step in plan.steps:
        left = deadline - time.monotonic()
        res = _run_step(step, work / f"{step.name}.log", left)
        steps.append(res)
        echo(f"oneshot: {res.name}: {res.status} in {res.seconds:.0f} s"
             + (f" ({res.note})" if res.note else "") + (f", log {res.log}" if res.status == "failed" else ""))
    summary: dict[str, Any] = {
        "mode": "rehearsal" if rehearse else "gpu", "device": plan.device, "budget_s": budget_s,
        "steps": [asdict(s) for s in steps],
        "profiles": profile_summary(results, since),
        "agreement": agreement(results, plan.agreement_dir),
        "epoch": epoch_ratios(work / "epoch.json"),
        "trained": sorted({p.parent.name for p in _new_files(results / "train", since) if p.name == "record.json"}),
        "cut_off": [d.name for d in _cut_runs(results)],
    }
    summary["noisy_profiles"] = [f"{r['model']} {r['precision']}{' graphs' if r['cuda_graphs'] else ''}"
                                 for r in summary["profiles"]
                                 if r["rounds_spread"] is not None and r["rounds_spread"] > SPREAD_TARGET]
    summary["seconds"] = round(time.monotonic() - t_start, 1)
    pack(out, results, work, since, summary)
    summary["seconds_with_pack"] = round(time.monotonic() - t_start, 1)
    (out / "summary.json").write_text(strict_json(summary, indent=1) + "\n")
    return summary
