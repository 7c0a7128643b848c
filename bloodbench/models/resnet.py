"""ResNet-18 as used by MedMNIST v2 for its 28 px benchmark.

MedMNIST v2 swaps the ImageNet stem (7x7 stride-2 conv + max-pool) for a 3x3 stride-1
conv so 28 px images are not reduced to 7x7 before the first block. That ``cifar`` stem
is the default at every size, which keeps results comparable across sizes but costs
~0.46 GMACs at 28 px and ~27 GMACs at 224 px (64x the pixels, no early downsampling);
pass ``stem="imagenet"`` for the original stem at large sizes (1.8 GMACs at 224 px).
"""

from __future__ import annotations

import torch
from torch import nn

from bloodbench.errors import BloodbenchError
from bloodbench.models._api import register_model
from bloodbench.models.blocks import ClassifierHead, ConvBNAct


class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity (or 1x1 projection) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(in_channels, out_channels, 3, stride)
        self.conv2 = ConvBNAct(out_channels, out_channels, 3, act=None)
        self.shortcut = (
            ConvBNAct(in_channels, out_channels, 1, stride, act=None)
            if stride != 1 or in_channels != out_channels
            else nn.Identity()
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, layers=(2, 2, 2, 2), widths=(64, 128, 256, 512),
                 stem: str = "cifar", dropout: float = 0.0, zero_init_residual: bool = True) -> None:
        super().__init__()
        if stem == "cifar":
            self.stem = ConvBNAct(in_channels, widths[0], 3, 1)
        elif stem == "imagenet":
            self.stem = nn.Sequential(ConvBNAct(in_channels, widths[0], 7, 2), nn.MaxPool2d(3, 2, 1))
        else:
            raise BloodbenchError(f"resnet stem must be 'cifar' or 'imagenet' (got {stem!r})")
        c = widths[0]
        for i, (n, w) in enumerate(zip(layers, widths), start=1):
            blocks = [BasicBlock(c if j == 0 else w, w, stride=(1 if i == 1 or j > 0 else 2)) for j in range(n)]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
            c = w
        self.num_stages = len(layers)
        self.head = ClassifierHead(c, num_classes, dropout=dropout)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:
            # Each residual branch starts as identity: steadier early training (Goyal et al. 2017).
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.zeros_(m.conv2[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{i}")(x)
        return self.head(x)


@register_model(
    family="resnet",
    description="ResNet-18 (BasicBlock [2,2,2,2], 64-512) with the 3x3 stride-1 stem, GAP head",
    origin="He et al. 2016, CIFAR stem as in MedMNIST v2 (Yang et al. 2023)",
    recipe={"lr": 1e-3, "label_smoothing": 0.1, "precision": "bf16"},  # bf16: see TrainConfig.precision
    target_layer="layer4",
)
def resnet18(in_channels: int = 3, num_classes: int = 8, **kwargs) -> nn.Module:
    return ResNet(in_channels, num_classes, layers=(2, 2, 2, 2), **kwargs)
