"""U-Net encoder used as a classifier, with optional squeeze-and-excitation.

The seed project reused the contracting path of a segmentation U-Net as a classifier
backbone; the SE variant tests whether cheap channel gating helps on cell images.
"""

from __future__ import annotations

from functools import partial

from torch import nn

from bloodbench.models._api import register_model
from bloodbench.models.blocks import CBAM, ClassifierHead, ConvBNAct, SqueezeExcitation


GATES = {"se": SqueezeExcitation, "cbam": CBAM}


class EncoderCNN(nn.Module):
    """Double conv-BN-ReLU blocks with max-pool between and widths doubling, then GAP + head.

    ``gate`` appends a channel gate to every block (``"se"``: squeeze-and-excitation,
    ``"cbam"``: channel+spatial attention); one class so the variants differ only by it.
    """

    def __init__(self, in_channels: int, num_classes: int, widths=(32, 64, 128, 256), gate: str | None = None,
                 dropout: float = 0.3, reduction: int = 16) -> None:
        super().__init__()
        stages: list[nn.Module] = []
        c = in_channels
        for i, w in enumerate(widths):
            # Pool first (from stage 1 on) so each stage's output is a full-resolution block
            # output: clean Grad-CAM target. 28 px -> 28, 14, 7, 3 with four stages.
            layers: list[nn.Module] = [nn.MaxPool2d(2)] if i > 0 else []
            layers += [ConvBNAct(c, w), ConvBNAct(w, w)]
            if gate is not None:
                layers.append(GATES[gate](w, reduction=reduction))
            stages.append(nn.Sequential(*layers))
            c = w
        self.features = nn.Sequential(*stages)
        self.head = ClassifierHead(c, num_classes, dropout=dropout)

    def forward(self, x):
        return self.head(self.features(x))


# What both variants share: family, recipe (only what differs from TrainConfig's defaults), Grad-CAM layer.
_register = partial(register_model, family="encoder", target_layer="features.3",
                    recipe={"label_smoothing": 0.05})


@_register(
    description="U-Net encoder path (double conv-BN-ReLU, max-pool, 32-64-128-256) + GAP + dropout head",
    origin="seed project U-Net-encoder classifier; U-Net: Ronneberger et al. 2015",
)
def encoder_cnn(in_channels: int = 3, num_classes: int = 8, **kwargs) -> nn.Module:
    return EncoderCNN(in_channels, num_classes, gate=None, **kwargs)


@_register(
    description="U-Net encoder classifier with squeeze-and-excitation after each double-conv block",
    origin="seed project; U-Net: Ronneberger et al. 2015, SE: Hu et al. 2018",
)
def encoder_cnn_se(in_channels: int = 3, num_classes: int = 8, **kwargs) -> nn.Module:
    return EncoderCNN(in_channels, num_classes, gate="se", **kwargs)
