"""Claim files: one worker at a time per run, across processes and hosts sharing a results folder.

``<results>/claims/<run_id>.json`` is created with ``O_CREAT | O_EXCL``, which one process
wins even on NFS v3+ and Lustre. It names its owner (host, pid, start time); a background
thread touches it every ``HEARTBEAT_S`` so other hosts can tell a live owner from a dead one.
A claim is stale when its owner's pid is gone on this host, or, from another host, when its
heartbeat is older than ``STALE_AFTER_S``, or when it is empty or unreadable for longer than
``UNREADABLE_GRACE_S`` (its writer died mid-write, e.g. on a full disk); a stale claim is taken over
by renaming it away (only one renamer wins) and creating a new one, and the take-over is reported.
Taking over goes through a short ``.<run_id>.takeover`` lock, so two workers that both find
the same stale claim cannot both replace it.
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bloodbench.store.fsutil import atomic_write_text, no_space
from bloodbench.store.results import utc_now

HEARTBEAT_S = 30.0
STALE_AFTER_S = 600.0  # 20 missed heartbeats: a host under load can stall, a dead one stays silent
UNREADABLE_GRACE_S = 10.0  # an empty claim file older than this was never finished (its writer died)


def claims_dir(root: str | os.PathLike) -> Path:
    return Path(root) / "claims"


def claim_path(root: str | os.PathLike, run_id: str) -> Path:
    return claims_dir(root) / f"{run_id}.json"


def host() -> str:
    return platform.node() or "host"


def file_stamp(when: str | None = None) -> str:
    """``<utc time>-<host>-<pid>`` for file names that parallel workers on many hosts never share."""
    return (when or utc_now()).replace(":", "").replace("+0000", "Z") + f"-{host()}-{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def read_claim(path: Path) -> dict[str, Any] | None:
    """The claim's owner, with ``heartbeat_age_s``; None if there is no claim (or it vanished).

    A claim that is empty, not JSON or not an object is ``unreadable``: one being written right now
    (for :data:`UNREADABLE_GRACE_S`), else a worker that died writing it (a full disk): stale.
    """
    try:
        age = max(0.0, time.time() - path.stat().st_mtime)
    except FileNotFoundError:
        return None
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError:  # no read permission: unreadable as well
        text = b""
    try:
        owner = json.loads(text)
    except ValueError:
        owner = None
    if not isinstance(owner, dict):
        return {"host": "?", "pid": -1, "heartbeat_age_s": age, "unreadable": True}
    owner["heartbeat_age_s"] = age
    return owner


def slurm_task() -> str | None:
    """This process's Slurm task (``<array job>_<index>``, or the job id), if it is one."""
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '0')}"
    return os.environ.get("SLURM_JOB_ID")


def stale_reason(owner: dict[str, Any], stale_after_s: float = STALE_AFTER_S) -> str | None:
    """Why the owner is presumed dead, or None while it looks alive."""
    if owner.get("unreadable"):
        return (f"the claim file is empty or unreadable ({owner['heartbeat_age_s']:.0f}s old): its worker died "
                f"writing it" if owner["heartbeat_age_s"] > UNREADABLE_GRACE_S else None)
    if owner.get("slurm_task") and owner["slurm_task"] == slurm_task():
        return f"Slurm task {owner['slurm_task']} was requeued (pre-empted or timed out) and is back"
    if owner.get("host") == host() and isinstance(owner.get("pid"), int) and owner["pid"] > 0:
        return None if _pid_alive(owner["pid"]) else f"pid {owner['pid']} on {owner['host']} is gone"
    if owner["heartbeat_age_s"] > stale_after_s:
        return f"no heartbeat from {owner.get('host')} pid {owner.get('pid')} for {owner['heartbeat_age_s']:.0f}s"
    return None


@dataclass
class Claim:
    """A held claim; ``took_over`` says whose stale claim it replaced. Release it when done."""

    path: Path
    owner: dict[str, Any]
    took_over: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start_heartbeat(self, every_s: float = HEARTBEAT_S) -> None:
        def beat() -> None:
            while not self._stop.wait(every_s):
                try:
                    os.utime(self.path)
                except OSError:
                    return  # taken over or removed: nothing left to refresh

        self._thread = threading.Thread(target=beat, name=f"claim-{self.path.stem}", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop the heartbeat and remove the claim if it is still ours."""
        self._stop.set()
        current = read_claim(self.path)
        if current and current.get("token") == self.owner["token"]:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def acquire(root: str | os.PathLike, run_id: str, info: dict[str, Any] | None = None,
            stale_after_s: float = STALE_AFTER_S, heartbeat_s: float | None = HEARTBEAT_S) -> Claim | dict[str, Any]:
    """Claim ``run_id``: a :class:`Claim`, or the live owner's dict when another worker holds it."""
    path = claim_path(root, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = {"run_id": run_id, "host": host(), "pid": os.getpid(), "started_at": utc_now(),
             "slurm_task": slurm_task(), "token": uuid.uuid4().hex, **(info or {})}
    took_over = None
    for _ in range(20):  # races with other workers end within a few rounds
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            current = read_claim(path)
            if current is None:
                continue  # released meanwhile: try again
            reason = stale_reason(current, stale_after_s)
            if reason is None:
                return current
            lock = path.with_name(f".{run_id}.takeover")
            try:
                lock_fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:  # another worker is taking over right now
                try:
                    if time.time() - lock.stat().st_mtime > 60:  # it died mid-take-over
                        lock.unlink(missing_ok=True)
                except FileNotFoundError:
                    pass
                time.sleep(0.2)
                continue
            try:
                again = read_claim(path)  # still the same stale claim, not a fresh one?
                if again and again.get("token") == current.get("token") and stale_reason(again, stale_after_s):
                    path.unlink(missing_ok=True)
                    took_over = f"took over the stale claim on {run_id}: {reason}"
            finally:
                os.close(lock_fd)
                lock.unlink(missing_ok=True)
            continue
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(owner, f, indent=1)
        except BaseException as exc:  # a full disk: leave no empty claim behind to block the run
            path.unlink(missing_ok=True)
            full = no_space(exc, path.parent)
            if full is not None:
                raise full from None
            raise
        claim = Claim(path, owner, took_over)
        if heartbeat_s:
            claim.start_heartbeat(heartbeat_s)
        return claim
    return read_claim(path) or {"host": "?", "pid": -1}


def list_claims(root: str | os.PathLike, stale_after_s: float = STALE_AFTER_S) -> dict[str, dict[str, Any]]:
    """Every claim under ``root`` by run id, each with ``stale`` (the reason, or None)."""
    out = {}
    for path in sorted(claims_dir(root).glob("*.json")):
        owner = read_claim(path)
        if owner is not None:
            owner["stale"] = stale_reason(owner, stale_after_s)
            out[path.stem] = owner
    return out


def write_failure(root: str | os.PathLike, run_id: str, failure: dict[str, Any]) -> Path:
    """``failures/<run_id>.json``: what the last attempt said and where its log is."""
    path = Path(root) / "failures" / f"{run_id}.json"
    atomic_write_text(path, json.dumps({"run_id": run_id, "host": host(), "at": utc_now(), **failure}, indent=1) + "\n")
    return path


def clear_failure(root: str | os.PathLike, run_id: str) -> None:
    (Path(root) / "failures" / f"{run_id}.json").unlink(missing_ok=True)


def list_failures(root: str | os.PathLike) -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted((Path(root) / "failures").glob("*.json")):
        try:
            out[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return out
