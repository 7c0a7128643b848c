"""CNN with CBAM attention after every conv stage (channel then spatial gating)."""

from __future__ import annotations

from torch import nn

from bloodbench.models._api import register_model
from bloodbench.models.blocks import CBAM, ClassifierHead, ConvBNAct


class AttentionCNN(nn.Module):
    """Conv stages each followed by CBAM, so the network can focus on the stained cell
    rather than the background before every downsampling step."""

    def __init__(self, in_channels: int, num_classes: int, widths=(32, 64, 128, 256), dropout: float = 0.3,
                 reduction: int = 16) -> None:
        super().__init__()
        stages: list[nn.Module] = []
        c = in_channels
        for i, w in enumerate(widths):
            layers: list[nn.Module] = [nn.MaxPool2d(2)] if i > 0 else []
            layers += [ConvBNAct(c, w), ConvBNAct(w, w), CBAM(w, reduction=reduction)]
            stages.append(nn.Sequential(*layers))
            c = w
        self.features = nn.Sequential(*stages)
        self.head = ClassifierHead(c, num_classes, dropout=dropout)

    def forward(self, x):
        return self.head(self.features(x))


@register_model(
    family="attention",
    description="4-stage conv-BN-ReLU CNN with CBAM channel+spatial attention after each stage",
    origin="seed project attention CNN; CBAM: Woo et al. 2018",
    recipe={"optimizer": "adamw", "lr": 2e-3, "weight_decay": 5e-4, "epochs": 30, "batch_size": 128,
            "label_smoothing": 0.05, "patience": 6},
    target_layer="features.3",
)
def cnn_attention(in_channels: int = 3, num_classes: int = 8, **kwargs) -> nn.Module:
    return AttentionCNN(in_channels, num_classes, **kwargs)
