"""Batching, normalisation and augmentation as whole-batch tensor ops on the device.

No DataLoader workers and no PIL in the hot path: a split lives on the training device
as uint8, a batch is an index into it, and augmentation is a handful of vectorised ops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import torch

from bloodbench.data.medmnist_data import Split


def epoch_generator(seed: int, epoch: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator derived from (seed, epoch), so a resumed run replays the same batches."""
    g = torch.Generator(device=device)
    g.manual_seed(int(seed) * 100_003 + int(epoch))
    return g


@dataclass
class Normalizer:
    """Per-channel mean/std on the [0, 1] scale, computed once from the training split."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    #: (mean, std) tensors per (device, dtype): built once, not copied host-to-device every batch.
    _tensors: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_split(cls, split: Split) -> "Normalizer":
        x = split.images.float().div_(255)
        mean = x.mean(dim=(0, 2, 3))
        std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
        return cls(tuple(round(v, 6) for v in mean.tolist()), tuple(round(v, 6) for v in std.tolist()))

    def __call__(self, images_u8: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        x = images_u8.to(dtype).div_(255)
        return self.normalize(x)

    def normalize(self, x01: torch.Tensor) -> torch.Tensor:
        key = (x01.device, x01.dtype)
        if key not in self._tensors:
            with torch.inference_mode(False):  # normal tensors, usable by training after evaluation made them
                self._tensors[key] = tuple(torch.tensor(v, device=x01.device, dtype=x01.dtype).view(1, -1, 1, 1)
                                           for v in (self.mean, self.std))
        mean, std = self._tensors[key]
        return (x01 - mean) / std


def augment_batch(
    x01: torch.Tensor,
    generator: torch.Generator,
    flips: bool = True,
    rot90: bool = True,
    color_jitter: float = 0.0,
) -> torch.Tensor:
    """Random h/v flips, 90-degree rotations and brightness/contrast jitter, per sample.

    Blood-cell smears have no canonical orientation, so the dihedral group is free
    augmentation. ``x01`` is a float batch on the [0, 1] scale.
    """
    n = x01.shape[0]
    dev = x01.device

    def coin() -> torch.Tensor:
        return (torch.rand(n, generator=generator, device=dev) < 0.5).view(n, 1, 1, 1)

    if flips:
        x01 = torch.where(coin(), x01.flip(-1), x01)
        x01 = torch.where(coin(), x01.flip(-2), x01)
    if rot90 and x01.shape[-1] == x01.shape[-2]:
        # A transpose plus the flips above spans all 8 elements of the dihedral group.
        x01 = torch.where(coin(), x01.transpose(-1, -2), x01)
    if color_jitter > 0:
        b = 1 + (torch.rand(n, 1, 1, 1, generator=generator, device=dev) * 2 - 1) * color_jitter
        c = 1 + (torch.rand(n, 1, 1, 1, generator=generator, device=dev) * 2 - 1) * color_jitter
        mean = x01.mean(dim=(1, 2, 3), keepdim=True)
        x01 = ((x01 - mean) * c + mean * b).clamp_(0, 1)
    return x01


def class_weights(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """sklearn's "balanced" weights, n_samples / (n_classes * count), for a weighted loss."""
    from sklearn.utils.class_weight import compute_class_weight

    present = torch.unique(labels).numpy()
    w = torch.ones(n_classes, dtype=torch.float32)
    w[present] = torch.as_tensor(
        compute_class_weight("balanced", classes=present, y=labels.numpy()), dtype=torch.float32
    )
    return w


class TensorBatches:
    """Iterates ``(uint8 images, labels)`` batches of a split that already lives on ``device``.

    ``sampler`` is ``"shuffle"`` (a permutation per epoch), ``"balanced"`` (class-balanced
    sampling with replacement, one epoch = N draws) or ``"sequential"`` (evaluation).
    """

    def __init__(self, split: Split, batch_size: int, device: torch.device | str = "cpu",
                 sampler: str = "shuffle", drop_last: bool = False) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if sampler not in ("shuffle", "balanced", "sequential"):
            raise ValueError(f"unknown sampler {sampler!r}")
        self.device = torch.device(device)
        self.images = split.images.to(self.device)
        self.labels = split.labels.to(self.device)
        self.batch_size = batch_size
        self.sampler = sampler
        self.drop_last = drop_last
        if sampler == "balanced":
            counts = torch.bincount(split.labels).float()
            self._sample_weights = (1.0 / counts.clamp_min(1))[split.labels].to(self.device)

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, generator: torch.Generator | None) -> torch.Tensor:
        n = len(self.labels)
        if self.sampler == "sequential":
            return torch.arange(n, device=self.device)
        if self.sampler == "balanced":
            return torch.multinomial(self._sample_weights, n, replacement=True, generator=generator)
        return torch.randperm(n, generator=generator, device=self.device)

    def __call__(self, generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        idx = self.order(generator)
        for i in range(len(self)):
            b = idx[i * self.batch_size:(i + 1) * self.batch_size]
            yield self.images[b], self.labels[b]
