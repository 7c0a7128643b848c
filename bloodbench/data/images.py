"""Images to classify (``bloodbench predict``): PNG/JPEG files, folders of them, or a MedMNIST-layout
npz, as the uint8 N×C×H×W tensor the training pipeline takes.

An image of another size is resized (PIL, bicubic with antialiasing) and its entry says from
what size; a wrong channel count or an unreadable file is one error line naming the file.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from bloodbench.data.medmnist_data import SPLITS
from bloodbench.errors import BloodbenchError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_MODES = {1: "grayscale", 3: "RGB"}


@dataclass
class Inputs:
    """Images to classify: names (file, or ``file.npz[i]``), uint8 N×C×H×W, per image the original
    H×W when it was resized (else None), and labels when the npz had them."""

    names: list[str]
    images: torch.Tensor
    resized_from: list[tuple[int, int] | None]
    labels: list[int | None] = field(default_factory=list)

    @property
    def n_resized(self) -> int:
        return sum(r is not None for r in self.resized_from)


def _fit(arr: np.ndarray, size: int, channels: int, name: str) -> tuple[np.ndarray, tuple[int, int] | None]:
    """H×W×C uint8 at ``size``×``size`` (resized when needed) and the original H×W if it was resized."""
    from PIL import Image

    have = 1 if arr.ndim == 2 else arr.shape[2]
    if have != channels:
        raise BloodbenchError(f"{name} has {have} channel{'s' if have != 1 else ''}, the model takes {channels} "
                              f"({_MODES.get(channels, channels)}): convert the image first")
    h, w = arr.shape[:2]
    if (h, w) == (size, size):
        return arr.reshape(size, size, channels), None
    img = Image.fromarray(arr if arr.ndim == 2 or channels != 1 else arr[..., 0])
    out = np.asarray(img.resize((size, size), Image.Resampling.BICUBIC), dtype=np.uint8)
    return out.reshape(size, size, channels), (h, w)


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode == "P":  # a palette stores RGB colours
                img = img.convert("RGBA" if "transparency" in img.info else "RGB")
            elif img.mode in ("I;16", "I", "F"):
                raise BloodbenchError(f"{path} is a {img.mode} image; 8-bit grayscale or RGB images only")
            return np.asarray(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BloodbenchError(f"{path} is not a readable PNG/JPEG image ({msg})") from None


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise BloodbenchError(f"{path} holds no {'/'.join(IMAGE_SUFFIXES)} files")
        return files
    if not path.exists():
        raise BloodbenchError(f"{path} not found")
    return [path]


def _read_npz(path: Path, split: str) -> tuple[np.ndarray, np.ndarray | None]:
    if split not in SPLITS:
        raise BloodbenchError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            key = f"{split}_images"
            if key not in npz.files:
                raise BloodbenchError(f"{path} has no {key} array (MedMNIST layout: <split>_images, "
                                      f"<split>_labels); it has {', '.join(npz.files) or 'nothing'}")
            images = np.asarray(npz[key])
            labels = np.asarray(npz[f"{split}_labels"]).reshape(-1) if f"{split}_labels" in npz.files else None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BloodbenchError(f"{path} is not a readable npz ({msg})") from None
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or len(images) == 0:
        raise BloodbenchError(f"{path}: {split}_images is {images.dtype}{tuple(images.shape)}, expected uint8 "
                              f"N×H×W or N×H×W×C")
    return images, labels


def read_inputs(paths: Sequence[str | os.PathLike], size: int, channels: int, split: str = "test") -> Inputs:
    """Everything in ``paths`` (files, folders, npz files), in order, at ``size``×``size``."""
    names: list[str] = []
    arrays: list[np.ndarray] = []
    resized: list[tuple[int, int] | None] = []
    labels: list[int | None] = []
    for given in paths:
        path = Path(given)
        if path.suffix.lower() == ".npz" and path.is_file():
            images, y = _read_npz(path, split)
            for i, img in enumerate(images):
                name = f"{path.name}[{split} {i}]"
                arr, orig = _fit(img, size, channels, name)
                names.append(name), arrays.append(arr), resized.append(orig)
                labels.append(int(y[i]) if y is not None and len(y) == len(images) else None)
            continue
        for f in _files(path):
            arr, orig = _fit(_read_image(f), size, channels, str(f))
            names.append(str(f)), arrays.append(arr), resized.append(orig), labels.append(None)
    if not arrays:
        raise BloodbenchError("no images given")
    stacked = np.stack(arrays).transpose(0, 3, 1, 2)
    return Inputs(names, torch.from_numpy(np.ascontiguousarray(stacked)), resized, labels)
