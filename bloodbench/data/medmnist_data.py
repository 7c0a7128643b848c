"""Loading MedMNIST 2D datasets from their official ``.npz`` files into uint8 tensors.

Uses ``medmnist.INFO`` for everything the files do not say (class names, channels,
md5 sums, file names) so a new MedMNIST flag works without code changes here.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bloodbench.choices import SIZES
from bloodbench.errors import BloodbenchError
from bloodbench.store.cache import cache_dir
from bloodbench.store.fsutil import atomic_write_text

SPLITS = ("train", "val", "test")
DATA_DIR_ENV = "BLOODBENCH_DATA_DIR"


def _medmnist_info() -> dict:
    from medmnist.info import INFO

    return INFO


def _is_multi_label(info: dict) -> bool:
    return info["task"].startswith("multi-label")


def available_flags() -> list[str]:
    """Single-label MedMNIST 2D dataset flags (3D volumes and multi-label ChestMNIST are out of scope)."""
    return sorted(f for f, i in _medmnist_info().items() if not f.endswith("3d") and not _is_multi_label(i))


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about one (flag, size) file, taken from ``medmnist.INFO``."""

    flag: str
    size: int
    n_channels: int
    n_classes: int
    class_names: tuple[str, ...]
    task: str
    md5: str
    filename: str
    n_samples: dict

    @property
    def in_channels(self) -> int:
        return self.n_channels


def dataset_info(flag: str = "bloodmnist", size: int = 28) -> DatasetInfo:
    info_all = _medmnist_info()
    if flag not in info_all or flag.endswith("3d"):
        import difflib

        close = difflib.get_close_matches(flag, available_flags(), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"choose one of {', '.join(available_flags())}"
        raise BloodbenchError(f"unknown dataset {flag!r}: {hint}")
    if size not in SIZES:
        raise BloodbenchError(f"image size {size} is not available: choose one of {', '.join(map(str, SIZES))}")
    info = info_all[flag]
    if _is_multi_label(info):
        raise BloodbenchError(
            f"{flag} is a {info['task']} dataset; bloodbench benchmarks single-label classifiers: "
            f"choose one of {', '.join(available_flags())}"
        )
    suffix = "" if size == 28 else f"_{size}"
    labels = info["label"]
    return DatasetInfo(
        flag=flag,
        size=size,
        n_channels=int(info["n_channels"]),
        n_classes=len(labels),
        class_names=tuple(labels[str(i)] for i in range(len(labels))),
        task=info["task"],
        md5=info[f"MD5{suffix}"],
        filename=f"{flag}{suffix}.npz",
        n_samples=dict(info["n_samples"]),
    )


#: The project's shared data folder, beside the checkout (the README's quick start puts the files there).
SHARED_DATA = Path("..") / "shared" / "data"
REPO_ROOT = Path(__file__).resolve().parents[2]
MEDMNIST_ROOT = Path("~/.medmnist")


def data_dir_candidates() -> list[Path]:
    """Where the files are looked for without ``--data-dir`` or ``$BLOODBENCH_DATA_DIR``, in order:
    ``../shared/data`` from the current folder, then from the checkout, then medmnist's default root."""
    out = []
    for path in (Path.cwd() / SHARED_DATA, REPO_ROOT / SHARED_DATA, MEDMNIST_ROOT.expanduser()):
        if path.resolve() not in [p.resolve() for p in out]:
            out.append(path)
    return out


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """``--data-dir`` beats ``$BLOODBENCH_DATA_DIR`` beats ``../shared/data`` (from the current folder, then
    from the checkout) where it exists, beats medmnist's default root (``~/.medmnist``)."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    candidates = data_dir_candidates()
    return next((p.resolve() for p in candidates[:-1] if p.is_dir()), candidates[-1])


def _where(data_dir: str | os.PathLike | None) -> str:
    """How the folder was chosen, for a message: said plainly when nothing was asked for."""
    if data_dir or os.environ.get(DATA_DIR_ENV):
        return ""
    return (f" ({DATA_DIR_ENV} is not set, and no {SHARED_DATA} was found from here or from the checkout: "
            f"set {DATA_DIR_ENV} or pass --data-dir)")


def _cache_file() -> Path:
    return cache_dir() / "md5_verdicts.json"


def file_md5(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _read_cache(cache_path: Path) -> dict:
    """The verdicts, {} when the file is missing, unreadable or not an object (it is only a speed-up:
    a bad one is rebuilt by the next verdict)."""
    try:
        cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    except (OSError, ValueError, RecursionError):
        return {}
    return cache if isinstance(cache, dict) else {}


def _remember_verdict(cache_path: Path, key: str, md5: str) -> None:
    """Merge one verdict into the cache under a lock, so parallel runs do not drop each other's."""
    try:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        with open(cache_path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            cache = _read_cache(cache_path)
            cache[key] = md5
            atomic_write_text(cache_path, json.dumps(cache, indent=0, sort_keys=True))
    except OSError:
        pass  # a read-only cache only costs a re-hash next time


def verify_md5(path: Path, expected: str) -> str:
    """Check ``path`` against ``expected``; returns "ok" or "ok (cached)".

    The verdict is cached keyed on (absolute path, size, mtime) so the 35 MB hash is
    computed once per file version, not once per run. A mismatch raises.
    """
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    cache_path = _cache_file()
    if _read_cache(cache_path).get(key) == expected:
        return "ok (cached)"
    actual = file_md5(path)
    if actual != expected:
        raise BloodbenchError(
            f"{path} has md5 {actual}, expected {expected}: the file is corrupt or not the official one; "
            f"delete it and run `bloodbench data download`, or pass --no-verify for a file you made yourself"
        )
    _remember_verdict(cache_path, key, expected)
    return "ok"


@dataclass
class Split:
    """One split held in memory: uint8 images (N, C, H, W) and int64 labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self, n_classes: int) -> torch.Tensor:
        return torch.bincount(self.labels, minlength=n_classes)


@dataclass
class MedMNISTData:
    info: DatasetInfo
    path: Path
    splits: dict[str, Split]
    md5_verdict: str

    def __getitem__(self, split: str) -> Split:
        if split not in self.splits:
            raise BloodbenchError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
        return self.splits[split]


def _to_nchw(images: np.ndarray, n_channels: int) -> torch.Tensor:
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] != n_channels:
        raise ValueError(f"images have shape {images.shape}, expected N x H x W (x {n_channels})")
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def load_dataset(
    flag: str = "bloodmnist",
    size: int = 28,
    data_dir: str | os.PathLike | None = None,
    verify: bool = True,
    splits: tuple[str, ...] = SPLITS,
) -> MedMNISTData:
    """Load a MedMNIST 2D dataset's splits as uint8 tensors; never downloads."""
    info = dataset_info(flag, size)
    root = resolve_data_dir(data_dir)
    path = root / info.filename
    if not root.is_dir():
        raise BloodbenchError(
            f"data directory {root} does not exist{_where(data_dir)}: pass --data-dir or set {DATA_DIR_ENV} to the "
            f"folder holding {info.filename}, or run `bloodbench data download --dataset {flag} --size {size}`"
        )
    if not path.is_file():
        raise BloodbenchError(
            f"{path} not found{_where(data_dir) if root == MEDMNIST_ROOT.expanduser() else ''}: pass --data-dir or "
            f"set {DATA_DIR_ENV} to the folder holding {info.filename}, or run `bloodbench data download --dataset "
            f"{flag} --size {size}`"
        )
    verdict = verify_md5(path, info.md5) if verify else "not checked"
    out: dict[str, Split] = {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            for split in splits:
                images = npz[f"{split}_images"]
                labels = npz[f"{split}_labels"].reshape(-1).astype(np.int64)
                if images.dtype != np.uint8 or len(images) != len(labels):
                    raise ValueError(f"{split} split: images {images.dtype}{images.shape}, labels {labels.shape}")
                if images.shape[1:3] != (size, size):
                    raise ValueError(f"{split} images are {images.shape[1]}x{images.shape[2]}, expected {size}x{size}")
                out[split] = Split(_to_nchw(images, info.n_channels), torch.from_numpy(labels))
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BloodbenchError(
            f"{path} is truncated or corrupt ({msg}): delete it and run `bloodbench data download "
            f"--dataset {flag} --size {size}`"
        ) from None
    for split, s in out.items():
        if int(s.labels.max()) >= info.n_classes or int(s.labels.min()) < 0:
            raise BloodbenchError(f"{path}: {split} labels fall outside 0..{info.n_classes - 1}; the file is not {flag}")
    return MedMNISTData(info, path, out, verdict)


def download(flag: str = "bloodmnist", size: int = 28, data_dir: str | os.PathLike | None = None) -> Path:
    """Fetch the official file with medmnist's own downloader (explicit request only)."""
    import medmnist

    info = dataset_info(flag, size)
    root = resolve_data_dir(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    cls = getattr(medmnist, _medmnist_info()[flag]["python_class"])
    try:
        cls(split="test", root=str(root), download=True, size=size)
    except Exception as exc:  # medmnist raises bare RuntimeError with a multi-line text
        raise BloodbenchError(
            f"download of {info.filename} into {root} failed ({str(exc).strip().splitlines()[0]}): "
            f"check the network, or copy the file there by hand"
        ) from None
    return root / info.filename
