"""The report's Environment table: what the records were measured with, summarised.

A value that differs between records is listed when there are a few (two Python versions), and
summarised as the newest and a count when there are many (ten git commits, five kernels): a reader
wants to know which code made the newest figures, not every commit the store ever saw.
"""

from __future__ import annotations

from typing import Any, Iterable

from bloodbench.formatting import machine_cpu_name, machine_gpu_name, md_table

LISTED = 3  # up to this many distinct values are listed; more are summarised


def _key(value: str) -> tuple:
    return (0, int(value), "") if value.isdigit() else (1, 0, value)


def summarise(values: Iterable[tuple[str, Any]], what: str = "") -> str:
    """(date, value) pairs as one cell: the distinct values, or the newest and how many there are."""
    dated: dict[str, str] = {}
    for when, value in values:
        if value in (None, ""):
            continue
        value = str(value)
        dated[value] = max(dated.get(value, ""), str(when or ""))
    if not dated:
        return "—"
    if len(dated) <= LISTED:
        return ", ".join(sorted(dated, key=_key))
    newest = max(dated, key=lambda v: (dated[v], v))
    extra = f"; {sum(v.endswith('-dirty') for v in dated)} with uncommitted changes" if what == "commits" else ""
    return f"{newest} (the newest of {len(dated)}{extra})"


def environment_table(records: list[dict], benchmarks: list[dict]) -> str:
    rows: dict[str, list[tuple[str, Any]]] = {k: [] for k in (
        "GPU", "CPU", "CPU threads", "torch", "CUDA", "cuDNN", "Python", "platform", "bloodbench", "git commits")}
    for r in records:
        e, when = r.get("env") or {}, str(r.get("created_at") or "")
        if e.get("device") == "cuda":
            rows["GPU"].append((when, e.get("device_name")))
        if r.get("kind") == "profile" and r.get("device") == "cuda":
            rows["GPU"].append((when, r.get("device_name")))
        for label, key in (("CPU", "cpu_name"), ("CPU threads", "cpu_threads"), ("torch", "torch"), ("CUDA", "cuda"),
                           ("cuDNN", "cudnn"), ("Python", "python"), ("platform", "platform"),
                           ("bloodbench", "bloodbench"), ("git commits", "git_commit")):
            rows[label].append((when, e.get(key)))
    for b in benchmarks:
        mi, when = b.get("machine_info") or {}, str(b.get("datetime") or "")
        for label, value in (("torch", mi.get("torch")), ("CUDA", mi.get("cuda")), ("cuDNN", mi.get("cudnn")),
                             ("Python", mi.get("python_version")), ("CPU threads", mi.get("torch_threads")),
                             ("CPU", machine_cpu_name(mi)), ("GPU", machine_gpu_name(mi)),
                             ("git commits", (b.get("commit_info") or {}).get("id"))):
            rows[label].append((when, value))
        for bench in b.get("benchmarks", []):
            extra = bench.get("extra_info") or {}
            if extra.get("device") == "cuda":
                rows["GPU"].append((when, extra.get("device_name")))
    dates = sorted(str(r.get("created_at"))[:10] for r in records if r.get("created_at"))
    dates = sorted(dates + [str(b.get("datetime"))[:10] for b in benchmarks if b.get("datetime")])
    cells = [[label, summarise(values, "commits" if label == "git commits" else "")]
             for label, values in rows.items() if label not in ("CUDA", "cuDNN")]
    cells.insert(4, ["CUDA / cuDNN", f"{summarise(rows['CUDA'])} / {summarise(rows['cuDNN'])}"])
    cells[-1][0] = "git commit"
    cells.append(["records dated", f"{dates[0]} … {dates[-1]}" if dates else "—"])
    return md_table(cells, ["", "measured on"])
