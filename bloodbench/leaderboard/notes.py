"""The leaderboard's footnotes: what every note says and which rows it marks, numbered in one place.

A module that has something to say about rows returns :class:`Note` objects (the gaps here,
ensemble and TTA rows in ``ensemble.py``); :func:`number_notes` alone gives them their marks:
¹, ², ... in the order given, then the notes with a fixed mark (†, averaged unconverged runs) last,
so the numbered notes count on whatever else is said.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import pandas as pd

from bloodbench.leaderboard.columns import KEYS
from bloodbench.store.results import model_info
from bloodbench.store.verdicts import LEARNED_NOTHING_RULE, NOT_CONVERGED

SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹"
UNCONVERGED_MARK = "†"


def superscript(n: int) -> str:
    """The mark of the ``n``-th numbered note (1-based): ¹ ... ⁹, then ¹⁰, ¹¹, ..."""
    return "".join(SUPERSCRIPTS[int(d)] for d in str(n))


@dataclass(frozen=True)
class Note:
    """One footnote: its text and the rows it marks, (model, dataset, size) -> detail ("" for none).

    ``list_rows``: name the rows (with their detail) after the text, as the gap notes do.
    ``mark``: a fixed mark; None numbers the note.
    """

    text: str
    rows: dict[tuple, str] = field(default_factory=dict)
    list_rows: bool = True
    mark: str | None = None


def number_notes(notes: Sequence[Note], merged: pd.DataFrame) -> tuple[list[str], dict[tuple, str]]:
    """The footnote lines and each shown row's marks: notes without rows are dropped, numbered notes
    first in the order given, fixed-mark ones after them."""
    multi = merged[["dataset", "size"]].drop_duplicates().shape[0] > 1
    shown = {(m, d, int(s)) for m, d, s in merged[KEYS].itertuples(index=False)}
    kept = [n for n in notes if n.rows]
    ordered = [n for n in kept if n.mark is None] + [n for n in kept if n.mark is not None]
    lines, markers = [], {}
    for i, note in enumerate(ordered, start=1):
        mark = note.mark or superscript(i)
        names = []
        for m, d, s in sorted(note.rows, key=lambda k: (k[0], k[1], int(k[2]))):
            detail = ", ".join(x for x in (f"{d} {int(s)}px" if multi else "", note.rows[(m, d, s)]) if x)
            names.append(f"{m} ({detail})" if detail else m)
            if (m, d, int(s)) in shown:
                markers[(m, d, int(s))] = markers.get((m, d, int(s)), "") + mark
        lines.append(f"{mark} {note.text}: {', '.join(names)}" if note.list_rows else f"{mark} {note.text}")
    return lines, markers


def _seeds(seeds: Sequence) -> str:
    return "seed" + ("s" if len(seeds) > 1 else "") + " " + ", ".join(str(x) for x in seeds)


def unconverged_rows(merged: pd.DataFrame, train: pd.DataFrame) -> dict[tuple, str]:
    """Rows that average a run that had not converged, each with those runs: a model's own seeds, a TTA row's
    seeds, an ensemble's members by model (an ensemble is no more converged than its members)."""
    if train.empty:
        return {}
    runs = train.drop_duplicates("run_id").set_index("run_id")
    bad = runs[~runs["converged"].astype(bool)]
    found: dict[tuple, str] = {}
    for (m, d, s), g in bad.groupby(["model", "dataset", "size"], sort=True):
        found[(m, d, int(s))] = _seeds(sorted(g["seed"]))
    kinds = merged["kind"] if "kind" in merged else pd.Series(dtype=object)
    for r in merged[kinds.isin(["tta", "ensemble"])].itertuples(index=False):
        members = bad.loc[[rid for rid in dict.fromkeys(r.members or []) if rid in bad.index]]
        if members.empty:
            continue
        if r.kind == "tta":
            found[(r.model, r.dataset, int(r.size))] = _seeds(sorted(members["seed"]))
        else:
            found[(r.model, r.dataset, int(r.size))] = "members " + "; ".join(
                f"{m} {_seeds(sorted(g['seed']))}" for m, g in members.groupby("model", sort=True))
    return found


def gap_notes(merged: pd.DataFrame, machine: str | None, pending: pd.DataFrame,
              unconverged: dict[tuple, str] | None = None,
              conflicts: dict[tuple, str] | None = None) -> list[Note]:
    """Name every gap so an empty cell is never mistaken for a zero, nor a diverged seed forgotten.

    ``machine``: the table's machine and precision, None without cost. ``pending``: seeds not averaged in (unfinished, another recipe, learned nothing) as status,
    model, dataset, size, seeds rows. ``unconverged``: rows averaging runs that had not converged, with
    those runs (:func:`unconverged_rows`), marked † (see :mod:`bloodbench.store.verdicts`). ``conflicts``: what another cost source said
    (see :func:`~bloodbench.leaderboard.frames.cost_conflicts`).
    """
    def keyed(df: pd.DataFrame) -> dict[tuple, str]:
        return {tuple(r): "" for r in df[KEYS].itertuples(index=False)}

    notes = []
    if machine is not None:
        notes.append(Note(f"no profile on {machine} (this table's machine) for",
                          keyed(merged[merged["cost_source"].isna() & merged["seeds"].notna()])))
    else:
        notes.append(Note("no profile records for", keyed(merged)))
    notes.append(Note("not trained (no finished run)", keyed(merged[merged["seeds"].isna()])))
    by_status: dict[str, dict[tuple, str]] = {}
    for status, m, d, s, seeds in pending.itertuples(index=False):
        by_status.setdefault(status, {})[(m, d, int(s))] = _seeds(seeds)
    for status, keys in sorted(by_status.items()):
        text = {"diverged": "diverged in training",
                "other recipe": "trained with another recipe (config) than the seeds shown",
                "learned nothing": f"learned nothing ({LEARNED_NOTHING_RULE})"}.get(status, f"training {status}")
        notes.append(Note(f"{text}, not averaged in", keys))
    notes.append(Note("cost measured on this machine by two sources that disagree", dict(conflicts or {})))
    notes.append(Note(f"averages seeds {NOT_CONVERGED}", dict(unconverged or {}),
                      mark=UNCONVERGED_MARK))
    return notes


def plugin_note(merged: pd.DataFrame, records: Sequence[dict] = ()) -> Note:
    """Rows of plug-in models (bloodbench/models/plugins.py), each with its origin: the registry's,
    else the one its records kept."""
    rows = {}
    for m, d, s in merged.loc[merged["kind"] == "model", KEYS].itertuples(index=False):
        origin = model_info(m, [r for r in records if r.get("model") == m]).get("plugin")
        if origin:
            rows[(m, d, int(s))] = origin
    return Note("plug-in model, not part of bloodbench (from the package or module named)", rows)


NOISY = ("latency measured while the machine was noisy (the profile's timing rounds disagree, or it was under "
         "load: `noisy` in the record), so the figure may read high; rerun `bloodbench profile` on a quiet machine")


def noisy_note(merged: pd.DataFrame, train: pd.DataFrame) -> Note:
    """Rows whose latency comes from a ``noisy`` profile: the model rows, and the TTA and ensemble
    rows built from them (their latency is a multiple or a sum of it)."""
    if "latency_noisy" not in merged:
        return Note(NOISY)
    noisy = {(m, d, int(s)) for m, d, s, n, kind in merged[KEYS + ["latency_noisy", "kind"]].itertuples(index=False)
             if kind == "model" and not pd.isna(n) and bool(n)}
    model_of = dict(zip(train["run_id"], train["model"])) if not train.empty else {}
    rows = {}
    for r in merged.itertuples(index=False):
        key = (r.model, r.dataset, int(r.size))
        if key in noisy:
            rows[key] = ""
        elif r.kind in ("tta", "ensemble") and isinstance(r.members, list):
            members = sorted({model_of.get(run) for run in r.members} - {None})
            bad = [m for m in members if (m, r.dataset, int(r.size)) in noisy]
            if bad and not pd.isna(r.latency_p50_ms):
                rows[key] = "from " + ", ".join(bad)
    return Note(NOISY, rows)
