"""``bloodbench run --status``: each planned job as pending, submitted, running, finished or failed.

Read from the shared results folder only (records, claims, failures, submissions), so it
answers the same on any host that sees the folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Sequence

from bloodbench.store.results import ResultsStore
from bloodbench.sweep import claims
from bloodbench.sweep.executors import latest_submissions
from bloodbench.sweep.run import Job


def _slurm_state(sub: dict[str, Any]) -> str | None:
    """Slurm's word on a submitted task, where ``sacct`` can be asked."""
    if sub.get("executor") != "slurm" or not sub.get("folder") or shutil.which("sacct") is None:
        return None
    import submitit

    try:
        return submitit.SlurmJob(folder=sub["folder"], job_id=sub["job_id"]).state
    except Exception:  # sacct down or the job forgotten: the files still tell the story
        return None


def job_states(jobs: Sequence[Job], results: str | None) -> list[dict[str, Any]]:
    """One row per job: state, where (host/pid or Slurm job id), log path and detail."""
    store = ResultsStore(results)
    root = Path(store.root)
    held, failed, subs = claims.list_claims(root), claims.list_failures(root), latest_submissions(root)
    rows = []
    for j in jobs:
        sub, claim, fail = subs.get(j.run_id, {}), held.get(j.run_id), failed.get(j.run_id)
        row = {"job": j.label(), "run_id": j.run_id, "state": "pending", "where": "", "log": sub.get("log", ""),
               "detail": ""}
        if j.done:
            rec = store.get(j.kind, j.run_id) or {}
            row["state"] = "diverged" if rec.get("status") == "diverged" else "finished"
        elif claim is not None:
            row["state"] = "stale claim" if claim["stale"] else "running"
            row["where"] = f"{claim.get('host')} pid {claim.get('pid')}"
            row["detail"] = claim["stale"] or f"heartbeat {claim['heartbeat_age_s']:.0f}s ago"
        elif fail is not None and fail.get("deferred"):  # a profile a busy machine put off: still to do
            row.update(state="pending", detail=f"deferred: {fail['deferred']}")
        elif fail is not None:
            row.update(state="failed", detail=fail.get("error", ""), log=fail.get("log") or row["log"])
        elif sub.get("executor") == "slurm":  # a local sweep's job without claim or record was cut short
            row["state"] = "submitted"
            row["detail"] = _slurm_state(sub) or ""
        if row["state"] == "pending" and j.note and not row["detail"]:
            row["detail"] = j.note
        if sub and not row["where"]:
            row["where"] = f"{sub.get('executor')} job {sub.get('job_id')}"
        rows.append(row)
    return rows
