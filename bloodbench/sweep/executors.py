"""Where the jobs of ``bloodbench run`` go: several at once on this machine, or a Slurm job array.

:class:`Local` and :class:`Slurm` are :class:`bloodbench.sweep.run.Executor` s like ``run.InProcess``:
``run(jobs, ctx) -> RunLog``. Both go through submitit and run the same
:class:`bloodbench.sweep.jobs.JobTask`; what they share with the in-process path is the job function, the
claims, the records and the run log. Each sweep leaves a ``submissions/<time>-<host>-<pid>.json``
(job ids, log paths) that ``--status`` reads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import submitit
from submitit.core.utils import FailedJobError, UncompletedJobError
from tqdm.auto import tqdm

from bloodbench.choices import sbatch_flag, slurm_value
from bloodbench.errors import BloodbenchError, sigterm_stops
from bloodbench.store.fsutil import NoSpace, atomic_write_text
from bloodbench.store.results import utc_now
from bloodbench.sweep import claims
from bloodbench.sweep.jobs import Context, JobTask
from bloodbench.sweep.run import Job, RunLog, failure_entry

GPU_JOBS_DEFAULT = 4  # per GPU: one small-model training is launch-bound and leaves the GPU mostly idle
LOCAL_TIMEOUT_MIN = 7 * 24 * 60  # submitit's local default (2 min) would kill any real training
POLL_S = 0.5


def visible_gpus() -> list[int]:
    """GPU indices this process may use: ``$CUDA_VISIBLE_DEVICES`` when it lists numbers, else all."""
    import torch

    if not torch.cuda.is_available():
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES", "").replace(" ", "")
    if listed and all(p.isdigit() for p in listed.split(",")):
        return [int(p) for p in listed.split(",")]
    return list(range(torch.cuda.device_count()))


def default_jobs(gpus: Sequence[int]) -> int:
    """Jobs per GPU, or on CPU: 4 on a GPU (launch-bound small models), 1 on CPU (torch already uses every core)."""
    return GPU_JOBS_DEFAULT if gpus else 1


def local_slots(gpus: Sequence[int], n_jobs: int | None, cores: int) -> tuple[list[int | None], int]:
    """One slot per job that may run at once (its GPU, or None on CPU), GPUs taken round-robin so the
    first jobs spread over all of them; and torch threads per job so that jobs x threads <= cores."""
    n_jobs = n_jobs or default_jobs(gpus)
    slots: list[int | None] = [g for _ in range(n_jobs) for g in gpus] or [None] * n_jobs
    return slots, max(1, cores // len(slots))


def cpu_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def worker_environment() -> None:
    """Workers start a fresh python: make sure it imports this very bloodbench."""
    here = str(Path(__file__).resolve().parents[2])  # the folder holding bloodbench/
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if here not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([here, *paths])


class Submissions:
    """``submissions/<time>-<host>-<pid>.json``: one file per sweep, rewritten atomically as jobs go out."""

    def __init__(self, root: Path, executor: str, extra: dict | None = None) -> None:
        self.path = root / "submissions" / f"{claims.file_stamp()}.json"
        self.data: dict[str, Any] = {"executor": executor, "submitted_at": utc_now(), "host": claims.host(),
                                     **(extra or {}), "jobs": []}

    def add(self, job: Job, job_id: str, log: str, attempt: int = 1) -> None:
        self.data["jobs"].append({"job": job.label(), "run_id": job.run_id, "job_id": job_id, "log": log,
                                  "attempt": attempt, "at": utc_now()})
        atomic_write_text(self.path, json.dumps(self.data, indent=1) + "\n")


def latest_submissions(root: Path) -> dict[str, dict[str, Any]]:
    """The last submission of each run id over every sweep: executor, job id, log path."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted((root / "submissions").glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for j in data.get("jobs", []):
            out[j["run_id"]] = {**j, "executor": data.get("executor"), "folder": data.get("folder")}
    return out


# -- local -------------------------------------------------------------------------------------
@dataclass
class Local:
    """The pending jobs as submitit local processes, ``n_jobs`` per GPU (or on CPU) at once.

    Training jobs share the machine; profile jobs come after them and run alone, since latency
    measured beside other work would be wrong. A job is retried in its process (``retries``)
    and resubmitted if its process dies; the sweep goes on past a job that keeps failing.
    """

    n_jobs: int | None = None
    retries: int = 2
    timeout_min: int | None = None
    progress: bool = True
    past: dict[tuple[str, str], float] | None = None

    def run(self, jobs: list[Job], ctx: Context) -> RunLog:
        worker_environment()
        slots, threads = local_slots(visible_gpus(), self.n_jobs, cpu_cores())
        log = RunLog(ctx, jobs, {"executor": "local", "jobs_at_once": len(slots)}, self.past, self.progress)
        train = [j for j in log.pending if j.kind == "train"]
        phases = [(train, slots, dataclasses.replace(ctx, threads=threads)),
                  ([j for j in log.pending if j.kind != "train"], slots[:1], dataclasses.replace(ctx, threads=None))]
        subs = Submissions(Path(ctx.results), "local", {"jobs_at_once": len(slots), "threads_per_job": threads})
        running: dict[Any, tuple[Job, int | None, int]] = {}
        try:
            with sigterm_stops():  # `timeout`, `kill`: stop the workers too
                for queue, phase_slots, phase_ctx in phases:
                    self._phase(deque(queue), list(phase_slots), phase_ctx, running, subs, log)
        finally:
            _stop(running)
            log.close()
        return log

    def _phase(self, queue: deque, free: list, ctx: Context, running: dict, subs: Submissions, log: RunLog) -> None:
        """Run ``queue`` on the ``free`` slots until every job of it has its entry in ``log``."""
        def submit(job: Job, gpu: int | None, attempt: int) -> None:
            running[_submit_local(Path(ctx.results), job, gpu, ctx, self.retries, self.timeout_min, subs,
                                  attempt)] = (job, gpu, attempt)

        while queue or running:
            while queue and free:
                submit(queue.popleft(), free.pop(0), 1)
            log.bar.set_postfix_str(", ".join(j.label() for j, _, _ in running.values()))
            time.sleep(POLL_S)
            for sj in [sj for sj in running if sj.done()]:
                job, gpu, attempt = running.pop(sj)
                entry = _collect(sj, job, attempt, self.retries, Path(ctx.results))
                if entry is None:  # the process died without a word: start it again
                    tqdm.write(f"{job.label()}: worker died (log: {sj.paths.stdout}); attempt {attempt + 1}")
                    submit(job, gpu, attempt + 1)
                    continue
                free.append(gpu)
                log.record(job, entry, f" log: {entry['log']}" if entry.get("failed") else "")


def run_local(jobs: list[Job], ctx: Context, n_jobs: int | None = None, retries: int = 2,
              timeout_min: int | None = None, progress: bool = True,
              past: dict[tuple[str, str], float] | None = None) -> RunLog:
    """:class:`Local` from loose arguments."""
    return Local(n_jobs, retries, timeout_min, progress, past).run(jobs, ctx)


def _stop(running: dict, grace_s: float = 10.0) -> None:
    """Interrupted: stop the workers (they release their claims; ``last.pt`` stays), waiting a little."""
    for sj in running:
        sj.cancel(check=False)
    deadline = time.time() + grace_s
    while any(not sj.done() for sj in running) and time.time() < deadline:
        time.sleep(0.1)


def _submit_local(root: Path, job: Job, gpu: int | None, ctx: Context, retries: int, timeout_min: int | None,
                  subs: Submissions, attempt: int):
    """One job in its own process, its log under ``logs/<run_id>/``, GPU ``gpu`` its only visible one."""
    folder = root / "logs" / job.run_id
    ex = submitit.LocalExecutor(folder=folder)
    ex.update_parameters(timeout_min=timeout_min or LOCAL_TIMEOUT_MIN, stderr_to_stdout=True,
                         gpus_per_node=0 if gpu is None else 1, visible_gpus=() if gpu is None else (gpu,))
    with _stderr_to(folder / "controller.log"):
        sj = ex.submit(JobTask(retries), job, ctx)
    subs.add(job, sj.job_id, str(sj.paths.stdout), attempt)
    return sj


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """The stderr (fd 2) that processes started inside inherit: ``path``. submitit's local controller prints a
    ``KeyboardInterrupt`` traceback when Ctrl-C stops it; there, not on the terminal, where the one
    ``error: interrupted`` line is all the user sees."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved, fd = os.dup(2), os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    try:
        os.dup2(fd, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)


def _collect(sj, job: Job, attempt: int, retries: int, root: Path) -> dict[str, Any] | None:
    """The job's log entry; a failure entry once it failed for good; None to start it again."""
    log = str(sj.paths.stdout)
    try:
        return {**sj.result(), "log": log}
    except FailedJobError as exc:  # raised in the job after its in-process retries, which left a failure file
        full = re.search(r"NoSpace: (no space left on [^\n]*)", str(exc))
        if full:  # the disk is full: every job after it would fail the same way, so the sweep stops
            raise NoSpace(full.group(1)) from None
        error = (claims.list_failures(root).get(job.run_id) or {}).get("error", "see its log")
        return failure_entry(job, f"failed: {error}", log=log)
    except UncompletedJobError:
        if attempt <= retries:
            return None
        claims.write_failure(root, job.run_id, {
            "job": job.label(), "attempts": attempt, "error": "worker process died", "log": log})
        return failure_entry(job, f"failed: worker died {attempt} times", log=log)


# -- slurm -------------------------------------------------------------------------------------
SLURM_KEYS = ("partition", "account", "gpus_per_task", "cpus_per_task", "mem", "time", "array_parallelism",
              "additional_parameters")


def load_slurm_config(path: str) -> dict[str, Any]:
    """A small TOML or JSON file with any of ``SLURM_KEYS`` (``additional_parameters``: extra sbatch flags),
    every value checked as its flag is (:func:`bloodbench.choices.slurm_value`): one error line otherwise."""
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except OSError as exc:
        raise BloodbenchError(f"--slurm-config {path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise BloodbenchError(f"--slurm-config {path} is not a text file (not UTF-8): give a TOML or JSON file, "
                              f"see docs/CLUSTER.md for an example") from None
    try:
        if p.suffix == ".json":
            data = json.loads(text)
        else:
            try:
                import tomllib
            except ImportError:  # Python 3.10: the same parser, as the tomli package
                import tomli as tomllib

            data = tomllib.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BloodbenchError(f"--slurm-config {path} is not valid {p.suffix.lstrip('.') or 'TOML'} "
                              f"({str(exc)[:80]}): see docs/CLUSTER.md for an example") from None
    data = data.get("slurm", data) if isinstance(data, dict) else data
    if not isinstance(data, dict):
        raise BloodbenchError(f"--slurm-config {path}: expected a table of Slurm options, got "
                              f"{type(data).__name__}: see docs/CLUSTER.md for an example")
    unknown = sorted(k if k.isprintable() else repr(k) for k in map(str, set(data) - set(SLURM_KEYS)))
    if unknown:
        raise BloodbenchError(f"--slurm-config {path}: unknown key(s) {', '.join(unknown)[:200]}; "
                              f"known: {', '.join(SLURM_KEYS)}")
    return {key: _checked(path, key, value) for key, value in data.items()}


def _checked(path: str, key: str, value: Any) -> Any:
    """One value of a config file, checked by the flags' own rule."""
    try:
        if key != "additional_parameters":
            return slurm_value(key, value)
        if not isinstance(value, dict):
            raise ValueError(f"expected a table of sbatch flags, got {type(value).__name__}")
        return dict(sbatch_flag(k, v) for k, v in value.items())
    except ValueError as exc:
        raise BloodbenchError(f"--slurm-config {path}: {key}: {exc}") from None


def slurm_parameters(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """sbatch parameters in submitit's Slurm names: defaults < config file < command-line options (both
    checked by the same rules before they get here)."""
    params: dict[str, Any] = {"job_name": "bloodbench", "gpus_per_task": 1, "cpus_per_task": 8, "mem": "32G",
                              "time": 120, "array_parallelism": 16}
    params.update(config)
    params.update({k: v for k, v in overrides.items() if v not in (None, {})})
    extra = {**config.get("additional_parameters", {}), **overrides.get("additional_parameters", {})}
    if extra:
        params["additional_parameters"] = extra
    return {k: v for k, v in params.items() if v is not None}


#: Where the sbatch text comes from: submitit has no public API for it, so a private function, in the
#: submitit range pyproject.toml pins (tests/test_sweep.py checks it is there and takes these arguments).
SBATCH_MAKER = ("submitit.slurm.slurm", "_make_sbatch_string")


def sbatch_script(folder: Path, n_tasks: int, params: dict[str, Any]) -> str:
    """The sbatch file submitit would write for an array of ``n_tasks``."""
    import importlib

    module, name = SBATCH_MAKER
    _make_sbatch_string = getattr(importlib.import_module(module), name, None)
    if _make_sbatch_string is None:
        raise BloodbenchError(f"submitit {submitit.__version__} has no {module}.{name}, which --dry-run uses to show "
                              f"the sbatch script: install the submitit range pyproject.toml names (>=1.5,<1.6)")

    command = f"{sys.executable} -u -m submitit.core._submit {folder}"
    try:
        return _make_sbatch_string(command=command, folder=folder, map_count=n_tasks, **params)
    except TypeError as exc:
        raise BloodbenchError(f"bad Slurm parameter: {exc}") from None


@dataclass
class Slurm:
    """Every pending job as one task of one Slurm job array. ``retries`` is both the in-task retry
    count after an exception and submitit's ``max_num_timeout`` (requeues after a time-out;
    pre-emptions are always requeued). The run log lists what went out, one entry per task (job id,
    log path); ``dry_run`` prints the array and its sbatch script instead, and logs nothing."""

    params: dict[str, Any]
    retries: int = 2
    dry_run: bool = False

    def run(self, jobs: list[Job], ctx: Context) -> RunLog:
        log = RunLog(ctx, jobs, {"executor": "slurm"}, past={}, progress=False, echo=False)
        root = Path(ctx.results)
        folder = root / "logs" / "slurm" / "%j"
        if self.dry_run:
            print(f"would submit {len(log.pending)} tasks as one Slurm job array with:")
            print(json.dumps(self.params, indent=1))
            print(sbatch_script(folder, max(1, len(log.pending)), self.params))
            return log
        missing = [tool for tool in ("sbatch", "srun") if shutil.which(tool) is None]
        if missing:
            raise BloodbenchError(f"--executor slurm needs Slurm's {' and '.join(missing)} on PATH, and this machine "
                                  f"has none: submit from a cluster login node, check what would go out with "
                                  f"--dry-run, or run here with --executor local")
        if not log.pending:
            return log
        worker_environment()  # sbatch exports the submitting environment to the tasks
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm", slurm_max_num_timeout=self.retries)
        ex.update_parameters(**{f"slurm_{k}": v for k, v in self.params.items()})
        with ex.batch():
            submitted = [ex.submit(JobTask(self.retries), job, ctx) for job in log.pending]
        subs = Submissions(root, "slurm", {"folder": str(folder), "parameters": self.params})
        for job, sj in zip(log.pending, submitted):
            subs.add(job, sj.job_id, str(sj.paths.stdout))
            log.record(job, {"kind": job.kind, "model": job.model, "seed": job.seed, "device": job.device,
                             "run_id": job.run_id, "job": job.label(), "status": f"submitted as Slurm job {sj.job_id}",
                             "job_id": sj.job_id, "log": str(sj.paths.stdout)})
        log.close()
        return log
