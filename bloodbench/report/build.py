"""``reports/``: README with the leaderboard, environment and plots, plus one card per model.

Regenerated from the records alone and deterministic: the same records give
byte-identical files (no clock, sorted iteration, stable PNGs), so a diff of
``reports/`` shows only what the results changed.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from bloodbench.errors import BloodbenchError
from bloodbench.explain.files import OUTPUT_FILES as EXPLAIN_FILES
from bloodbench.formatting import fmt, fmt_count, md_table, mean_std
from bloodbench.leaderboard import (
    Leaderboard,
    aggregate_training,
    assemble_leaderboard,
    cost_frame,
    pareto_front,
    read_benchmark_json,
    train_frame,
)
from bloodbench.leaderboard.graphs_column import setting_label
from bloodbench.report import plots
from bloodbench.report.environment import environment_table
from bloodbench.report.pick import pick_section
from bloodbench.report.recipe import recipe_section
from bloodbench.report.walltime import time_by_model
from bloodbench.report.weights_card import weights_section
from bloodbench.store.fsutil import atomic_write_bytes, output_dir
from bloodbench.store.results import model_info, read_results
from bloodbench.store.schema import is_finished


def _slug(*parts: Any) -> str:
    """A file name from ``parts``: only letters, digits, ``.``, ``_``, ``+`` and ``-``, never a leading
    dot, so no name (a model called ``../../x``) can leave its folder. Real model names stay as they are."""
    name = re.sub(r"[^A-Za-z0-9._+-]", "-", "_".join(str(p) for p in parts))
    return re.sub(r"^\.+", "-", name) or "-"


class _Writer:
    """Collects written paths so stale generated files can be removed afterwards."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.written: list[Path] = []

    def text(self, rel: str, text: str) -> Path:
        return self.bytes(rel, text.encode())

    def bytes(self, rel: str, data: bytes) -> Path:
        path = self.out / rel
        if not path.resolve().is_relative_to(self.out.resolve()):  # the names are slugs: a bug, refused
            raise BloodbenchError(f"refusing to write {path}: it is outside the output folder {self.out}")
        if not (path.is_file() and path.read_bytes() == data):  # keep mtimes of unchanged files
            atomic_write_bytes(path, data)
        self.written.append(path)
        return path

    def figure(self, rel: str, fig) -> str:
        self.bytes(rel, plots.png_bytes(fig))
        return rel

    def prune(self, folders: Sequence[str]) -> None:
        keep = {p.resolve() for p in self.written}
        for folder in folders:
            for path in sorted((self.out / folder).glob("*")):
                if path.is_file() and path.suffix in (".png", ".md") and path.resolve() not in keep:
                    path.unlink()


# --------------------------------------------------------------------------------------
# model cards
# --------------------------------------------------------------------------------------
def model_meta(name: str, records: list[dict]) -> dict[str, str | None]:
    """Description and origin (and a plug-in's source) from the registry, else from the records' copy of it."""
    info = model_info(name, records)
    return {**{k: info.get(k) or "—" for k in ("family", "description", "origin")}, "plugin": info.get("plugin")}


def _explain_links(out: Path, name: str) -> list[str]:
    folder = out / "explain" / _slug(name)
    lines = []
    for fname, what in EXPLAIN_FILES.items():
        if (folder / fname).is_file():
            rel = f"../explain/{_slug(name)}/{fname}"
            lines.append(f"![{what}]({rel})" if fname.endswith(".png") else f"- [{what}]({rel})")
    return lines


def _cost_tables(profiles: pd.DataFrame) -> list[str]:
    rows = []
    for r in profiles.sort_values(["device", "precision", "source", "created_at"], kind="stable").itertuples():
        noisy = getattr(r, "latency_noisy", None)
        noisy = False if noisy is None or pd.isna(noisy) else bool(noisy)
        rows.append([r.device, r.device_name or "", setting_label(r.precision, getattr(r, "cuda_graphs", False)),
                     fmt(r.latency_p50_ms, ".3f") + (" (noisy)" if noisy and pd.notna(r.latency_p50_ms) else ""),
                     fmt(r.latency_p90_ms, ".3f"), fmt(r.latency_p99_ms, ".3f"), fmt(r.throughput, ",.0f"),
                     fmt(r.throughput_batch_size, ".0f"), fmt(r.peak_memory_mb, ".1f"), r.source, str(r.created_at)[:10]])
    if not rows:
        return ["_Not profiled yet: `bloodbench profile --all`._", ""]
    return [md_table(rows, ["device", "device name", "precision", "p50 latency (ms)", "p90 latency (ms)",
                            "p99 latency (ms)", "peak throughput (img/s)", "at batch", "peak mem (MiB)", "source",
                            "date"]), "",
            "Latency: batch 1, per image; (noisy): the profile's timing rounds disagreed or the machine was "
            "loaded, so the figure may read high. Throughput: best images/s over the batch sizes tried, reached at "
            "the batch size given. Each row is one machine's: compare rows of one machine only.", ""]


def _top_modules(profile_recs: list[dict]) -> list[str]:
    """The largest MAC consumers, from the fp32 profile (MACs do not depend on the device)."""
    recs = sorted(profile_recs, key=lambda r: (r.get("precision") != "fp32", r.get("device") != "cuda",
                                               str(r.get("created_at")), r.get("run_id", "")))
    rec = next((r for r in recs if r.get("top_modules")), None)
    if rec is None:
        return []
    total = float(rec.get("macs") or 0) or sum(float(m.get("macs") or 0) for m in rec["top_modules"])
    mods = sorted(rec["top_modules"], key=lambda m: (-float(m.get("macs") or 0), str(m.get("module"))))[:10]
    rows = [[f"`{m.get('module')}`", fmt(m.get("macs"), ",.2f", 1e-6),
             fmt(float(m.get("macs") or 0) / total if total else None, ".1%")] for m in mods]
    lines = ["**Where the MACs go** (top modules, fvcore; total "
             f"{fmt(rec.get('macs'), ',.2f', 1e-6)} M MACs/image, {fmt(rec.get('params'), ',.0f')} params):", "",
             md_table(rows, ["module", "MACs (M)", "share"]), ""]
    unsupported = rec.get("unsupported_ops") or {}
    if unsupported:
        lines += ["Ops fvcore does not count: " + ", ".join(f"`{k}` ×{v}" for k, v in sorted(unsupported.items())),
                  ""]
    return lines


def model_card(name: str, train_recs: list[dict], profile_recs: list[dict], costs: pd.DataFrame, out: Path,
               w: _Writer) -> None:
    meta = model_meta(name, train_recs + profile_recs)
    lines = [f"# {name}", "", f"[← leaderboard](../README.md)", "",
             md_table([["family", meta["family"]], ["description", meta["description"]], ["origin", meta["origin"]]]
                      + ([["plug-in", f"from {meta['plugin']}, not part of bloodbench"]] if meta["plugin"] else []),
                      ["", ""]), ""]
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in train_recs:
        groups[(r["dataset"], int(r["size"]))].append(r)
    for r in profile_recs:
        groups.setdefault((r["dataset"], int(r["size"])), [])
    for dataset, size in sorted(costs[["dataset", "size"]].drop_duplicates().itertuples(index=False)) \
            if not costs.empty else []:
        groups.setdefault((dataset, int(size)), [])
    for (dataset, size) in sorted(groups):
        runs = sorted(groups[(dataset, size)], key=lambda r: (r.get("seed") is None, r.get("seed"), r["run_id"]))
        done = [r for r in runs if is_finished(r)]
        lines += [f"## {dataset}, {size}×{size} px", ""]
        averaged = aggregate_training(train_frame(done)) if done else pd.DataFrame()
        if not averaged.empty:  # empty when every finished run learned nothing
            a = averaged.iloc[0]
            acc = mean_std(a.acc_mean, a.acc_std, ".2f", 100)
            lines += [f"Test accuracy **{acc} %** over {a.seeds} seed(s), F1 macro "
                      f"{fmt(a.f1_macro_mean, '.3f')}, AUC {fmt(a.auc_mean, '.3f')}; stopped: {a.stop_reasons}; "
                      f"{fmt_count(a.epochs_mean)} epochs on average.", ""]
        if runs:
            rows = []
            for r in runs:
                t = r.get("test") or {}
                ci = (t.get("ci95") or {}).get("acc") or []
                status = "learned nothing" if r.get("learned_nothing") else r.get("status")
                rows.append([r.get("seed"), status, "yes" if r.get("converged") else "no", fmt(t.get("acc"), ".2f", 100),
                             fmt(t.get("f1_macro"), ".3f"), fmt(t.get("auc"), ".3f"),
                             " – ".join(fmt(v, ".2f", 100) for v in ci),
                             r.get("epochs_run"), r.get("best_epoch"), r.get("stop_reason") or "",
                             fmt(r.get("train_seconds"), ",.0f")])
            lines += ["### Training", "", md_table(rows, ["seed", "status", "converged", "test acc (%)", "F1 macro", "AUC",
                                                          "acc 95% CI (%)", "epochs", "best epoch", "stop reason",
                                                          "train time (s)"]), ""]
            lines += recipe_section(runs)
        else:
            lines += ["_Not trained yet: `bloodbench train " + name + "`._", ""]
        hist = [(r.get("seed"), r.get("history")) for r in done if r.get("history")]
        if hist:
            fig = plots.training_curves(hist, f"{name} on {dataset} {size}px: training curves")
            rel = w.figure(f"models/{_slug(name, dataset, size)}_curves.png", fig)
            lines += ["### Training curves", "", f"![training curves of {name}]({Path(rel).name})", ""]
        tests = [r.get("test") or {} for r in done]
        cms = [np.asarray(t["confusion_matrix"]) for t in tests if t.get("confusion_matrix")]
        class_names = next((t.get("class_names") for t in tests if t.get("class_names")), None)
        if cms and all(c.shape == cms[0].shape for c in cms):
            total = np.sum(cms, axis=0)
            what = f"summed over {len(cms)} seeds" if len(cms) > 1 else "1 seed"
            fig = plots.confusion_matrix(total, class_names or [], f"{name}: test confusion matrix ({what})")
            rel = w.figure(f"models/{_slug(name, dataset, size)}_confusion.png", fig)
            lines += ["### Confusion matrix", "",
                      f"Rows: true class, normalised per row (the diagonal is per-class recall); "
                      f"each cell also gives the count, {what}.", "",
                      f"![confusion matrix of {name}]({Path(rel).name})", ""]
        per = [t["per_class"] for t in tests if t.get("per_class")]
        if per:
            k = len(per[0]["f1"])
            names = class_names or [str(i) for i in range(k)]
            mean = {m: np.mean([p[m] for p in per if len(p.get(m, [])) == k], axis=0)
                    for m in ("precision", "recall", "f1")}
            support = per[0].get("support") or [None] * k
            rows = [[i, names[i], fmt(mean["precision"][i], ".3f"), fmt(mean["recall"][i], ".3f"),
                     fmt(mean["f1"][i], ".3f"), support[i]] for i in range(k)]
            lines += [f"### Per-class metrics (test, mean over {len(per)} seed{'s' if len(per) > 1 else ''})", "",
                      md_table(rows, ["label", "class", "precision", "recall", "F1", "support"]), ""]
        mine = [r for r in profile_recs if r["dataset"] == dataset and int(r["size"]) == size]
        group_costs = costs[(costs["model"] == name) & (costs["dataset"] == dataset) & (costs["size"] == size)] \
            if not costs.empty else costs
        lines += ["### Cost", ""] + _top_modules(mine) + _cost_tables(group_costs)
    lines += weights_section(name, train_recs)
    explain = _explain_links(out, name)
    if explain:
        lines += ["## Explanations", ""] + [x for link in explain for x in (link, "")]
    w.text(f"models/{_slug(name)}.md", "\n".join(lines).rstrip() + "\n")


# --------------------------------------------------------------------------------------
# README
# --------------------------------------------------------------------------------------
def machine_slug(name: str | None) -> str:
    """A machine's name in a file name: "Intel(R) Xeon(R) Processor (2 threads)" -> "intel-r-xeon-r-processor-2-threads"."""
    return re.sub(r"[^a-z0-9]+", "-", str(name or "unnamed").lower()).strip("-")


def machine_boards(board: Leaderboard, build) -> dict[str, Leaderboard]:
    """The table's own machine and each other machine measured (at the table's precision where it has it),
    each its own board: ``build(device_name, precision)`` makes one. Their warnings were said for the table."""
    boards = {board.machine_name(): board} if board.machine_name() else {}
    for m in sorted(board.others, key=lambda m: (m.name, m.precision != board.precision, -m.models)):
        if m.name not in boards:
            with contextlib.redirect_stderr(io.StringIO()):
                boards[m.name] = build(m.name, m.precision)
    return boards


def _plots_for_group(board: Leaderboard, machines: dict[str, Leaderboard], dataset: str, size: int,
                     w: _Writer) -> list[str]:
    rows = board.rows[(board.rows["dataset"] == dataset) & (board.rows["size"] == size)]
    title = f"{dataset} {size}×{size}"
    lines = []
    fig = plots.scatter_tradeoff(rows, "macs", xscale=1e-6, front="pareto_macs",
                                 xlabel="MACs per image (millions, log scale)",
                                 title=f"{title}: test accuracy vs MACs")
    rel = w.figure(f"plots/{_slug('acc_vs_macs', dataset, size)}.png", fig)
    lines.append(f"![accuracy vs MACs]({rel})")
    for name, b in machines.items():  # one plot per machine: latencies of two machines never share axes
        drows = b.rows[(b.rows["dataset"] == dataset) & (b.rows["size"] == size)]
        if drows["latency_p50_ms"].notna().sum() < 2:
            continue
        fig = plots.scatter_tradeoff(drows, "latency_p50_ms", front="pareto_latency",
                                     xlabel=f"p50 latency, batch 1 (ms, log scale), {b.precision}",
                                     title=f"{title}: test accuracy vs latency on {name}")
        rel = w.figure(f"plots/{_slug('acc_vs_latency', dataset, size, b.device, machine_slug(name))}.png", fig)
        lines.append(f"![accuracy vs latency on {name}]({rel})")
    on_front, _ = pareto_front(rows, "params")
    fig = plots.scatter_tradeoff(rows.assign(pareto_params=on_front), "params", xscale=1e-6, front="pareto_params",
                                 xlabel="parameters (millions, log scale)",
                                 title=f"{title}: test accuracy vs parameters")
    rel = w.figure(f"plots/{_slug('acc_vs_params', dataset, size)}.png", fig)
    lines.append(f"![accuracy vs parameters]({rel})")
    return [x for line in lines for x in (line, "")]


def _compute_time(train_recs: list[dict], profile_recs: list[dict]) -> list[str]:
    """The "where did the time go" section: per-model training and profiling time."""
    table, totals = time_by_model(train_recs, profile_recs)
    if table.empty:
        return []
    return [
        "## Where the compute went", "",
        md_table(table.astype(object).where(table.notna(), "").values.tolist(), list(table.columns)), "",
        f"Training {totals['train_seconds'] / 3600:.2f} h and profiling {totals['profile_seconds'] / 60:.1f} min "
        f"of compute in all; busy wall clock {totals['busy_wall_seconds'] / 3600:.2f} h (the union of the runs' "
        "time spans, so parallel queues count once and idle gaps not at all). Training time is the training "
        "loop's, validation included; test evaluation and data loading are not in it.", "",
    ]


def _reproduce(train_recs: list[dict]) -> list[str]:
    finished = [r for r in train_recs if is_finished(r)]
    models = sorted({r["model"] for r in finished}) or ["MODEL"]
    seeds = sorted({int(r["seed"]) for r in finished if r.get("seed") is not None}) or [0]
    groups = sorted({(r["dataset"], int(r["size"])) for r in finished}) or [("bloodmnist", 28)]
    train_lines = []
    for dataset, size in groups:
        opts = (f" --dataset {dataset}" if dataset != "bloodmnist" else "") + (f" --size {size}" if size != 28 else "")
        train_lines.append(f"for m in {' '.join(models)}; do for s in {' '.join(map(str, seeds))}; do\n"
                           f"  bloodbench train $m --seed $s{opts}\ndone; done")
    return [
        "```bash",
        "pip install -e .",
        "bloodbench data download            # BloodMNIST from the official MedMNIST source",
        "bloodbench run                      # everything below in one resumable go",
        "",
        "# or step by step:",
        *train_lines,
        "bloodbench profile --all            # params, MACs, latency, throughput, memory",
        "pytest benchmarks/ --benchmark-json bench.json   # optional: pytest-benchmark timings",
        "bloodbench report                   # this folder (add --benchmark-json bench.json to include them)",
        "bloodbench leaderboard --device cpu # the table with CPU cost",
        "```",
    ]


def write_report(results: str | os.PathLike | None = None, out: str | os.PathLike = "reports", *,
                 benchmark_json: Sequence[str | os.PathLike] = (), device: str | None = None,
                 precision: str | None = None) -> list[Path]:
    """Regenerate README.md, plots/ and models/ under ``out``; returns the files written.

    Stale generated files (cards and plots of models no longer in the records) are removed
    so the folder always matches the records.
    """
    root, train_recs, profile_recs = read_results(results, benchmark_json)
    benchmarks = [read_benchmark_json(p) for p in benchmark_json]
    board = assemble_leaderboard(train_recs, profile_recs, benchmark_json=benchmark_json, device=device,
                              precision=precision, results_root=root)
    costs = cost_frame(profile_recs, benchmark_json)
    per_machine = machine_boards(board, lambda name, prec: assemble_leaderboard(
        train_recs, profile_recs, benchmark_json=benchmark_json, device=name, precision=prec, results_root=root))

    out = output_dir(out)
    w = _Writer(out)
    finished = [r for r in train_recs if is_finished(r)]
    models = sorted(set(board.rows.loc[board.rows["kind"] == "model", "model"]) | {r["model"] for r in train_recs})
    results_rel = os.path.relpath(root, out) if root.is_dir() else str(root)

    lines = [
        "# BloodMNIST benchmark: accuracy vs cost",
        "",
        f"Generated by `bloodbench report` from {len(finished)} finished training runs "
        f"({len({r['model'] for r in finished})} models) and {len(profile_recs)} profile records in "
        f"`{results_rel}`" + (f" plus {len(benchmarks)} pytest-benchmark file(s)" if benchmarks else "")
        + ". Regenerate it rather than editing it.",
        "",
        "## Leaderboard",
        "",
        board.to_markdown(heading_level=3).rstrip(),
        "",
    ]
    for m in board.others:  # a benchmark file from another machine: its own table, never mixed into the main one
        if any(src.startswith("benchmark:") for src in m.sources) and m.name in per_machine:
            lines += [f"### Cost on {m.name} (from --benchmark-json)", "",
                      per_machine[m.name].to_markdown(heading_level=4).rstrip(), ""]
    lines += pick_section(board, per_machine)
    lines += ["## Plots", ""]
    for dataset, size in sorted((d, int(s)) for d, s in board.rows[["dataset", "size"]].drop_duplicates()
                                .itertuples(index=False)):
        lines += [f"### {dataset}, {size}×{size} px", ""] + _plots_for_group(board, per_machine, dataset, size, w)
    lines += ["Filled markers are on the Pareto front (dashed step line): no other model is both at least as "
              "accurate and at least as cheap. Error bars: std of test accuracy over seeds.", ""]

    card_rows = []
    for name in models:
        mt = [r for r in train_recs if r["model"] == name]
        mp = [r for r in profile_recs if r["model"] == name]
        model_card(name, mt, mp, costs[costs["model"] == name] if not costs.empty else costs, out, w)
        meta = model_meta(name, mt + mp)
        card_rows.append([f"[{name}](models/{_slug(name)}.md)", meta["family"],
                          meta["description"] + (f" (plug-in from {meta['plugin']})" if meta["plugin"] else "")])
    lines += ["## Models", "", md_table(card_rows, ["model", "family", "description"]), ""]
    lines += ["## Environment", "", environment_table(train_recs + profile_recs, benchmarks), ""]
    lines += _compute_time(train_recs, profile_recs)
    lines += ["## How to reproduce", ""] + _reproduce(train_recs) + [""]
    w.text("README.md", "\n".join(lines).rstrip() + "\n")
    w.prune(["plots", "models"])
    return sorted(set(w.written))
