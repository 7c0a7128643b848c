"""VGG-11 (configuration A) with batch norm, adapted to 28-224 px inputs.

Five 2x pools would shrink 28 px to 0, so pools that would leave a map below
``min_pool_size`` are skipped (decided from the input shape: a fixed graph per size,
which keeps MAC counts stable). 28 px runs at 28, 14, 7, 3, 3; 224 px keeps the
original schedule down to 7x7. The 4096-wide FC classifier is replaced by GAP + linear.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial

from torch import nn

from bloodbench.models._api import register_model
from bloodbench.models.blocks import CBAM, ClassifierHead, ConvBNAct, MaybeMaxPool2d

# Config "A" of Simonyan & Zisserman, grouped into the five stages split by "M".
VGG11_STAGES = ((64,), (128,), (256, 256), (512, 512), (512, 512))


class VGG(nn.Module):
    """``width_mult`` scales every stage (1.0 = the paper); ``attention`` adds CBAM per stage."""

    def __init__(self, in_channels: int, num_classes: int, stages=VGG11_STAGES, width_mult: float = 1.0,
                 attention: bool = False, dropout: float = 0.5, min_pool_size: int = 2) -> None:
        super().__init__()
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        c = in_channels
        for i, widths in enumerate(stages, start=1):
            block: list[nn.Module] = []
            for w in widths:
                w = max(8, int(round(w * width_mult)))
                block.append(ConvBNAct(c, w))
                c = w
            if attention:
                block.append(CBAM(c))
            layers[f"stage{i}"] = nn.Sequential(*block)
            layers[f"pool{i}"] = MaybeMaxPool2d(2, min_size=min_pool_size)
        self.features = nn.Sequential(layers)
        self.head = ClassifierHead(c, num_classes, dropout=dropout)

    def forward(self, x):
        return self.head(self.features(x))


# What both variants share: family, recipe (only what differs from TrainConfig's defaults), Grad-CAM layer.
# NCHW: channels_last slows VGG's training step on the project's Xeon (0.80x vgg11, 0.88x vgg11_attention in
# reports/benchmarks/train_settings_cpu.json). It is a speed setting, not a numerics one, so it is not hashed.
_register = partial(register_model, family="vgg", target_layer="features.stage5",
                    recipe={"lr": 1e-3, "label_smoothing": 0.1, "channels_last": False})


@_register(
    description="VGG-11 (config A) with BN, size-aware pooling and a GAP head",
    origin="Simonyan & Zisserman 2015 (VGG-11), BN per Ioffe & Szegedy 2015",
)
def vgg11(in_channels: int = 3, num_classes: int = 8, **kwargs) -> nn.Module:
    return VGG(in_channels, num_classes, attention=False, **kwargs)


@_register(
    description="VGG-11 with BN and CBAM attention after each of its five stages",
    origin="seed project; VGG-11: Simonyan & Zisserman 2015, CBAM: Woo et al. 2018",
)
def vgg11_attention(in_channels: int = 3, num_classes: int = 8, **kwargs) -> nn.Module:
    return VGG(in_channels, num_classes, attention=True, **kwargs)
