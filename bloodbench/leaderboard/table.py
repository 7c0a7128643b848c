"""The joined table as markdown, CSV or JSON, with its footnotes (numbered in notes.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd

from bloodbench.errors import BloodbenchError
from bloodbench.formatting import fmt, fmt_count, md_table, mean_std
from bloodbench.leaderboard.columns import (
    COLUMNS,
    DISPLAY,
    FORMATS,
    INT_COLUMNS,
    LIST_COLUMNS,
    PREFERRED_PRECISION,
    SHOWN_COLUMNS,
)
from bloodbench.leaderboard.graphs_column import EAGER_HEADER, GRAPHS_COLUMN, GRAPHS_HEADER, LEGEND
from bloodbench.leaderboard.train_source import QUIET, QUIET_RATE, SEVERAL_MACHINES
from bloodbench.store.fsutil import strict_json


@dataclass
class Leaderboard:
    """The joined table plus what a reader needs to trust it: device, footnotes."""

    rows: pd.DataFrame
    device: str | None
    device_names: list[str]
    precision: str | None
    footnotes: list[str] = field(default_factory=list)
    markers: dict[tuple, str] = field(default_factory=dict)
    # From saved predictions (leaderboard/ensemble.py), when built with ``results_root``.
    predictions: Any = None
    # The other machines (and precisions) measured: each a table of its own (leaderboard/machines.py).
    others: list = field(default_factory=list)

    def groups(self) -> list[tuple[tuple[str, int], pd.DataFrame]]:
        return [((d, int(s)), g) for (d, s), g in self.rows.groupby(["dataset", "size"], sort=True)]

    def device_label(self) -> str:
        if self.device is None:
            return "no profile records: cost columns are empty"
        names = "; ".join(self.device_names) or "unnamed device"
        prec = self.precision or PREFERRED_PRECISION
        return f"cost on {self.device}: {names} ({prec}), every cost cell from this one machine; {self.cost_sources()}"

    def machine_name(self) -> str | None:
        """The table's machine, for captions and plot labels."""
        return "; ".join(self.device_names) or None

    def others_note(self) -> str | None:
        """The other machines measured, each its own table: never mixed into this one."""
        if not self.others:
            return None
        parts = [f"{m.name} ({m.device} {m.precision}, {m.models} row{'s' if m.models != 1 else ''}: "
                 f"`{m.option()}`)" for m in self.others]
        return "Also measured, each a table of its own (figures of two machines are never compared in one " \
               "table): " + "; ".join(parts) + "."

    def throughput_note(self) -> str:
        """Where each throughput peaked: the best images/s over the batch sizes measured, and which batch
        (a quick pytest-benchmark run measures batch 1 only, so "best over batch sizes" alone misleads)."""
        rows = self.rows.dropna(subset=["throughput"])
        if rows.empty:
            return "best images/s over the batch sizes measured"
        batches = rows["throughput_batch_size"].map(lambda b: "an unrecorded batch" if pd.isna(b) else f"batch {int(b)}")
        common = batches.value_counts().sort_index().idxmax()
        text = f"best images/s over the batch sizes measured, reached at {common}"
        others = [f"{b} for {', '.join(sorted(g))}" for b, g in rows["model"].groupby(batches.to_numpy(), sort=True)
                  if b != common]
        return text + (" (" + "; ".join(others) + ")" if others else "")

    def train_throughput_note(self) -> str:
        """The source of the train images/s of each row, as timm's benchmark names its train rate."""
        rows = self.rows.dropna(subset=["train_throughput_source"])
        if rows.empty:
            return "not measured"
        by_source = rows.groupby("train_throughput_source", sort=True)["model"]
        quiet = f"; {QUIET_RATE}" if rows["train_throughput_source"].str.startswith(QUIET).any() else ""
        if by_source.ngroups == 1:
            return f"from {rows['train_throughput_source'].iloc[0]}{quiet}"
        return "from " + "; ".join(f"{src} for {', '.join(sorted(g))}" for src, g in by_source) + \
            f" (rows from different machines do not compare){quiet}"

    def train_time_note(self) -> str:
        """Which machine each row's train time is from: the seeds' machine, whatever machine the cost cells
        are from, so a row trained on a GPU reads as fast as it was, not as a cost of the table's machine."""
        what = ("Train time: wall clock of training, validation included, as the runs ran (on machines shared with "
                "other work: not a quiet measurement)")
        rows = self.rows.dropna(subset=["train_seconds_mean"])
        if rows.empty:
            return f"{what}, on the machine that trained the row's seeds."
        machine = pd.Series([_machine_words(m) for m in rows["train_machine"]], index=rows.index)
        by_machine = rows.groupby(machine, sort=True)["model"]
        ensemble = "; an ensemble's is the sum of its members'" if (rows["kind"] == "ensemble").any() else ""
        if by_machine.ngroups == 1:
            return f"{what}, on {machine.iloc[0]}{ensemble}."
        most = machine.value_counts().sort_index().idxmax()
        parts = [f"{m} for {', '.join(sorted(g))}" for m, g in by_machine if m != most]
        return (f"{what}, on the machine that trained the row's seeds: " + "; ".join(parts) +
                f"; {most} for the other rows (rows from different machines do not compare){ensemble}.")

    def cost_sources(self) -> str:
        """Which rows' cost came from pytest-benchmark JSON and which from profile records: a benchmark
        file gives the cost of rows without a profile record, and the reader should know which."""
        rows = self.rows[self.rows["kind"] == "model"].dropna(subset=["cost_source"])  # not derived rows
        bench = rows[rows["cost_source"] != "profile"]
        if bench.empty:
            return "source: profile records"
        one_source = rows["cost_source"].nunique() == 1  # then naming the rows says nothing
        parts = []
        for source, g in bench.groupby("cost_source", sort=True):
            which = "" if one_source else f" for {', '.join(sorted(set(g['model'])))}"
            parts.append(f"pytest-benchmark {str(source).removeprefix('benchmark:')}{which}")
        if len(bench) < len(rows):
            parts.append("profile records for the other rows")
        return "source: " + "; ".join(parts)

    # -- machine-readable -----------------------------------------------------------------
    def columns(self) -> list[str]:
        """COLUMNS, plus the CUDA-graphs p50 where such records exist (bloodbench.leaderboard.graphs_column)."""
        return COLUMNS + [c for c in (GRAPHS_COLUMN,) if c in self.rows]

    def _plain(self) -> pd.DataFrame:
        """The public columns with counts as nullable integers, even where some are blank."""
        df = self.rows[self.columns()].copy()
        for col in INT_COLUMNS:
            df[col] = pd.to_numeric(df[col]).round().astype("Int64")
        return df

    def to_frame(self) -> pd.DataFrame:
        """The rows of the CSV and JSON output as a DataFrame (the Python API's ``bloodbench.leaderboard()``)."""
        return self._plain().reset_index(drop=True)

    def to_records(self) -> list[dict[str, Any]]:
        """Rows as plain Python values (NaN/NA -> None, numpy scalars -> int/float/bool), for JSON."""
        df = self._plain()
        return df.astype(object).where(df.notna(), None).to_dict("records")

    def to_json(self) -> str:
        return strict_json(self.to_records(), indent=1)  # an Infinity that slipped through is null, never invalid JSON

    def to_csv(self) -> str:
        df = self._plain()
        for col in LIST_COLUMNS:
            df[col] = [";".join(map(str, v)) if isinstance(v, list) else v for v in df[col]]
        return df.to_csv(index=False, lineterminator="\n")

    # -- human-readable ------------------------------------------------------------------
    def display_frame(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Formatted strings with unit-honest headers."""
        def front(on, by):
            if pd.isna(on):
                return ""
            return "✓" if on else f"by {by}"

        def cells(column, spec, scale, kind):
            if kind == "spread":
                return [mean_std(m, s, spec, scale) for m, s in zip(rows[f"{column}_mean"], rows[f"{column}_std"])]
            if kind == "text":
                return list(rows[column].fillna(""))
            if kind == "count":
                return [fmt_count(v, spec) for v in rows[column]]
            return [fmt(v, spec, scale) for v in rows[column]]

        out = pd.DataFrame({
            "model": [f"{r.model}{self.markers.get((r.model, r.dataset, int(r.size)), '')}" for r in rows.itertuples()],
            **{header: cells(*spec) for header, *spec in DISPLAY},
            "Pareto MACs": [front(o, b) for o, b in zip(rows["pareto_macs"], rows["dominated_by_macs"])],
            "Pareto latency": [front(o, b) for o, b in zip(rows["pareto_latency"], rows["dominated_by_latency"])],
        })
        if GRAPHS_COLUMN in rows:  # eager (launch-bound) and graphs (device-bound) side by side, labelled
            out = out.rename(columns={"p50 latency (ms)": EAGER_HEADER})
            out.insert(out.columns.get_loc(EAGER_HEADER) + 1, GRAPHS_HEADER,
                       [fmt(v, ".3f") for v in rows[GRAPHS_COLUMN]])
        return out

    def group_markdown(self, rows: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
        table = self.display_frame(rows)
        if columns is not None:
            table = table[["model"] + shown_headers(table.columns, columns)]
        return md_table(table.to_numpy().tolist(), list(table.columns))

    def to_markdown(self, heading_level: int = 3, columns: Sequence[str] | None = None) -> str:
        """The table with its caption and legend; ``columns``: short names (SHOWN_COLUMNS) to show, default all."""
        parts = [f"_{self.device_label()}_", ""]
        hashes = "#" * heading_level
        for (dataset, size), g in self.groups():
            parts += [f"{hashes} {dataset}, {size}×{size} px", "", self.group_markdown(g, columns), ""]
        parts += self.legend()
        return "\n".join(parts).rstrip() + "\n"

    def legend(self) -> list[str]:
        lines = [
            "Accuracy, F1 and AUC: test split, mean ± sample std over seeds. MACs: multiply-accumulates per "
            f"image (fvcore); FLOPs = 2 × MACs. Latency: batch 1; throughput: {self.throughput_note()}.",
            f"Train (img/s): training images per second, {self.train_throughput_note()}. {self.train_time_note()}",
            "Pareto: ✓ = not dominated on (accuracy ↑, cost ↓) among the rows of the same dataset and size; "
            "\"by X\" names a model that is at least as accurate and as cheap, and better on one; "
            "blank = a value is missing.",
        ]
        if GRAPHS_COLUMN in self.rows:
            lines.append(LEGEND)
        if self.others_note():
            lines.append(self.others_note())
        if self.footnotes:
            lines += [""] + [f"{f}  " for f in self.footnotes]
        return lines

    def render(self, fmt: str = "markdown", columns: Sequence[str] | None = None) -> str:
        if fmt == "json":
            return self.to_json() + "\n"
        if fmt == "csv":
            return self.to_csv()
        if fmt == "markdown":
            return self.to_markdown(columns=columns)
        raise BloodbenchError(f"unknown format {fmt!r}: use {', '.join(FORMATS)}")


def _machine_words(name: object) -> str:
    if not isinstance(name, str) or not name:
        return "an unrecorded machine"
    if name.startswith(SEVERAL_MACHINES):
        return f"several machines ({name.removeprefix(SEVERAL_MACHINES)})"
    return name


def shown_headers(headers: Sequence[str], columns: Sequence[str]) -> list[str]:
    """The markdown headers of the short column names, in the table's order; an unknown name is one error line."""
    unknown = [c for c in columns if c not in SHOWN_COLUMNS]
    if unknown:
        raise BloodbenchError(f"unknown column(s) {', '.join(unknown)}: use {', '.join(SHOWN_COLUMNS)} or all")
    wanted = {h for c in columns for h in SHOWN_COLUMNS[c]}
    return [h for h in headers if h in wanted]
