"""Baseline CNN: the plain conv-BN-ReLU-pool stack every other family is compared with."""

from __future__ import annotations

from torch import nn

from bloodbench.models._api import register_model
from bloodbench.models.blocks import ClassifierHead, ConvBNAct


class BaselineCNN(nn.Module):
    """Four conv stages (two 3x3 convs each, max-pool between), GAP, dropout, linear."""

    def __init__(self, in_channels: int, num_classes: int, widths=(24, 48, 96, 192), dropout: float = 0.3) -> None:
        super().__init__()
        stages: list[nn.Module] = []
        c = in_channels
        for i, w in enumerate(widths):
            stage = [ConvBNAct(c, w), ConvBNAct(w, w)]
            if i < len(widths) - 1:
                stage.append(nn.MaxPool2d(2))
            stages.append(nn.Sequential(*stage))
            c = w
        self.features = nn.Sequential(*stages)
        self.head = ClassifierHead(c, num_classes, dropout=dropout)

    def forward(self, x):
        return self.head(self.features(x))


@register_model(
    family="baseline",
    description="4-stage conv-BN-ReLU CNN with max-pooling, global average pooling and dropout",
    origin="seed project baseline CNN (classic LeNet/VGG-style stack)",
    recipe={"label_smoothing": 0.05},  # fp32, not its earlier bf16: see TrainConfig.precision
    target_layer="features.3",
)
def baseline_cnn(in_channels: int = 3, num_classes: int = 8, **kwargs) -> nn.Module:
    return BaselineCNN(in_channels, num_classes, **kwargs)
