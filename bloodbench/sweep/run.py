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
from typing import TYPE_CHECKING, Any, Protocol, Sequence

import torch
from tqdm.auto import tqdm

from bloodbench.config import ProfileConfig, TrainConfig, recipe_hash
from bloodbench.errors import BloodbenchError
from bloodbench.formatting import device_label, machine_device_name
from bloodbench.models import get_model_info, list_models
from bloodbench.runtime.envinfo import device_kind, device_name, environment
from bloodbench.store.benchjson import quiet_files, setting_key, train_setting_entries
from bloodbench.store.fsutil import NoSpace, atomic_write_text
from bloodbench.store.results import ResultsStore, utc_now
from bloodbench.store.schema import is_finished
from bloodbench.store.verdicts import profile_noise
from bloodbench.sweep.claims import file_stamp, list_failures

if TYPE_CHECKING:
    from bloodbench.sweep.jobs import Context


@dataclass
class Job:
    kind: str  # "train" | "profile"
    model: str
    seed: int | None = None
    device: str = "cpu"
    done: bool = False
    run_id: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    recipe: str = ""  # train jobs: recipe_hash, to estimate from runs of the same recipe
    precision: str = ""  # train jobs: what their epoch time depends on most, beside the model and device
    note: str = ""  # a pending profile to redo: why (its record is noisy, or a busy machine deferred it)
    setting: tuple = ()  # train jobs: (dataset, size, channels_last, compile, batch_size), for a quiet benchmark

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
    from bloodbench.sweep.jobs import recorded

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
                            dict(train_options or {}), recipe_hash(cfg.as_dict()), cfg.precision,
                            setting=(dataset, size, cfg.channels_last, cfg.compile, cfg.batch_size)))
        if profile:
            for dev in map(device_kind, devices):
                if dev == "cuda" and not torch.cuda.is_available():  # planned for GPU workers elsewhere
                    jobs.append(Job("profile", name, None, "cuda", name in cuda_done,
                                    f"{name}-{dataset}-{size}-cuda-fp32-on-the-workers-gpu"))
                    continue
                rid = ProfileConfig.build(dataset=dataset, size=size, device=torch.device(dev)).run_id(name)
                done = recorded(store, "profile", rid)
                jobs.append(Job("profile", name, None, dev, done, rid, note="" if done else redo_note(store, rid)))
    return jobs


def pending_reason(store: ResultsStore, job: Job, dataset: str, size: int) -> str:
    """Why a pending job is to run: never run, or what changed since the record there is."""
    if job.done:
        return ""
    same = [r for r in store.iter_records(job.kind) if r.get("model") == job.model and r.get("dataset") == dataset
            and r.get("size") == size]
    if job.kind == "train":
        mine = [r for r in same if r.get("seed") == job.seed]
        if any(r.get("run_id") == job.run_id for r in mine):
            return "its last run did not finish: resumes from last.pt where there is one"
        if mine:
            return "recipe changed since the last run of this seed (a new run id; the old record stays)"
        return "not trained yet"
    mine = [r for r in same if (r.get("device") or (r.get("config") or {}).get("device")) == job.device
            and not (r.get("config") or {}).get("cuda_graphs")]
    if not mine:
        return "not profiled yet"
    if not job.run_id.endswith("-on-the-workers-gpu"):
        want = ProfileConfig.build(dataset=dataset, size=size, device=torch.device(job.device)).as_dict()
        for rec in sorted(mine, key=lambda r: str(r.get("created_at")), reverse=True):
            have = rec.get("config") or {}
            if have.get("device_name") != want["device_name"]:
                continue
            changed = sorted(k for k in want if k in have and have[k] != want[k]) + \
                sorted(k for k in want if k not in have)
            return f"settings changed since the last profile ({', '.join(changed) or 'its config'})"
        return f"no profile on this machine ({want['device_name']}) yet; other machines have one"
    return "no profile on the workers' GPU yet"


def redo_note(store: ResultsStore, run_id: str) -> str:
    """Why a profile is (still) to do, where there is more to say than that it never ran."""
    noise = profile_noise(store.get("profile", run_id))
    if noise:
        return f"redo on a quiet machine: the recorded profile is noisy ({'; '.join(noise)})"
    deferred = (list_failures(store.root).get(run_id) or {}).get("deferred")
    return f"deferred: {deferred}" if deferred else ""


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


@dataclass(frozen=True)
class EpochTimes:
    """Measured epoch times and run lengths from finished training records, to plan a sweep in hours."""
    seconds: dict[tuple[str, str, str], float]  # (model, device kind, precision) -> median seconds per epoch
    epochs: dict[tuple[str, str], float]       # (model, recipe hash) -> median epochs a run took
    recipe_epochs: dict[str, float]            # recipe hash -> median epochs over its models' runs
    macs: dict[str, float] = field(default_factory=dict)  # model -> MACs per image, from profile records
    # setting_key(model, device kind, precision, *Job.setting) -> a quiet benchmark's epoch_s on this machine
    quiet: dict[tuple, float] = field(default_factory=dict)

    def _seconds(self, model: str, device: str, precision: str, setting: tuple = ()) -> tuple[float, str] | None:
        """A quiet benchmark of the setting on this machine, else measured seconds per epoch, else scaled by
        MACs from the models measured in this setting."""
        key = setting_key(model, device, precision, *setting) if len(setting) == 5 else None
        if key in self.quiet:
            return self.quiet[key], f"s ({QUIET_PLAN})"
        if (model, device, precision) in self.seconds:
            return self.seconds[(model, device, precision)], "s"
        per_mac = [sec / self.macs[m] for (m, dev, prec), sec in self.seconds.items()
                   if (dev, prec) == (device, precision) and self.macs.get(m)]
        if not per_mac or not self.macs.get(model):
            return None
        return _median(per_mac) * self.macs[model], "s (scaled by MACs from the models measured here)"

    def estimate(self, job: Job) -> tuple[float, str] | None:
        """Seconds for a training job, and how they were reckoned; None without a measured epoch."""
        found = self._seconds(job.model, job.device, job.precision, job.setting)
        if found is None:
            return None
        sec, unit = found
        epochs, source = self.epochs.get((job.model, job.recipe)), "this recipe's runs"
        if epochs is None:
            epochs, source = self.recipe_epochs.get(job.recipe), "other models' runs of the recipe"
        if epochs is None:
            epochs, source = DEFAULT_EPOCHS_GUESS, "no run of the recipe yet"
        return sec * epochs, f"{epochs:.0f} epochs ({source}) x {sec:.0f} {unit}"


#: What a planned epoch from a quiet benchmark is: its training steps alone (validation adds about a second here).
QUIET_PLAN = "quiet benchmark of the setting on this machine, training steps only"

#: Epochs assumed for a recipe no run has finished yet (early stopping ends most runs well before the budget).
DEFAULT_EPOCHS_GUESS = 40.0


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def this_machine(kind: str) -> str | None:
    """The name a benchmark of ``kind`` taken here would carry (the CPU with torch's threads, or the GPU)."""
    if kind == "cuda" and not torch.cuda.is_available():
        return None  # planned for GPU workers elsewhere
    return device_name(kind)


def quiet_epochs(root: Path) -> dict[tuple, float]:
    """The newest quiet ``train_setting`` epoch_s per setting, of this machine, from the benchmarks folder beside
    the store (``reports/benchmarks`` by ``reports/results``); a file that cannot be read plans without it."""
    try:
        entries = train_setting_entries(quiet_files(root), machine_device_name, say=False)
    except BloodbenchError:
        return {}
    here = {kind: device_label(this_machine(kind)) for kind in ("cpu", "cuda")}
    quiet: dict[tuple, float] = {}
    for e in sorted(entries, key=lambda e: str(e["created_at"])):
        if device_label(e["device_name"]) == here.get(e["device"]):
            quiet[e["setting_key"]] = e["epoch_s"]
    return quiet


def epoch_times(results: str | None) -> EpochTimes:
    """Median epoch seconds per model, device kind and precision (any recipe: a setting's speed, not its length),
    and median epochs per model and recipe, from finished training records; quiet benchmarks of this machine
    where one has the job's setting (a sweep's records are timed on a shared machine)."""
    sec: dict[tuple[str, str, str], list[float]] = {}
    ep: dict[tuple[str, str], list[float]] = {}
    rec_ep: dict[str, list[float]] = {}
    store = ResultsStore(results)
    macs = {r["model"]: float(r["macs"]) for r in store.iter_records("profile") if r.get("macs")}
    for rec in store.iter_records("train"):
        if not is_finished(rec) or not isinstance(rec.get("config"), dict):
            continue
        kind = device_kind((rec.get("env") or {}).get("device") or "cpu")
        times = [h["epoch_seconds"] for h in rec.get("history") or [] if h.get("epoch_seconds")]
        if times:
            # the lower quartile of its epochs: a sweep shares the machine, and its quiet epochs say what the
            # machine can do alone (a contended median plans for today's other work, not the sweep's)
            quiet = sorted(times)[len(times) // 4]
            sec.setdefault((rec["model"], kind, rec["config"].get("precision", "fp32")), []).append(quiet)
        if rec.get("epochs_run"):
            recipe = recipe_hash(rec["config"])
            ep.setdefault((rec["model"], recipe), []).append(float(rec["epochs_run"]))
            rec_ep.setdefault(recipe, []).append(float(rec["epochs_run"]))
    return EpochTimes({k: _median(v) for k, v in sec.items()}, {k: _median(v) for k, v in ep.items()},
                      {k: _median(v) for k, v in rec_ep.items()}, macs, quiet_epochs(store.root))


def estimate_seconds(jobs: Sequence[Job], past: dict[tuple[str, str], float],
                     epochs: EpochTimes | None = None) -> list[float]:
    """A guess per job for the ETA: measured epoch times x expected epochs for a training job where
    its model has any, else its model's past job mean, else the mean of its kind, else a minute."""
    by_kind: dict[str, list[float]] = {}
    for (kind, _), sec in past.items():
        by_kind.setdefault(kind, []).append(sec)
    fallback = {k: sum(v) / len(v) for k, v in by_kind.items()}

    def one(j: Job) -> float:
        measured = epochs.estimate(j) if epochs is not None and j.kind == "train" else None
        return measured[0] if measured else past.get((j.kind, j.model)) or fallback.get(j.kind) or 60.0

    return [one(j) for j in jobs]


def about(seconds: float) -> str:
    """``about 12 h 31 min``: a duration, not a clock time (``12:30:56`` reads as one)."""
    minutes = round(seconds / 60)
    if minutes >= 60:
        return f"about {minutes // 60} h {minutes % 60} min" if minutes % 60 else f"about {minutes // 60} h"
    return f"about {max(1, minutes)} min"


def progress_bar(estimates: Sequence[float], progress: bool = True) -> tqdm:
    """One bar for the whole sweep, counting estimated seconds, not jobs: a ResNet run and a profile
    are not one unit each, and tqdm's rate (estimated s per real s) corrects the ETA as jobs finish."""
    return tqdm(total=round(sum(estimates)), desc="bloodbench run", unit="est-s", disable=not progress or None,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} est. s [{elapsed}<{remaining}] {postfix}")


def job_line(job: Job, entry: dict[str, Any], estimate: float) -> str:
    return f"{job.label()}: {entry['status']} ({entry.get('seconds', 0):.0f}s, estimated {estimate:.0f}s)"


def failure_entry(job: Job, status: str, **extra: Any) -> dict[str, Any]:
    """The log entry of a job that failed for good."""
    return {"kind": job.kind, "model": job.model, "seed": job.seed, "device": job.device, "run_id": job.run_id,
            "seconds": 0.0, **extra, "status": status, "failed": True}


class RunLog(dict):
    """One sweep's ``runs/run-<time>-<host>-<pid>.json`` (where its time went) with its progress bar: what every
    executor returns. The dict is the file; :meth:`record` is the one place a finished job is logged."""

    def __init__(self, ctx: Context, jobs: Sequence[Job], extra: dict[str, Any] | None = None,
                 past: dict[tuple[str, str], float] | None = None, progress: bool = True, echo: bool = True) -> None:
        started = utc_now()
        self.pending = [j for j in jobs if not j.done]
        super().__init__(started_at=started, dataset=ctx.dataset, size=ctx.size, env=environment("cpu"), jobs=[],
                         **(extra or {}), skipped=len(jobs) - len(self.pending))
        # host and pid in the name: runs started in the same second (parallel queues) keep separate logs
        self.path = ResultsStore(ctx.results).root / "runs" / f"run-{file_stamp(started)}.json"
        past = past if past is not None else past_job_seconds(ctx.results)
        self.estimates = dict(zip(map(id, self.pending), estimate_seconds(self.pending, past)))
        self.bar = progress_bar(list(self.estimates.values()), progress)
        self.echo = echo
        self._t0 = time.perf_counter()

    def record(self, job: Job, entry: dict[str, Any], note: str = "") -> None:
        """Append ``job``'s entry, rewrite the file atomically, advance the bar and say how it went."""
        self["jobs"].append(entry)
        self["wall_seconds"] = round(time.perf_counter() - self._t0, 2)
        atomic_write_text(self.path, json.dumps(self, indent=1) + "\n")
        self.bar.update(round(self.estimates[id(job)]))
        if self.echo:
            tqdm.write(job_line(job, entry, self.estimates[id(job)]) + note)

    def close(self) -> None:
        self.bar.close()


class Executor(Protocol):
    """Where the jobs of a sweep run: in this process (:class:`InProcess`), several at once on this machine
    (``executors.Local``) or as a Slurm job array (``executors.Slurm``). Done jobs are skipped."""

    def run(self, jobs: list[Job], ctx: Context) -> RunLog: ...


@dataclass
class InProcess:
    """The pending jobs one after another in this process (``--jobs 1``), through the same job
    function as the parallel executors."""

    retries: int = 2
    progress: bool = True
    past: dict[tuple[str, str], float] | None = None

    def run(self, jobs: list[Job], ctx: Context) -> RunLog:
        from bloodbench.sweep.jobs import run_with_retries

        ResultsStore(ctx.results).ensure_writable()
        log = RunLog(ctx, jobs, {"executor": "inline"}, self.past, self.progress)
        for i, job in enumerate(log.pending):
            log.bar.set_postfix_str(f"job {i + 1}/{len(log.pending)}: {job.label()}")
            try:
                entry = run_with_retries(job, ctx, self.retries)
            except NoSpace:  # every job after it would meet the full disk too: the sweep stops, with one line
                log.close()
                raise
            except Exception as exc:  # reported and recorded under failures/; the sweep goes on
                entry = failure_entry(job, f"failed: {type(exc).__name__}: {exc}")
            log.record(job, entry)
        log.close()
        return log


def execute(jobs: list[Job], dataset: str, size: int, results: str | None, data_dir: str | None,
            verify: bool = True, progress: bool = True, retries: int = 2,
            past: dict[tuple[str, str], float] | None = None) -> RunLog:
    """:class:`InProcess` from loose arguments; a log of where the time went is kept in ``<results>/runs/``."""
    from bloodbench.sweep.jobs import Context

    ctx = Context(dataset, size, str(ResultsStore(results).root.resolve()), data_dir, verify, progress=progress)
    return InProcess(retries, progress, past).run(jobs, ctx)


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
