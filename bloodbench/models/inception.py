"""Compact GoogLeNet: Inception blocks at roughly half GoogLeNet's widths, sized for 28 px.

GoogLeNet's stem divides the input by 8 before the first Inception block; here a two-conv
stride-1 stem and three stride-2 pools give 28 -> 14 -> 7 -> 4, so 28 px images keep
spatial detail for the multi-scale branches.

``width`` scales every layer's channels, as timm's width-multiplied variants do
(``mobilenetv3_small_050``): ``inception_small`` is the widest step of 0.05 whose 28 px
forward fits 25 M MACs, a budget the report ranks models under; chosen by MACs, not by accuracy.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from bloodbench.models._api import register_model
from bloodbench.models.blocks import ClassifierHead, ConvBNAct


class InceptionBlock(nn.Module):
    """Four parallel branches (1x1, 1x1->3x3, 1x1->3x3->3x3, pool->1x1), concatenated.

    The 5x5 branch is factorised into two 3x3 convs as in Inception v2 (same receptive
    field, fewer MACs).
    """

    def __init__(self, in_channels: int, c1: int, c3_reduce: int, c3: int, c5_reduce: int, c5: int,
                 pool_proj: int) -> None:
        super().__init__()
        self.branch1 = ConvBNAct(in_channels, c1, 1)
        self.branch3 = nn.Sequential(ConvBNAct(in_channels, c3_reduce, 1), ConvBNAct(c3_reduce, c3, 3))
        self.branch5 = nn.Sequential(ConvBNAct(in_channels, c5_reduce, 1), ConvBNAct(c5_reduce, c5, 3),
                                     ConvBNAct(c5, c5, 3))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, 1, 1), ConvBNAct(in_channels, pool_proj, 1))
        self.out_channels = c1 + c3 + c5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], dim=1)


#: inception's training recipe, shared by its width variant (not tuned for it)
RECIPE = {"lr": 2e-3, "label_smoothing": 0.1}


def _scaled(channels: int, width: float, divisor: int) -> int:
    """``channels * width`` rounded to a multiple of ``divisor`` (at least one divisor)."""
    return max(divisor, int(channels * width / divisor + 0.5) * divisor)


class CompactInception(nn.Module):
    # (name, c1, c3_reduce, c3, c5_reduce, c5, pool_proj); "pool" = 3x3 stride-2 max-pool.
    CONFIG = (
        "pool",
        ("inception3a", 32, 48, 64, 8, 16, 16),     # -> 128
        ("inception3b", 64, 64, 96, 16, 48, 32),    # -> 240
        "pool",
        ("inception4a", 96, 48, 104, 8, 24, 32),    # -> 256
        ("inception4b", 80, 56, 112, 12, 32, 32),   # -> 256
        "pool",
        ("inception5a", 128, 80, 160, 16, 64, 64),  # -> 416
        ("inception5b", 192, 96, 192, 24, 64, 64),  # -> 512
    )

    def __init__(self, in_channels: int, num_classes: int, stem_width: int = 64, dropout: float = 0.4,
                 width: float = 1.0) -> None:
        super().__init__()
        if not width > 0:
            raise ValueError(f"width must be positive, not {width}")
        stem_width = _scaled(stem_width, width, 8)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["stem"] = nn.Sequential(ConvBNAct(in_channels, stem_width // 2, 3),
                                       ConvBNAct(stem_width // 2, stem_width, 3))
        c, n_pool = stem_width, 0
        for item in self.CONFIG:
            if item == "pool":
                n_pool += 1
                layers[f"pool{n_pool}"] = nn.MaxPool2d(3, 2, 1)
            else:
                name, *widths = item
                block = InceptionBlock(c, *(_scaled(w, width, 4) for w in widths))
                layers[name] = block
                c = block.out_channels
        self.features = nn.Sequential(layers)
        self.head = ClassifierHead(c, num_classes, dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model(
    family="inception",
    description="compact GoogLeNet: stride-1 stem + 6 Inception blocks (1x1/3x3/double-3x3/pool branches)",
    origin="Szegedy et al. 2015 (GoogLeNet), factorised 5x5 per Szegedy et al. 2016",
    recipe=RECIPE,
    target_layer="features.inception5b",
)
def inception(in_channels: int = 3, num_classes: int = 8, **kwargs) -> nn.Module:
    return CompactInception(in_channels, num_classes, **kwargs)


@register_model(
    family="inception",
    description="compact GoogLeNet at width 0.6: the same 6 Inception blocks, every layer's channels × 0.6",
    origin="Szegedy et al. 2015 (GoogLeNet); width multiplier as in Howard et al. 2017 (MobileNets)",
    recipe=RECIPE,
    target_layer="features.inception5b",
)
def inception_small(in_channels: int = 3, num_classes: int = 8, **kwargs) -> nn.Module:
    return CompactInception(in_channels, num_classes, **{"width": 0.6, **kwargs})
