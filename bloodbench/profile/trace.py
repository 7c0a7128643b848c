"""torch.profiler traces of a model's forward pass, for TensorBoard, Perfetto and a markdown table.

Layout of one model's trace folder (``<trace_dir>/<model>/``, one TensorBoard "run")::

    <worker>.<timestamp>.pt.trace.json   written by tensorboard_trace_handler
                                         (`tensorboard --logdir <trace_dir>`, torch-tb-profiler)
    <worker>.json                        the same chrome-trace JSON under a plain name, for
                                         https://ui.perfetto.dev or chrome://tracing
    <worker>.top_ops.md                  top operators by self CPU (and self CUDA) time

``<worker>`` is ``<size>px-<device>-<precision>`` (plus ``-channels_last`` / ``-compiled``), so
several settings of one model appear as separate workers of the same run in TensorBoard and
each setting keeps its own files instead of overwriting another's.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from bloodbench.formatting import md_table
from bloodbench.profile.common import quiet_kineto
from bloodbench.profile.timing import make_input, prepare_model
from bloodbench.runtime.precision import autocast, check_precision

DEFAULT_TRACE_DIR = Path("reports") / "traces"


@dataclass
class TraceResult:
    dir: Path
    tensorboard_trace: Path
    perfetto_trace: Path
    top_ops: Path

    def as_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items()}


def _ms(us: float) -> str:
    return f"{us / 1e3:.3f}"


def top_ops_markdown(key_averages: Any, title: str, cuda: bool, top_k: int = 20) -> str:
    """Markdown tables of the heaviest operators, from ``prof.key_averages()``.

    Self time excludes children, so the rows add up rather than double-count nested ops.
    """
    events = [e for e in key_averages if not e.key.startswith("ProfilerStep")]
    total_cpu = sum(e.self_cpu_time_total for e in events) or 1.0
    out = [f"# {title}", "",
           "Times summed over the profiled steps; self = excluding child operators.", ""]

    def rows(sort_key: str) -> list[list[Any]]:
        ranked = sorted(events, key=lambda e: getattr(e, sort_key), reverse=True)[:top_k]
        table = []
        for e in ranked:
            row = [f"`{e.key}`", e.count, _ms(e.self_cpu_time_total), f"{100 * e.self_cpu_time_total / total_cpu:.1f}",
                   _ms(e.cpu_time_total)]
            if cuda:
                row += [_ms(e.self_device_time_total), _ms(e.device_time_total)]
            row.append(f"{e.self_cpu_memory_usage / 2**20:.2f}")
            table.append(row)
        return table

    headers = ["operator", "calls", "self CPU (ms)", "self CPU %", "CPU total (ms)"]
    if cuda:
        headers += ["self CUDA (ms)", "CUDA total (ms)"]
    headers.append("self CPU mem (MiB)")
    out += ["## Top operators by self CPU time", "", md_table(rows("self_cpu_time_total"), headers, numeric_from=1)]
    if cuda:
        out += ["", "## Top operators by self CUDA time", "",
                md_table(rows("self_device_time_total"), headers, numeric_from=1)]
    return "\n".join(out) + "\n"


def worker_name(input_shape: Sequence[int], device: torch.device, precision: str, channels_last: bool = False,
                compile: bool = False) -> str:
    """The per-setting name of a trace's files: one model's settings must not overwrite each other."""
    tags = ["channels_last"] * bool(channels_last) + ["compiled"] * bool(compile)
    return "-".join([f"{input_shape[-1]}px", device.type, precision, *tags])


def trace_model(model: nn.Module, input_shape: Sequence[int], trace_dir: str | Path, name: str,
                device: torch.device | str = "cpu", precision: str = "fp32", channels_last: bool = False,
                compile: bool = False, active: int = 3, top_k: int = 20) -> TraceResult:
    """Profile ``active`` forward passes (after 1 skipped + 1 warm-up step) and write the traces.

    Traced separately from latency timing: profiler overhead must not leak into the figures.
    """
    device = torch.device(device)
    check_precision(precision, device)
    from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

    run_dir = Path(trace_dir) / name
    run_dir.mkdir(parents=True, exist_ok=True)
    worker = worker_name(input_shape, device, precision, channels_last, compile)
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    before = set(run_dir.glob("*.pt.trace.json"))
    m = prepare_model(model, device, channels_last, compile)
    x = make_input(input_shape, device, channels_last)
    wait, warmup = 1, 1
    started = time.time()
    with torch.inference_mode(), autocast(device, precision):
        m(x)  # compile / lazy init outside the trace
        with quiet_kineto(), profile(activities=activities,
                                     schedule=schedule(wait=wait, warmup=warmup, active=active, repeat=1),
                                     on_trace_ready=tensorboard_trace_handler(str(run_dir), worker_name=worker),
                                     record_shapes=True, profile_memory=True, with_stack=False) as prof:
            for _ in range(wait + warmup + active):
                m(x)
                if cuda:
                    torch.cuda.synchronize(device)
                prof.step()
    new = sorted(set(run_dir.glob("*.pt.trace.json")) - before, key=lambda p: p.stat().st_mtime)
    if not new:
        raise RuntimeError(f"torch.profiler wrote no trace into {run_dir}")
    tb_trace = new[-1]
    perfetto = run_dir / f"{worker}.json"
    shutil.copyfile(tb_trace, perfetto)
    title = (f"{name}: top operators, input {tuple(input_shape)}, {device.type}, {precision}"
             f"{', channels_last' if channels_last else ''}{', compiled' if compile else ''} "
             f"({active} steps, {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))})")
    top_ops = run_dir / f"{worker}.top_ops.md"
    top_ops.write_text(top_ops_markdown(prof.key_averages(), title, cuda, top_k))
    return TraceResult(run_dir, tb_trace, perfetto, top_ops)
