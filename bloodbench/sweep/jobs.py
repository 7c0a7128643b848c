"""The one job function every executor runs: claim the run, train or profile it, release.

``bloodbench run`` in this process, submitit's local executor (several jobs at once) and a
Slurm job array all call :func:`run_job` (through :class:`JobTask` for submitit), so a record
made on a cluster is the same as one made here. Module-level on purpose: submitit pickles it.
"""

from __future__ import annotations

import errno
import functools
import os
import time
import traceback
from dataclasses import dataclass
from typing import Any

import submitit

from bloodbench.errors import BloodbenchError
from bloodbench.store.fsutil import NoSpace, no_space
from bloodbench.store.results import ResultsStore
from bloodbench.store.verdicts import is_noisy
from bloodbench.sweep import claims

#: Seconds a profile job waits for a busy machine to calm down before it is deferred to a later run.
QUIET_WAIT_S = 60.0


@dataclass(frozen=True)
class Context:
    """What a job needs besides itself; paths absolute, so a worker started elsewhere finds them."""

    dataset: str
    size: int
    results: str
    data_dir: str | None = None
    verify: bool = True
    threads: int | None = None  # torch CPU threads per worker, so N workers x threads <= cores
    progress: bool = True  # per-epoch lines; a worker's log is no terminal, so no bars there
    quiet_wait_s: float | None = QUIET_WAIT_S  # profiles: wait this long for a quiet machine; None: never check


@functools.lru_cache(maxsize=1)
def _data(dataset: str, size: int, data_dir: str | None, verify: bool):
    """The split tensors, loaded once per process (in-process runs reuse them job after job)."""
    from bloodbench.data import load_dataset

    return load_dataset(dataset, size, data_dir, verify=verify)


def job_config(job, ctx: Context):
    """The job's TrainConfig, as the worker's device resolves it (the record's run id comes from it)."""
    from bloodbench.train import TrainConfig

    return TrainConfig.build(job.model, dataset=ctx.dataset, size=ctx.size, seed=job.seed, device=job.device,
                             **job.options)


def recorded(store: ResultsStore, kind: str, run_id: str) -> bool:
    """A quiet profile record (a noisy one is to be redone), or a train record that is finished (or diverged:
    rerunning would diverge again)."""
    rec = store.finished(kind, run_id, or_diverged=True)
    return rec is not None and not (kind == "profile" and is_noisy(rec))


def quiet_enough(profile_cfg, ctx: Context) -> str | None:
    """None when the machine is quiet enough to time on (waiting up to ``ctx.quiet_wait_s``), else why not."""
    if ctx.quiet_wait_s is None:
        return None
    from bloodbench.profile import noise

    return noise.wait_until_quiet(profile_cfg.threads or 1, ctx.quiet_wait_s)


def run_job(job, ctx: Context) -> dict[str, Any]:
    """Run one job here, unless its record exists or another live worker holds its claim.

    Returns the run-log entry: kind, model, seed, device, run_id, seconds, status.
    """
    import torch

    from bloodbench.config import ProfileConfig
    from bloodbench.profile.record import profile_model
    from bloodbench.runtime.envinfo import resolve_device
    from bloodbench.train import Trainer, TrainingDiverged

    if ctx.threads:
        torch.set_num_threads(ctx.threads)
    store = ResultsStore(ctx.results)
    device = resolve_device(job.device)
    if job.kind == "train":
        cfg = job_config(job, ctx)
        run_id = cfg.run_id
    else:
        profile_cfg = ProfileConfig.build(dataset=ctx.dataset, size=ctx.size, device=device)
        run_id = profile_cfg.run_id(job.model)
    entry: dict[str, Any] = {"kind": job.kind, "model": job.model, "seed": job.seed, "device": device.type,
                             "run_id": run_id, "host": claims.host(), "pid": os.getpid(), "seconds": 0.0}
    if run_id != job.run_id:  # e.g. planned for a bf16 GPU, run on one without bf16
        entry["planned_run_id"] = job.run_id
    claim = claims.acquire(store.root, run_id, {"job": job.label()})
    if not isinstance(claim, claims.Claim):
        return {**entry, "status": f"running elsewhere ({claim.get('host')} pid {claim.get('pid')})"}
    if recorded(store, job.kind, run_id):  # checked under the claim: a worker may just have finished it
        claim.release()
        return {**entry, "status": "already recorded"}
    with claim:
        if claim.took_over:
            print(f"{job.label()}: {claim.took_over}", flush=True)
            entry["took_over"] = claim.took_over
        t0 = time.perf_counter()
        try:
            if job.kind == "train":
                trainer = Trainer(cfg, results=str(store.root), data_dir=ctx.data_dir, verify=ctx.verify,
                                  progress=ctx.progress, data=_data(ctx.dataset, ctx.size, ctx.data_dir, ctx.verify))
                try:
                    rec = trainer.fit()
                    status = (f"{rec['stop_reason']} after {rec['epochs_run']} epochs, "
                              f"test acc {100 * rec['test']['acc']:.2f} %"
                              + (", learned nothing" if rec.get("learned_nothing") else ""))
                except TrainingDiverged as exc:  # recorded as diverged: a result, not a failure
                    status = f"diverged: {exc}"
            elif (busy := quiet_enough(profile_cfg, ctx)) is not None:  # timed beside other work: not now
                claims.write_failure(store.root, job.run_id, {"job": job.label(), "deferred": busy,
                                                              "error": f"deferred: {busy}"})
                return {**entry, "status": f"deferred: {busy}; run again when the machine is quieter",
                        "deferred": busy}
            else:
                rec = profile_model(job.model, profile_cfg, results=store.root)
                status = f"noisy: {'; '.join(rec['latency']['noise_reasons'])}" if is_noisy(rec) else "ok"
        finally:
            entry["seconds"] = round(time.perf_counter() - t0, 2)
    claims.clear_failure(store.root, job.run_id)
    return {**entry, "status": status}


def _log_path() -> str | None:
    """This submitit task's stdout log, when running under submitit."""
    try:
        return str(submitit.JobEnvironment().paths.stdout)
    except RuntimeError:
        return None


class JobTask(submitit.helpers.Checkpointable):
    """:func:`run_job` with up to ``retries`` more attempts after an exception.

    Pre-emption and time-outs are submitit's: it calls :meth:`checkpoint` (inherited), which
    requeues this same task; the trainer then resumes from its ``last.pt`` of the last epoch and
    takes over its own claim (same Slurm task, or a dead pid on this host).
    """

    def __init__(self, retries: int = 2) -> None:
        self.retries = retries

    def __call__(self, job, ctx: Context) -> dict[str, Any]:
        return run_with_retries(job, ctx, self.retries, log=_log_path())


def retryable(exc: BaseException) -> bool:
    """Whether another attempt may get past ``exc``: not bad input (:class:`BloodbenchError`), not a full or
    read-only disk, not a permission refused; a crash, a lost node or a CUDA hiccup may."""
    if isinstance(exc, BloodbenchError) or no_space(exc) is not None:
        return False
    return not (isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM))


def run_with_retries(job, ctx: Context, retries: int, log: str | None = None) -> dict[str, Any]:
    """Attempt a job up to ``1 + retries`` times; after the last failure leave ``failures/<run_id>.json``.

    An error a retry cannot fix (:func:`retryable`: bad input, a full disk, a permission) ends the job at
    once; a full disk is raised as :class:`NoSpace`, which ends the whole sweep.
    """
    for attempt in range(retries + 1):
        try:
            return run_job(job, ctx)
        except Exception as exc:
            again = retryable(exc) and attempt < retries
            print(f"{job.label()}: attempt {attempt + 1} of {retries + 1} failed: {type(exc).__name__}: {exc}"
                  + ("; retrying (training resumes from its last checkpoint)" if again else
                     "" if attempt == retries else "; not retried: another attempt would meet it again"), flush=True)
            if not again:
                full = no_space(exc)
                try:
                    claims.write_failure(ResultsStore(ctx.results).root, job.run_id, {
                        "job": job.label(), "attempts": attempt + 1, "error": f"{type(full or exc).__name__}: {full or exc}",
                        "retryable": retryable(exc), "traceback": traceback.format_exc(limit=8), "log": log})
                except NoSpace:
                    pass  # no room for the failure file either: the error line says it all
                if full is not None and full is not exc:
                    raise full from None
                raise
            traceback.print_exc()
    raise AssertionError("unreachable")
