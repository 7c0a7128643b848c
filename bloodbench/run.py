"""The full pipeline for many models and seeds: train -> evaluate -> profile, incrementally.

Every step is skipped when its record already exists in the store, so ``bloodbench run``
can be interrupted, repeated, and spread over machines (merge the result folders: every
record has a unique file name).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm

from bloodbench.claims import file_stamp
from bloodbench.envinfo import device_kind, environment
from bloodbench.errors import BloodbenchError
from bloodbench.models import get_model_info, list_models
from bloodbench.fsutil import atomic_write_text
from bloodbench.results import ResultsStore, utc_now
from bloodbench.schema import is_finished
from bloodbench.config import ProfileConfig, TrainConfig


@dataclass
class Job:
    kind: str  # "train" | "profile"
    model: str
    seed: int | None = None
    device: str = "cpu"
    done: bool = False
    run_id: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        return f"{self.kind} {self.model}" + (f" seed {self.seed}" if self.seed is not None else f" on {self.device}")


def _cuda_profiled(store: ResultsStore, dataset: str, size: int) -> set[str]:
    """Models with a default (fp32) CUDA profile recorded: on a host without CUDA (a Slurm login
    node) the run id of a planned CUDA profile names the workers' GPU, so any such record counts as done."""
    return {r.get("model") for r in store.iter_records("profile") if r.get("dataset") == dataset
            and r.get("size") == size and r.get("device") == "cuda" and r.get("precision") == "fp32"}


def plan(models: Sequence[str], seeds: Sequence[int], dataset: str, size: int, results: str | None,
         devices: Sequence[str], train_device: str = "auto", train_options: dict | None = None,
         profile: bool = True) -> list[Job]:
    """Every (model, seed) training job and (model, device) profile job, marked done if recorded."""
    from bloodbench.jobs import recorded

    store = ResultsStore(results)
    kind = device_kind(train_device)
    remote_cuda = profile and "cuda" in map(device_kind, devices) and not torch.cuda.is_available()
    cuda_done = _cuda_profiled(store, dataset, size) if remote_cuda else set()
    jobs: list[Job] = []
    for name in models:
        get_model_info(name)
        for seed in seeds:
            cfg = TrainConfig.build(name, dataset=dataset, size=size, seed=seed, device=kind, **(train_options or {}))
            jobs.append(Job("train", name, seed, kind, recorded(store, "train", cfg.run_id), cfg.run_id,
                            dict(train_options or {})))
        if profile:
            for dev in map(device_kind, devices):
                if dev == "cuda" and not torch.cuda.is_available():  # planned for GPU workers elsewhere
                    jobs.append(Job("profile", name, None, "cuda", name in cuda_done,
                                    f"{name}-{dataset}-{size}-cuda-fp32-on-the-workers-gpu"))
                    continue
                rid = ProfileConfig.build(dataset=dataset, size=size, device=torch.device(dev)).run_id(name)
                jobs.append(Job("profile", name, None, dev, recorded(store, "profile", rid), rid))
    return jobs


def past_job_seconds(results: str | None) -> dict[tuple[str, str], float]:
    """Mean seconds per (kind, model) from earlier run logs, training records filling the gaps."""
    store = ResultsStore(results)
    seen: dict[tuple[str, str], list[float]] = {}
    for path in sorted((store.root / "runs").glob("run-*.json")):
        try:
            jobs = json.loads(path.read_text()).get("jobs", [])
        except (OSError, ValueError):
            continue  # a log being written right now by another queue
        for j in jobs:
            if isinstance(j, dict) and j.get("seconds"):
                seen.setdefault((j.get("kind"), j.get("model")), []).append(float(j["seconds"]))
    for rec in store.iter_records("train"):
        if is_finished(rec) and ("train", rec["model"]) not in seen and rec.get("train_seconds"):
            seen.setdefault(("train", rec["model"]), []).append(float(rec["train_seconds"]))
    return {k: sum(v) / len(v) for k, v in seen.items()}


def estimate_seconds(jobs: Sequence[Job], past: dict[tuple[str, str], float]) -> list[float]:
    """A guess per job for the ETA: its model's past mean, else the mean of its kind, else a minute."""
    by_kind: dict[str, list[float]] = {}
    for (kind, _), sec in past.items():
        by_kind.setdefault(kind, []).append(sec)
    fallback = {k: sum(v) / len(v) for k, v in by_kind.items()}
    return [past.get((j.kind, j.model)) or fallback.get(j.kind) or 60.0 for j in jobs]


def new_run_log(store: ResultsStore, dataset: str, size: int, extra: dict | None = None) -> tuple[Path, dict]:
    """A fresh ``runs/run-<time>-<host>-<pid>.json`` log: where the time of one sweep went."""
    started = utc_now()
    log: dict[str, Any] = {"started_at": started, "dataset": dataset, "size": size, "env": environment("cpu"),
                           "jobs": [], **(extra or {})}
    # host and pid in the name: runs started in the same second (parallel queues) keep separate logs
    return store.root / "runs" / f"run-{file_stamp(started)}.json", log


def progress_bar(estimates: Sequence[float], progress: bool = True) -> tqdm:
    """One bar for the whole sweep, counting estimated seconds, not jobs: a ResNet run and a profile
    are not one unit each, and tqdm's rate (estimated s per real s) corrects the ETA as jobs finish."""
    return tqdm(total=round(sum(estimates)), desc="bloodbench run", unit="est-s", disable=not progress or None,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} est. s [{elapsed}<{remaining}] {postfix}")


def job_line(job: Job, entry: dict[str, Any], estimate: float) -> str:
    return f"{job.label()}: {entry['status']} ({entry.get('seconds', 0):.0f}s, estimated {estimate:.0f}s)"


def execute(jobs: list[Job], dataset: str, size: int, results: str | None, data_dir: str | None,
            verify: bool = True, progress: bool = True, retries: int = 2,
            past: dict[tuple[str, str], float] | None = None) -> dict[str, Any]:
    """Run the pending jobs one after another in this process (``--jobs 1``), through the same
    job function as the parallel executors; a log of where the time went is kept in ``<results>/runs/``."""
    from bloodbench.jobs import Context, run_with_retries

    store = ResultsStore(results)
    store.ensure_writable()
    pending = [j for j in jobs if not j.done]
    log_path, log = new_run_log(store, dataset, size, {"executor": "inline", "skipped": len(jobs) - len(pending)})
    ctx = Context(dataset, size, str(store.root.resolve()), data_dir, verify, progress=progress)
    estimates = estimate_seconds(pending, past if past is not None else past_job_seconds(results))
    bar = progress_bar(estimates, progress)
    t_all = time.perf_counter()
    for i, (job, estimate) in enumerate(zip(pending, estimates)):
        bar.set_postfix_str(f"job {i + 1}/{len(pending)}: {job.label()}")
        try:
            entry = run_with_retries(job, ctx, retries)
        except Exception as exc:  # reported and recorded under failures/; the sweep goes on
            entry = {"kind": job.kind, "model": job.model, "seed": job.seed, "device": job.device,
                     "run_id": job.run_id, "seconds": 0.0, "status": f"failed: {type(exc).__name__}: {exc}",
                     "failed": True}
        log["jobs"].append(entry)
        log["wall_seconds"] = round(time.perf_counter() - t_all, 2)
        atomic_write_text(log_path, json.dumps(log, indent=1) + "\n")
        bar.update(round(estimate))
        tqdm.write(job_line(job, entry, estimate))
    bar.close()
    return log


def default_devices() -> list[str]:
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def resolve_models(names: Sequence[str]) -> list[str]:
    """Registry names checked up front (a typo fails before any training); ``["all"]`` is every model."""
    if list(names) == ["all"]:
        return list_models()
    if not names:
        raise BloodbenchError("--models is empty: give comma-separated names or 'all'")
    for n in names:
        get_model_info(n)
    return list(names)
