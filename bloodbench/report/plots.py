"""Report figures, drawn with matplotlib's Agg canvas directly (no pyplot global state).

Every figure is byte-stable: fixed rcParams and DPI, no ``Software`` metadata, inputs
iterated in sorted order, and labels placed by a deterministic greedy search.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from bloodbench import formatting
from bloodbench.formatting import short_name
from bloodbench.store.fsutil import atomic_write_bytes

DPI = 130
STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 8.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linestyle": "-",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "savefig.dpi": DPI,
    "figure.dpi": DPI,
    "image.interpolation": "nearest",
    "path.simplify": False,
}
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]


def new_figure(width: float, height: float, **subplots) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    fig.get_layout_engine().set(w_pad=0.1, h_pad=0.08)
    FigureCanvasAgg(fig)
    axes = fig.subplots(**subplots) if subplots else fig.add_subplot()
    return fig, axes


def png_bytes(fig: Figure) -> bytes:
    return formatting.png_bytes(fig, DPI)


def save(fig: Figure, path: Path) -> Path:
    atomic_write_bytes(path, png_bytes(fig))
    return path


def family_colors(families: Sequence[str]) -> dict[str, str]:
    return {f: PALETTE[i % len(PALETTE)] for i, f in enumerate(sorted(set(families)))}


def _overlap(a, b) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


# Offsets in points (dx, dy) and alignments, tried in order for each label.
_CANDIDATES = [(dx * r, dy * r, ha, va)
               for r in (1, 2, 3)
               for dx, dy, ha, va in [(6, 5, "left", "bottom"), (6, -5, "left", "top"), (-6, 5, "right", "bottom"),
                                      (-6, -5, "right", "top"), (0, 8, "center", "bottom"),
                                      (0, -8, "center", "top"), (9, 0, "left", "center"),
                                      (-9, 0, "right", "center")]]


def place_labels(ax, xs: Sequence[float], ys: Sequence[float], labels: Sequence[str], fontsize: float = 8.5,
                 segments: Sequence[tuple[float, float, float, float]] = ()) -> None:
    """Label points, trying offsets around each until one overlaps nothing already drawn.

    Obstacles are the points' markers, ``segments`` (error bars, the front line, in data
    coordinates), labels already placed and the axes edge; when every offset collides the
    least-overlapping one wins and gets a leader line.
    """
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    fig.draw_without_rendering()
    axbox = ax.get_window_extent(renderer)
    pts = ax.transData.transform(np.column_stack([xs, ys]))
    r = 5 * fig.dpi / 72
    from matplotlib.transforms import Bbox

    obstacles = [Bbox.from_extents(x - r, y - r, x + r, y + r) for x, y in pts]
    lines = []
    for x0, y0, x1, y1 in segments:
        (a, b), (c, d) = ax.transData.transform([(x0, y0), (x1, y1)])
        lines.append(Bbox.from_extents(min(a, c) - 1.5, min(b, d) - 1.5, max(a, c) + 1.5, max(b, d) + 1.5))
    placed: list = []
    order = sorted(range(len(labels)), key=lambda i: (-ys[i], xs[i], labels[i]))
    for i in order:
        best = None
        for dx, dy, ha, va in _CANDIDATES:
            ann = ax.annotate(labels[i], (xs[i], ys[i]), xytext=(dx, dy), textcoords="offset points",
                              ha=ha, va=va, fontsize=fontsize)
            box = ann.get_window_extent(renderer).padded(1.5)
            cost = sum(_overlap(box, o) for j, o in enumerate(obstacles) if j != i)
            cost += sum(_overlap(box, p) for p in placed)
            cost += 0.5 * sum(_overlap(box, seg) for seg in lines)
            inside = _overlap(box, axbox)
            cost += 10 * (box.width * box.height - inside)
            ann.remove()
            if best is None or cost < best[0] - 1e-9:
                best = (cost, dx, dy, ha, va, box)
            if cost == 0:
                break
        cost, dx, dy, ha, va, box = best
        arrow = {"arrowstyle": "-", "color": "0.5", "lw": 0.6} if cost > 0 or abs(dx) + abs(dy) > 20 else None
        ax.annotate(labels[i], (xs[i], ys[i]), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                    fontsize=fontsize, arrowprops=arrow)
        placed.append(box)


def _plain(v: float, _pos=None) -> str:
    return f"{v:,.0f}" if v >= 1000 else f"{v:g}"


def plain_log_axis(axis) -> None:
    """Log axis labelled 1-2-5 in plain numbers (0.5, 1, 2, ...), not 2×10⁰ minor labels.

    A range under a decade (0.66 to 1.5 M parameters, say) holds too few 1..9 multiples
    to label, so it gets evenly spaced round ticks (0.6, 0.8, ..., 1.6) instead.
    """
    lo, hi = sorted(axis.get_view_interval())
    ratio = hi / max(lo, 1e-300)
    if ratio >= 10:
        subs = (1.0, 2.0, 5.0) if ratio >= 30 else (1.0, 2.0, 3.0, 5.0)
        axis.set_major_locator(LogLocator(base=10, subs=subs))
    else:
        axis.set_major_locator(MaxNLocator(nbins=7, steps=[1, 2, 2.5, 5, 10]))
    axis.set_major_formatter(FuncFormatter(_plain))
    axis.set_minor_locator(LogLocator(base=10, subs=tuple(float(i) for i in range(1, 10))))
    axis.set_minor_formatter(NullFormatter())


def scatter_tradeoff(rows: pd.DataFrame, x: str, *, xlabel: str, title: str, front: str | None = None,
                     xscale: float = 1.0, log: bool = True) -> Figure:
    """Test accuracy (mean ± std over seeds) against one cost, Pareto front as a step line.

    ``front`` names a boolean column; its True rows are joined by a post-step line, which
    is the boundary of what is reachable: no model sits above-left of it.
    """
    with matplotlib.rc_context(STYLE):
        fig, ax = new_figure(8.4, 4.8)
        data = rows.dropna(subset=["acc_mean", x]).sort_values(["model"], kind="stable")
        if data.empty:
            ax.text(0.5, 0.5, "no rows with both accuracy and this cost", ha="center", va="center",
                    transform=ax.transAxes)
            ax.set_title(title)
            return fig
        xs = (data[x].astype(float) * xscale).to_numpy()
        ys = (data["acc_mean"].astype(float) * 100).to_numpy()
        err = (data["acc_std"].astype(float).fillna(0) * 100).to_numpy()
        fam = data["family"].fillna("other").astype(str).to_numpy()
        colors = family_colors(fam)
        if log:
            ax.set_xscale("log")
        if np.ptp(xs) == 0:  # one x value: a fixed range around it (set before plotting: no singular autoscale)
            ax.set_xlim(*((xs[0] / 3, xs[0] * 3) if log else (xs[0] - 1, xs[0] + 1)))
        on = data[front].fillna(False).astype(bool).to_numpy() if front else np.ones(len(data), bool)
        for f in sorted(colors):
            for on_front in (True, False):
                m = (fam == f) & (on == on_front)
                if not m.any():
                    continue
                ax.errorbar(xs[m], ys[m], yerr=err[m], fmt="o", ms=7, capsize=3, lw=1, color=colors[f],
                            mfc=colors[f] if on_front else "white", mew=1.5, zorder=3)
        segments = [(x0, y0 - e, x0, y0 + e) for x0, y0, e in zip(xs, ys, err) if e > 0]
        if front and on.any():
            order = np.argsort(xs[on], kind="stable")
            fx, fy = xs[on][order], ys[on][order]
            ax.step(fx, fy, where="post", color="0.2", lw=1.2, ls="--", zorder=2)
            for k in range(len(fx) - 1):
                segments += [(fx[k], fy[k], fx[k + 1], fy[k]), (fx[k + 1], fy[k], fx[k + 1], fy[k + 1])]
        ax.margins(x=0.18, y=0.15)
        ax.autoscale_view()
        if log:
            plain_log_axis(ax.xaxis)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy (%), mean ± std over seeds")
        ax.set_title(title)
        handles = [Line2D([], [], marker="o", ls="", color=colors[f], mfc=colors[f], ms=7, label=f)
                   for f in sorted(colors)]
        if front:
            handles += [Line2D([], [], color="0.2", lw=1.2, ls="--", label="Pareto front"),
                        Line2D([], [], marker="o", ls="", color="0.3", mfc="white", mew=1.5, ms=7,
                               label="dominated")]
        # Outside the axes: a legend never hides a point.
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="family",
                  title_fontsize=8.5, alignment="left")
        place_labels(ax, list(xs), list(ys), list(data["model"]), segments=segments)
    return fig


def training_curves(histories: Sequence[tuple[int, list[dict]]], title: str) -> Figure:
    """Loss and accuracy per epoch, one colour per seed; solid = train, dashed = validation."""
    with matplotlib.rc_context(STYLE):
        fig, (ax_loss, ax_acc) = new_figure(9.0, 3.8, nrows=1, ncols=2)
        for k, (seed, hist) in enumerate(sorted(histories, key=lambda t: t[0])):
            color = PALETTE[k % len(PALETTE)]
            h = pd.DataFrame(hist).sort_values("epoch")
            for col, ax, scale in (("loss", ax_loss, 1.0), ("acc", ax_acc, 100.0)):
                for split, ls in (("train", "-"), ("val", "--")):
                    name = f"{split}_{col}"
                    if name in h and h[name].notna().any():
                        ax.plot(h["epoch"], h[name] * scale, ls=ls, color=color, lw=1.4)
        for ax in (ax_loss, ax_acc):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no 2.5 ticks
            ax.set_xlabel("epoch")
        ax_loss.set_ylabel("cross-entropy loss")
        ax_loss.set_title("loss")
        ax_acc.set_ylabel("accuracy (%)")
        ax_acc.set_title("accuracy")
        seeds = [s for s, _ in sorted(histories, key=lambda t: t[0])]
        handles = [Line2D([], [], color=PALETTE[k % len(PALETTE)], lw=2, label=f"seed {s}")
                   for k, s in enumerate(seeds)]
        handles += [Line2D([], [], color="0.3", ls="-", label="train"),
                    Line2D([], [], color="0.3", ls="--", label="validation")]
        ax_acc.legend(handles=handles, loc="lower right")
        fig.suptitle(title)
    return fig


def confusion_matrix(counts: np.ndarray, class_names: Sequence[str], title: str) -> Figure:
    """Row-normalised confusion matrix (recall on the diagonal) with the raw counts in each cell.

    Ticks use short class names (one BloodMNIST name is 70 characters, which squeezed the
    grid to nothing) and the figure grows with the class count, so each count fits its cell.
    """
    counts = np.asarray(counts, dtype=float)
    rows = counts.sum(1, keepdims=True)
    norm = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    k = len(counts)
    names = [short_name(n) for n in class_names] if len(class_names) == k else [str(i) for i in range(k)]
    label_in = 0.075 * max(len(n) for n in names)  # the longest tick label at 9 pt, in inches
    grid_in = 0.75 * k
    with matplotlib.rc_context(STYLE | {"axes.grid": False}):
        fig, ax = new_figure(grid_in + label_in + 2.0, grid_in + 0.75 * label_in + 1.3)
        im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        fs = 9 if k <= 10 else 6
        for i in range(k):
            for j in range(k):
                if counts[i, j] == 0 and i != j:
                    continue
                color = "white" if norm[i, j] > 0.55 else "black"
                pct = "<1%" if 0 < norm[i, j] < 0.005 else f"{norm[i, j] * 100:.0f}%"
                ax.text(j, i, f"{pct}\n{int(counts[i, j]):,}", ha="center", va="center", fontsize=fs, color=color)
        ax.set_xticks(range(k), names, rotation=40, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(k), names)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        fig.suptitle(title)  # over the whole figure: the colourbar never overlaps it
        cbar = fig.colorbar(im, ax=ax, shrink=0.85, pad=0.03)
        cbar.set_label("fraction of the true class (row)")
        for spine in ax.spines.values():
            spine.set_visible(False)
    return fig
