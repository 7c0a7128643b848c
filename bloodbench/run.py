"""The full pipeline for many models and seeds: train -> evaluate -> profile, incrementally.

Every step is skipped when its record already exists in the store, so ``bloodbench run``
can be interrupted, repeated, and spread over machines (merge the result folders: every
record has a unique file name).
"""

from __future__ import annotations

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
from bloodbench.results import ResultsStore, atomic_write_text, utc_now
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


def execute(jobs: list[Job], dataset: str, size: int, results: str | None, data_dir: str | None,
            verify: bool = True, progress: bool = True) -> dict[str, Any]:
    """Run the pending jobs in order; a log of where the time went is kept in ``<results>/runs/``."""
    store = ResultsStore(results)
    pending = [j for j in jobs if not j.done]
    started = utc_now()
    log: dict[str, Any] = {"started_at": started, "dataset": dataset, "size": size, "env": environment("cpu"),
                           "jobs": [], "skipped": len(jobs) - len(pending)}
    # host and pid in the name: runs started in the same second (parallel queues) keep separate logs
    stamp = started.replace(":", "").replace("+0000", "Z")
    log_path = store.root / "runs" / f"run-{stamp}-{platform.node() or 'host'}-{os.getpid()}.json"
    data_cache = None
    bar = tqdm(pending, desc="bloodbench run", unit="job", disable=not progress or None)
    t_all = time.perf_counter()
    for job in bar:
        bar.set_postfix_str(job.label())
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
            import json

            atomic_write_text(log_path, json.dumps(log, indent=1) + "\n")
        tqdm.write(f"{job.label()}: {status} ({seconds:.0f}s)")
    return log


def default_devices() -> list[str]:
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def resolve_models(spec: str | None) -> list[str]:
    if not spec or spec == "all":
        return list_models()
    names = [m.strip() for m in spec.split(",") if m.strip()]
    for n in names:
        get_model_info(n)
    if not names:
        raise BloodbenchError("--models is empty: give comma-separated names or 'all'")
    return names
