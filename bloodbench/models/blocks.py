"""Building blocks shared by every model family (defined once, reused everywhere)."""

from __future__ import annotations

import torch
from torch import nn


class ConvBNAct(nn.Sequential):
    """Conv2d -> BatchNorm2d -> activation, the unit most of our CNNs are made of."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        groups: int = 1,
        act: type[nn.Module] | None = nn.ReLU,
    ) -> None:
        if padding is None:
            padding = kernel_size // 2
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        if act is not None:
            layers.append(act(inplace=True) if act in (nn.ReLU, nn.SiLU, nn.ReLU6) else act())
        super().__init__(*layers)
        self.out_channels = out_channels


class SqueezeExcitation(nn.Module):
    """Channel re-weighting from global context (Hu et al., 2018)."""

    def __init__(self, channels: int, reduction: int = 16, min_hidden: int = 8) -> None:
        super().__init__()
        hidden = max(min_hidden, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.nn.functional.adaptive_avg_pool2d(x, 1)
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))
        return x * s


class ChannelAttention(nn.Module):
    """CBAM channel gate: a shared MLP over average- and max-pooled descriptors."""

    def __init__(self, channels: int, reduction: int = 16, min_hidden: int = 8) -> None:
        super().__init__()
        hidden = max(min_hidden, channels // reduction)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(torch.nn.functional.adaptive_avg_pool2d(x, 1))
        mx = self.mlp(torch.nn.functional.adaptive_max_pool2d(x, 1))
        return x * torch.sigmoid(avg + mx)


class SpatialAttention(nn.Module):
    """CBAM spatial gate: a 7x7 conv over channel-wise mean and max maps."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        desc = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(desc))


class CBAM(nn.Module):
    """Convolutional Block Attention Module (Woo et al., 2018): channel then spatial."""

    def __init__(self, channels: int, reduction: int = 16, spatial_kernel: int = 7) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(spatial_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))


class ClassifierHead(nn.Sequential):
    """Global average pooling, dropout and a linear layer: makes any backbone size-agnostic."""

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.0, hidden: int | None = None) -> None:
        layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if hidden:
            layers += [nn.Dropout(dropout), nn.Linear(in_features, hidden), nn.ReLU(inplace=True)]
            in_features = hidden
        layers += [nn.Dropout(dropout), nn.Linear(in_features, num_classes)]
        super().__init__(*layers)


class MaybeMaxPool2d(nn.MaxPool2d):
    """Max-pool that is skipped when it would leave a map smaller than ``min_size``.

    Lets deep ImageNet layouts (five 2x pools) run on 28 px inputs without collapsing to
    1x1. The decision depends only on the input shape, so fvcore/jit tracing and
    ``torch.compile`` see a fixed graph for a fixed input size.
    """

    def __init__(self, kernel_size: int = 2, stride: int | None = None, min_size: int = 2) -> None:
        super().__init__(kernel_size, stride)
        self.min_size = min_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size, self.stride  # ints: set from ints in __init__
        if (min(int(x.shape[-2]), int(x.shape[-1])) - k) // s + 1 < self.min_size:
            return x
        return super().forward(x)
