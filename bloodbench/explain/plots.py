"""PNG figures for the explain report: Grad-CAM grids, misclassified grid, reliability diagram.

Figures are built on ``matplotlib.figure.Figure`` (no pyplot state, no GUI backend) and
written atomically. A 28 px cell is blown up before drawing -- nearest-neighbour for the
image so its pixels stay honest, bilinear for the CAM which is a smooth map anyway -- so
each panel is at least ``MIN_PANEL_PX`` pixels wide.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from bloodbench.explain.calibration import ReliabilityBins
from bloodbench.formatting import png_bytes, short_name
from bloodbench.store.fsutil import atomic_write_bytes

MIN_PANEL_PX = 112
DPI = 100
CAM_CMAP = "jet"
OK_COLOR, BAD_COLOR = "#1a7f37", "#c62828"


def _save(fig: Figure, path: Path) -> Path:
    atomic_write_bytes(Path(path), png_bytes(fig, DPI, facecolor="white"))
    return Path(path)


def _upscale_factor(size: int) -> int:
    return max(1, math.ceil(MIN_PANEL_PX / size))


def upscale_image(img_u8: np.ndarray, factor: int) -> np.ndarray:
    """C x H x W uint8 -> (H*f) x (W*f) [x 3] float in [0, 1], nearest-neighbour."""
    img = np.asarray(img_u8, dtype=np.float32) / 255.0
    img = img.repeat(factor, axis=-2).repeat(factor, axis=-1)
    return img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)


def upscale_cam(cam: np.ndarray, factor: int) -> np.ndarray:
    """H x W map -> (H*f) x (W*f), bilinear, clipped back to [0, 1]."""
    t = torch.as_tensor(np.asarray(cam, dtype=np.float32))[None, None]
    if factor > 1:
        t = F.interpolate(t, scale_factor=factor, mode="bilinear", align_corners=False)
    return t[0, 0].clamp(0, 1).numpy()


def _empty_figure(path: Path, title: str, message: str) -> Path:
    """Still write the file (the report links to it), saying why it is empty."""
    fig = Figure(figsize=(7, 2.4))
    fig.text(0.5, 0.92, "\n".join(textwrap.wrap(title, 60)), ha="center", va="top", fontsize=12, fontweight="bold")
    fig.text(0.5, 0.3, message, ha="center", va="center", fontsize=11, color="#555555")
    return _save(fig, path)


def _rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img[..., None], 3, axis=-1) if img.ndim == 2 else img


def _framed(panel: np.ndarray) -> np.ndarray:
    """A 1 px dark frame, so light backgrounds do not bleed into the white page."""
    out = panel.copy()
    out[[0, -1], :] = 0.25
    out[:, [0, -1]] = 0.25
    return out


class _Mosaic:
    """All panels painted into one RGB array and drawn by a single ``imshow`` at 1 array px =
    1 output px: exact nearest-neighbour pixels, and several times faster to render than one
    Axes per panel under constrained layout (which took most of the command's time)."""

    def __init__(self, title: str, rows: int, cols: int, panel: int, panels_per_cell: int, caption_px: int,
                 right_px: int = 0, pad: int = 6, gap: int = 26, margin: int = 16) -> None:
        self.panel, self.pad, self.gap, self.margin = panel, pad, gap, margin
        self.caption_px = caption_px
        self.cell_w = panels_per_cell * panel + (panels_per_cell - 1) * pad
        self.cell_h = caption_px + panel
        self.w = 2 * margin + cols * self.cell_w + (cols - 1) * gap
        # ~12 px per character of the 13 pt bold title; narrow grids get a wrapped title
        self.title = "\n".join(textwrap.wrap(title, max(20, int((self.w + right_px - 20) / 12))))
        title_px = 22 + 22 * (self.title.count("\n") + 1)
        self.h = margin + rows * self.cell_h + (rows - 1) * (gap // 2)
        self.array = np.ones((self.h, self.w, 3), dtype=np.float32)
        self.fig = Figure(figsize=((self.w + right_px) / DPI, (self.h + title_px) / DPI), dpi=DPI)
        W, H = self.w + right_px, self.h + title_px
        self.ax = self.fig.add_axes((0, 0, self.w / W, self.h / H))
        self.ax.set_axis_off()
        self.fig_px = (W, H)

    def origin(self, row: int, col: int) -> tuple[int, int]:
        """Top-left (x, y) array px of a cell's first panel."""
        return (self.margin + col * (self.cell_w + self.gap),
                row * (self.cell_h + self.gap // 2) + self.caption_px)

    def put(self, row: int, col: int, j: int, rgb: np.ndarray) -> tuple[float, float]:
        x, y = self.origin(row, col)
        x += j * (self.panel + self.pad)
        self.array[y:y + self.panel, x:x + self.panel] = _framed(rgb)
        return x + self.panel / 2, y  # top-centre, for a label

    def text(self, x: float, y: float, s: str, **kw) -> None:
        self.ax.text(x, y, s, ha="center", va="bottom", **kw)

    def finish(self, path: Path) -> Path:
        self.ax.imshow(self.array, interpolation="nearest", extent=(0, self.w, self.h, 0))
        self.ax.set_xlim(0, self.w)
        self.ax.set_ylim(self.h, 0)
        W, H = self.fig_px
        self.fig.text(0.5, 1 - 8 / H, self.title, ha="center", va="top", fontsize=13,
                      fontweight="bold")
        return _save(self.fig, path)


def gradcam_grid(path: Path, images_u8: np.ndarray, cams: np.ndarray, y_true, y_pred, conf,
                 class_names, title: str, indices=None, cells_per_row: int = 4, alpha: float = 0.45) -> Path:
    """One cell per image: the image, its Grad-CAM heat map and the overlay, under a caption
    with the true and predicted class (green when right, red when wrong) and the confidence."""
    n = len(images_u8)
    if n == 0:
        return _empty_figure(path, title, "no test images in this group")
    size = images_u8.shape[-1]
    f = _upscale_factor(size)
    cols = min(cells_per_row, n)
    rows = math.ceil(n / cols)
    m = _Mosaic(title, rows, cols, size * f, 3, caption_px=56, right_px=110)
    cmap = colormaps[CAM_CMAP]
    for i in range(n):
        r, c = divmod(i, cols)
        t, p = int(y_true[i]), int(y_pred[i])
        img = _rgb(upscale_image(images_u8[i], f))
        heat = cmap(upscale_cam(cams[i], f))[..., :3].astype(np.float32)
        for j, (panel, label) in enumerate(((img, "image"), (heat, "Grad-CAM"),
                                            ((1 - alpha) * img + alpha * heat, "overlay"))):
            x, y = m.put(r, c, j, panel)
            m.text(x, y - 1, label, fontsize=7.5, color="#555555")
        x0, y0 = m.origin(r, c)
        idx = f"#{int(indices[i])}  " if indices is not None else ""
        caption = (f"{idx}true: {short_name(class_names[t])}\n"
                   f"pred: {short_name(class_names[p])}  (p = {float(conf[i]):.2f})")
        m.text(x0 + m.cell_w / 2, y0 - 16, caption,
               fontsize=9, color=OK_COLOR if t == p else BAD_COLOR, linespacing=1.15)
    W, H = m.fig_px
    cax = m.fig.add_axes(((m.w + 18) / W, 0.1 * m.h / H, 16 / W, 0.72 * m.h / H))
    cb = m.fig.colorbar(ScalarMappable(Normalize(0, 1), cmap), cax=cax)
    cb.ax.set_title("Grad-CAM", fontsize=9, pad=6)
    cb.set_label("normalised per image", fontsize=8.5)
    cb.ax.tick_params(labelsize=8)
    return m.finish(path)


def misclassified_grid(path: Path, images_u8: np.ndarray, y_true, y_pred, conf, class_names, title: str,
                       indices=None, per_row: int = 8) -> Path:
    """The misclassified test images themselves, large, with true -> predicted and confidence."""
    n = len(images_u8)
    if n == 0:
        return _empty_figure(path, title, "no misclassified test images")
    size = images_u8.shape[-1]
    f = _upscale_factor(size)
    cols = min(per_row, n)
    rows = math.ceil(n / cols)
    m = _Mosaic(title, rows, cols, size * f, 1, caption_px=52, gap=30)
    for i in range(n):
        r, c = divmod(i, cols)
        x, y = m.put(r, c, 0, _rgb(upscale_image(images_u8[i], f)))
        idx = f"#{int(indices[i])}  " if indices is not None else ""
        m.text(x, y - 2, f"{idx}p = {float(conf[i]):.2f}\n{short_name(class_names[int(y_true[i])], 19)}\n"
                         f"→ {short_name(class_names[int(y_pred[i])], 17)}",
               fontsize=8, color=BAD_COLOR, linespacing=1.1)
    return m.finish(path)


def reliability_diagram(path: Path, bins: ReliabilityBins, title: str) -> Path:
    """Accuracy per confidence bin against the diagonal, the gap shaded, counts underneath."""
    fig = Figure(figsize=(6.4, 7.2), layout="constrained")
    ax, hax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    lo, hi = bins.edges[:-1], bins.edges[1:]
    width = hi - lo
    centers = (lo + hi) / 2
    has = bins.count > 0
    acc = np.where(has, bins.accuracy, 0.0)
    conf = np.where(has, bins.confidence, 0.0)
    ax.bar(lo[has], acc[has], width=width[has], align="edge", color="#4c72b0", edgecolor="white",
           label="accuracy")
    gap_lo, gap_hi = np.minimum(acc, conf), np.maximum(acc, conf)
    ax.bar(lo[has], (gap_hi - gap_lo)[has], bottom=gap_lo[has], width=width[has], align="edge",
           color="#dd8452", alpha=0.45, edgecolor="#c44e52", hatch="//", label="gap to mean confidence")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.plot(conf[has], acc[has], "o", color="black", ms=3.5, label="bin (mean conf, acc)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title}\nECE = {bins.ece:.4f}  ({len(bins.count)} bins, N = {bins.n})", fontsize=11)
    ax.legend(loc="upper left", fontsize=8.5)
    ax.grid(alpha=0.3)
    hax.bar(centers, bins.count, width=width * 0.9, color="#8c8c8c")
    hax.set_yscale("symlog", linthresh=10)
    hax.set_xlabel("confidence (top-label probability)")
    hax.set_ylabel("images")
    hax.grid(alpha=0.3)
    return _save(fig, path)
