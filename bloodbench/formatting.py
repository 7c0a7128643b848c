"""Helpers shared by the leaderboard, the report and explain, so they print alike.

One way each to format a number that may be missing, a markdown table, a class name,
a PNG, a device name from pytest-benchmark's ``machine_info``, and the output folder.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
from tabulate import tabulate

from bloodbench.errors import BloodbenchError


def fmt(value: Any, spec: str, scale: float = 1.0, sign: bool = False) -> str:
    """``format(value * scale, spec)``, or "" for None / NaN / NA: a gap must never print as 0."""
    if value is None or pd.isna(value):
        return ""
    return format(float(value) * scale, ("+" if sign else "") + spec)


def mean_std(mean: Any, std: Any, spec: str, scale: float = 1.0) -> str:
    """"mean ± std" over seeds; the std is left out where there is one seed (it is undefined). A std that
    the mean's digits would print as zero ("± 0.000") gets one significant digit ("± 0.0004")."""
    if mean is None or pd.isna(mean):
        return ""
    spread = fmt(std, spec, scale)
    if spread and float(spread.replace(",", "")) == 0 and float(std) != 0:
        spread = f"{float(std) * scale:.1g}"
        spread = format(float(spread), "f").rstrip("0") if "e" in spread else spread
    return fmt(mean, spec, scale) + (f" ± {spread}" if spread else "")


def fmt_count(value: Any, spec: str = ".1f") -> str:
    """A mean of whole numbers (epochs over seeds): "30" when it is whole, not "30.0"."""
    if value is None or pd.isna(value):
        return ""
    return str(int(value)) if float(value).is_integer() else fmt(value, spec)


def device_label(name: str | None) -> str | None:
    """A device name as recorded, with older records' "(1 threads)" read as "(1 thread)"."""
    return re.sub(r"\b1 threads\b", "1 thread", name) if name else name


def _cell(value: Any) -> str:
    """A table cell as text, pipes escaped so a name with '|' cannot split the row."""
    return "" if value is None else str(value).replace("|", "\\|")


def md_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], numeric_from: int | None = None) -> str:
    """A GitHub markdown table of pre-formatted cells (tabulate must not re-round them).

    ``numeric_from``: columns from this index on are right-aligned (numbers).
    """
    colalign = None
    if numeric_from is not None:
        colalign = ["left"] * numeric_from + ["right"] * (len(headers) - numeric_from)
    return tabulate([[_cell(v) for v in row] for row in rows], headers=[_cell(h) for h in headers],
                    tablefmt="github", disable_numparse=True, colalign=colalign)


def short_name(name: str, width: int = 22) -> str:
    """Class names that fit a tick label or a title: BloodMNIST's 'immature granulocytes(myelocytes,
    metamyelocytes and promyelocytes)' becomes 'immature granulocytes'."""
    name = name.split("(")[0].strip() or name
    return name if len(name) <= width else name[: width - 1] + "…"


def png_bytes(fig, dpi: float, **savefig: Any) -> bytes:
    """PNG of a figure without the ``Software`` (matplotlib version) tag, so equal figures are equal bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None}, **savefig)
    return buf.getvalue()


def machine_cpu_name(machine: dict) -> str | None:
    """CPU brand from pytest-benchmark's ``machine_info`` (``cpu`` is a py-cpuinfo dict or a string)."""
    cpu = machine.get("cpu")
    if isinstance(cpu, dict):
        cpu = cpu.get("brand_raw") or cpu.get("brand")
    return cpu or None


def machine_gpu_name(machine: dict) -> str | None:
    """GPU name from ``machine_info`` (``gpu`` / ``gpu_name``, a string or a dict with ``name``)."""
    gpu = machine.get("gpu") or machine.get("gpu_name")
    if isinstance(gpu, dict):
        gpu = gpu.get("name")
    return gpu or None


def machine_device_name(machine: dict, device: str | None) -> str | None:
    """The name of the device a benchmark ran on: the GPU for cuda, else the CPU."""
    if device == "cuda":
        return machine_gpu_name(machine)
    return machine_cpu_name(machine) or machine.get("processor")
