"""One machine per table: the device name (a CPU's with its thread count), precision and latency batch
that every cost cell of a table comes from, and the other machines measured, each a table of its own.

Figures of two machines never share a table: a latency measured on a 1-thread EPYC beside one from a
2-thread Xeon would compare the CPUs, not the models. The default machine is the one with the most
profiled rows, so a user's own profile of one model, or a pytest-benchmark file from another machine,
never changes the published table. Ties go to the machine that trained most of the shown runs (its
cost cells sit beside its own train times), then to a GPU, then to the machine profiled first.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bloodbench.errors import BloodbenchError, warn
from bloodbench.leaderboard.columns import KEYS, PREFERRED_PRECISION


@dataclass(frozen=True)
class Machine:
    """The setting of a table's cost columns, or one measured besides it."""

    device: str        # cpu / cuda
    name: str          # device name; a CPU's carries its thread count: "AMD EPYC (1 thread)"
    precision: str
    models: int        # (model, dataset, size) rows with a figure on it
    sources: tuple[str, ...] = ()  # "profile", "benchmark:<file>"

    def option(self) -> str:
        """The leaderboard option that shows this machine's table."""
        return f'--device "{self.name}"' + (f" --precision {self.precision}" if self.precision != PREFERRED_PRECISION
                                           else "")


def _named(costs: pd.DataFrame) -> pd.DataFrame:
    """Cost rows with a device name everywhere ("unnamed cpu" where a source did not record one)."""
    names = costs["device_name"].where(costs["device_name"].notna(), "unnamed " + costs["device"].astype(str))
    return costs.assign(device_name=names)


def _by_name(costs: pd.DataFrame, device: str) -> pd.DataFrame:
    """Rows whose device name is ``device`` (case-insensitive), else contains it; two machines matched is an error."""
    names = costs["device_name"].astype(str)
    exact = costs[names.str.lower() == device.lower()]
    if not exact.empty:
        return exact
    rows = costs[names.str.lower().str.contains(device.lower(), regex=False)]
    found = sorted(rows["device_name"].unique())
    if len(found) > 1:
        raise BloodbenchError(f"--device {device!r} matches {len(found)} machines: "
                              + "; ".join(repr(n) for n in found) + ": give one of these names in full")
    return rows


def _rank(rows: pd.DataFrame, trained_on: pd.Series | None = None) -> pd.DataFrame:
    """Each device name's row count (profiled rows, when there are any); on a tie, the machine that
    trained most of the shown runs (``trained_on``: one machine name per run), then a GPU, then the
    machine measured first."""
    basis = rows[rows["source"] == "profile"] if (rows["source"] == "profile").any() else rows
    g = basis.groupby("device_name", sort=True)
    score = pd.DataFrame({
        "models": basis.drop_duplicates(KEYS + ["device_name"]).groupby("device_name").size(),
        "cuda": g["device"].agg(lambda s: int((s == "cuda").any())),
        "first": g["created_at"].min(),
    })
    runs = trained_on.dropna().value_counts() if trained_on is not None else pd.Series(dtype=int)
    score["trained"] = runs.reindex(score.index, fill_value=0).to_numpy()
    return score.reset_index(names="device_name").sort_values(
        ["models", "trained", "cuda", "first", "device_name"], ascending=[False, False, False, True, True],
        kind="stable")


def _precision(rows: pd.DataFrame, precision: str | None) -> str:
    if precision:
        return precision
    have = rows.drop_duplicates(KEYS + ["precision"])["precision"].value_counts()
    if PREFERRED_PRECISION in have:
        return PREFERRED_PRECISION
    return sorted(have.items(), key=lambda kv: (-kv[1], str(kv[0])))[0][0]


def choose_machine(costs: pd.DataFrame, device: str | None, precision: str | None = None,
                   trained_on: pd.Series | None = None) -> tuple[Machine | None, pd.DataFrame]:
    """The machine (and precision, and latency batch) a table shows, and its cost rows.

    ``device``: cpu or cuda (that kind's machine with the most rows), or a device name: exact,
    case-insensitive, else a substring of one name. Default: the machine with the most profiled rows.
    ``trained_on``: the machine name of each shown run, for the tie-break.
    """
    if costs.empty:
        if device:
            raise BloodbenchError(f"no profile records at all, so no cost on {device}: "
                                  f"run `bloodbench profile --all` or drop --device")
        return None, costs
    costs = _named(costs)
    rows = costs
    if precision:
        rows = rows[rows["precision"] == precision]
        if rows.empty:
            raise BloodbenchError(f"no {precision} profile records: have "
                                  f"{', '.join(sorted(costs['precision'].astype(str).unique()))}")
    if device in ("cpu", "cuda"):
        rows = rows[rows["device"] == device]
    elif device:
        rows = _by_name(rows, device)
    if rows.empty:
        have = ", ".join(f"{d} ({n})" for d, n in sorted(
            costs[["device", "device_name"]].drop_duplicates().itertuples(index=False)))
        what = f"{precision} " if precision else ""
        raise BloodbenchError(f"no {what}profile records on {device!r}; measured machines: {have}")
    name = _rank(rows, trained_on).iloc[0]["device_name"]
    mine = rows[rows["device_name"] == name]
    prec = _precision(mine, precision)
    mine = mine[mine["precision"] == prec]
    batches = mine["latency_batch_size"].dropna()
    if not batches.empty:  # one latency batch size per table too
        batch = sorted(batches.value_counts().items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        mine = mine[mine["latency_batch_size"].isna() | (mine["latency_batch_size"] == batch)]
    machine = Machine(str(mine["device"].iloc[0]), str(name), prec, _count(mine),
                      tuple(sorted(mine["source"].unique())))
    return machine, mine


def _count(rows: pd.DataFrame) -> int:
    return len(rows.drop_duplicates(KEYS))


def other_machines(costs: pd.DataFrame, shown: Machine | None) -> list[Machine]:
    """Every other (machine, precision) measured, most rows first: each is a table of its own."""
    if costs.empty:
        return []
    costs = _named(costs)
    out = []
    for (device, name, prec), g in costs.groupby(["device", "device_name", "precision"], sort=True):
        if shown is not None and (name, prec) == (shown.name, shown.precision):
            continue
        out.append(Machine(str(device), str(name), str(prec), _count(g), tuple(sorted(g["source"].unique()))))
    return sorted(out, key=lambda m: (-m.models, m.name, m.precision))


def warn_other_benchmarks(others: list[Machine], shown: Machine | None) -> None:
    """One line per benchmark file measured on another machine: its figures are not in this table."""
    for m in others:
        for source in m.sources:
            if source.startswith("benchmark:"):
                where = f"not the table's {shown.name} {shown.precision}" if shown is not None else "no table"
                warn(f"{source.removeprefix('benchmark:')} was measured on {m.name} {m.precision}, {where}: "
                     f"its figures are a table of their own (`bloodbench leaderboard {m.option()}`)")
