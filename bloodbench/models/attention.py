"""CNN with CBAM attention after every conv stage (channel then spatial gating).

The conv stages are the encoder family's (double conv-BN-ReLU, max-pool between), so the
attention gate is the only difference from ``encoder_cnn`` and ``encoder_cnn_se``: CBAM lets
the network focus on the stained cell rather than the background before each downsampling.
"""

from __future__ import annotations

from torch import nn

from bloodbench.models._api import register_model
from bloodbench.models.encoder import EncoderCNN


@register_model(
    family="attention",
    description="4-stage conv-BN-ReLU CNN with CBAM channel+spatial attention after each stage",
    origin="seed project attention CNN; CBAM: Woo et al. 2018",
    recipe={"lr": 2e-3, "label_smoothing": 0.05},
    target_layer="features.3",
)
def cnn_attention(in_channels: int = 3, num_classes: int = 8, **kwargs) -> nn.Module:
    return EncoderCNN(in_channels, num_classes, gate="cbam", **kwargs)
