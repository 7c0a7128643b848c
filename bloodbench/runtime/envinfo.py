"""The facts every result record carries so a figure can be traced to where it was measured."""

from __future__ import annotations

import os
import platform
import random
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from bloodbench._version import __version__


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices).

    On CPU that makes a run repeat exactly (the resume test relies on it). CUDA training keeps
    ``cudnn.benchmark`` on for speed, so GPU runs repeat only up to kernel-choice noise; the seed
    spread reported over 3 seeds is much larger than that.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(device: str = "auto") -> torch.device:
    from bloodbench.errors import BloodbenchError

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BloodbenchError(f"--device {device} asked for, but there is no GPU here (CUDA is not available): "
                              f"use --device cpu or auto")
    if device != "cpu" and not device.startswith("cuda"):
        raise BloodbenchError(f"unknown device {device!r}: use auto, cpu or cuda")
    return torch.device(device)



def device_kind(device: str) -> str:
    """``cpu`` or ``cuda``; ``auto`` is decided here, ``cuda`` is taken on trust (a Slurm login node has none)."""
    if device == "cpu" or device.startswith("cuda"):
        return device.split(":")[0]
    return resolve_device(device).type

def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device | str, threads: int | None = None) -> str:
    """The GPU's name, or the CPU's with the threads used (``threads``, else torch's current count)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    n = threads or torch.get_num_threads()
    return f"{cpu_name()} ({n} thread{'' if n == 1 else 's'})"


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the bloodbench checkout (with ``-dirty`` if it has changes), if any.

    ``$BLOODBENCH_GIT_COMMIT`` names it for a copy of the tree without ``.git`` (the GPU one-shot's).
    """
    if os.environ.get("BLOODBENCH_GIT_COMMIT"):
        return os.environ["BLOODBENCH_GIT_COMMIT"]
    here = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_version(name: str) -> str | None:
    """Installed version of ``name``, None if absent: counts depend on fvcore's and torchvision's versions."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment(device: torch.device | str = "cpu") -> dict:
    """Device, library versions, commit: the provenance block of every record."""
    device = torch.device(device)
    return {
        "device": device.type,
        "device_name": device_name(device),
        "cpu_name": cpu_name(),
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torchvision": package_version("torchvision"),
        "fvcore": package_version("fvcore"),
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hostname": platform.node(),
        "git_commit": git_commit(),
        "bloodbench": __version__,
        "pid": os.getpid(),
    }
