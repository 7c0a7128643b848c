"""The full pipeline for many models and seeds: train -> evaluate -> profile, incrementally.

Every step is skipped when its record already exists in the store, so ``bloodbench run``
can be interrupted, repeated, and spread over machines (merge the result folders: every
record has a unique file name).
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm

from bloodbench.envinfo import environment, resolve_device
from bloodbench.errors import BloodbenchError
from bloodbench.models import get_model_info, list_models
from bloodbench.profile.record import profile_config, profile_model, profile_run_id
from bloodbench.fsutil import atomic_write_text
from bloodbench.results import ResultsStore, utc_now
from bloodbench.train import TrainConfig, Trainer, TrainingDiverged


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


def plan(models: Sequence[str], seeds: Sequence[int], dataset: str, size: int, results: str | None,
         devices: Sequence[str], train_device: str = "auto", train_options: dict | None = None,
         profile: bool = True) -> list[Job]:
    """Every (model, seed) training job and (model, device) profile job, marked done if recorded."""
    store = ResultsStore(results)
    jobs: list[Job] = []
    for name in models:
        get_model_info(name)
        for seed in seeds:
            cfg = TrainConfig.build(name, dataset=dataset, size=size, seed=seed, device=train_device,
                                    **(train_options or {}))
            rec = store.get("train", cfg.run_id)
            jobs.append(Job("train", name, seed, train_device, bool(rec and rec.get("status") in ("finished", "diverged")),
                            cfg.run_id, dict(train_options or {})))
        if profile:
            for dev in devices:
                pcfg = profile_config(dataset, size, resolve_device(dev))
                rid = profile_run_id(name, pcfg)
                jobs.append(Job("profile", name, None, dev, store.get("profile", rid) is not None, rid))
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
        if rec.get("status") == "finished" and ("train", rec["model"]) not in seen and rec.get("train_seconds"):
            seen.setdefault(("train", rec["model"]), []).append(float(rec["train_seconds"]))
    return {k: sum(v) / len(v) for k, v in seen.items()}


def estimate_seconds(jobs: Sequence[Job], past: dict[tuple[str, str], float]) -> list[float]:
    """A guess per job for the ETA: its model's past mean, else the mean of its kind, else a minute."""
    by_kind: dict[str, list[float]] = {}
    for (kind, _), sec in past.items():
        by_kind.setdefault(kind, []).append(sec)
    fallback = {k: sum(v) / len(v) for k, v in by_kind.items()}
    return [past.get((j.kind, j.model)) or fallback.get(j.kind) or 60.0 for j in jobs]


def execute(jobs: list[Job], dataset: str, size: int, results: str | None, data_dir: str | None,
            verify: bool = True, progress: bool = True) -> dict[str, Any]:
    """Run the pending jobs in order; a log of where the time went is kept in ``<results>/runs/``."""
    store = ResultsStore(results)
    store.ensure_writable()
    pending = [j for j in jobs if not j.done]
    started = utc_now()
    log: dict[str, Any] = {"started_at": started, "dataset": dataset, "size": size, "env": environment("cpu"),
                           "jobs": [], "skipped": len(jobs) - len(pending)}
    # host and pid in the name: runs started in the same second (parallel queues) keep separate logs
    stamp = started.replace(":", "").replace("+0000", "Z")
    log_path = store.root / "runs" / f"run-{stamp}-{platform.node() or 'host'}-{os.getpid()}.json"
    data_cache = None
    # The bar counts estimated seconds, not jobs: a ResNet run and a profile are not one unit each,
    # and tqdm's rate (estimated s per real s) corrects the ETA as real jobs finish.
    estimates = estimate_seconds(pending, past_job_seconds(results))
    bar = tqdm(total=round(sum(estimates)), desc="bloodbench run", unit="est-s", disable=not progress or None,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} est. s [{elapsed}<{remaining}] {postfix}")
    t_all = time.perf_counter()
    for i, (job, estimate) in enumerate(zip(pending, estimates)):
        bar.set_postfix_str(f"job {i + 1}/{len(pending)}: {job.label()}")
        t0 = time.perf_counter()
        status = "ok"
        try:
            if job.kind == "train":
                cfg = TrainConfig.build(job.model, dataset=dataset, size=size, seed=job.seed, device=job.device,
                                        **job.options)
                trainer = Trainer(cfg, results=results, data_dir=data_dir, verify=verify, progress=progress,
                                  data=data_cache)
                try:
                    rec = trainer.fit()
                    status = f"{rec['stop_reason']} after {rec['epochs_run']} epochs, test acc {rec['test']['acc']:.4f}"
                except TrainingDiverged as exc:
                    status = f"diverged: {exc}"
                data_cache = trainer.load_data()
            else:
                profile_model(job.model, dataset=dataset, size=size, device=job.device, results=results)
        finally:
            seconds = time.perf_counter() - t0
            log["jobs"].append({"kind": job.kind, "model": job.model, "seed": job.seed, "device": resolve_device(job.device).type,
                                "run_id": job.run_id, "seconds": round(seconds, 2), "status": status})
            log["wall_seconds"] = round(time.perf_counter() - t_all, 2)
            atomic_write_text(log_path, json.dumps(log, indent=1) + "\n")
            bar.update(round(estimate))
        tqdm.write(f"{job.label()}: {status} ({seconds:.0f}s, estimated {estimate:.0f}s)")
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
