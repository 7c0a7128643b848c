"""Convolutional autoencoder whose bottleneck feeds the classifier.

Reconstruction acts as a regulariser: the trainer calls ``forward_with_aux`` and adds
the returned (already weighted) MSE to the classification loss. ``forward`` skips the
decoder, so inference and profiling cost only encoder + head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bloodbench.models._api import register_model
from bloodbench.models.blocks import ClassifierHead, ConvBNAct


class ConvAutoencoder(nn.Module):
    """Strided ConvBNAct encoder (28 -> 28, 14, 7, 4), mirrored upsample+conv decoder."""

    def __init__(self, in_channels: int, num_classes: int, widths=(32, 64, 128, 256), dropout: float = 0.3,
                 aux_weight: float = 0.5) -> None:
        super().__init__()
        self.aux_weight = aux_weight
        stages: list[nn.Module] = []
        c = in_channels
        for i, w in enumerate(widths):
            stages.append(nn.Sequential(ConvBNAct(c, w, 3, stride=1 if i == 0 else 2), ConvBNAct(w, w)))
            c = w
        self.encoder = nn.Sequential(*stages)
        self.head = ClassifierHead(c, num_classes, dropout=dropout)
        # Decoder step i upsamples to the size of encoder stage (n-2-i)'s output, so odd
        # sizes (7 -> 4 -> 7) round-trip exactly; the last conv is linear because the
        # target is the normalised (signed) input.
        dec: list[nn.Module] = []
        for w in reversed(widths[:-1]):
            dec.append(ConvBNAct(c, w))
            c = w
        self.decoder = nn.ModuleList(dec)
        self.reconstruct = nn.Conv2d(c, in_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        sizes = []
        for stage in self.encoder:
            x = stage(x)
            sizes.append((int(x.shape[-2]), int(x.shape[-1])))
        return x, sizes

    def decode(self, z: torch.Tensor, sizes: list[tuple[int, int]], out_size: tuple[int, int]) -> torch.Tensor:
        for block, size in zip(self.decoder, reversed(sizes[:-1])):
            z = block(F.interpolate(z, size=size, mode="nearest"))
        out = self.reconstruct(z)
        if tuple(out.shape[-2:]) != tuple(out_size):  # only if the first stage was strided
            out = F.interpolate(out, size=out_size, mode="bilinear", align_corners=False)
        return out

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and ``aux_weight * MSE(decoder(encoder(x)), x)`` as a scalar tensor."""
        z, sizes = self.encode(x)
        logits = self.head(z)
        recon = self.decode(z, sizes, (int(x.shape[-2]), int(x.shape[-1])))
        aux = F.mse_loss(recon.float(), x.float()) * self.aux_weight
        return logits, aux


@register_model(
    family="autoencoder",
    description="strided conv encoder + GAP head, with a decoder whose reconstruction MSE is an auxiliary loss",
    origin="seed project autoencoder classifier; supervised AE regularisation as in Le et al. 2018",
    recipe={"label_smoothing": 0.05},
    target_layer="encoder.3",
)
def autoencoder_cnn(in_channels: int = 3, num_classes: int = 8, **kwargs) -> nn.Module:
    return ConvAutoencoder(in_channels, num_classes, **kwargs)
