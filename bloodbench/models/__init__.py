"""The model registry: ``list_models()``, ``create_model(name, in_channels, num_classes)``."""

from bloodbench.models._api import (
    ModelInfo, count_params, create_model, get_model, get_model_info, list_models, register_model,
)

# Importing the family modules registers their models.
from bloodbench.models import (  # noqa: F401,E402  (import for side effect)
    attention,
    autoencoder,
    baseline,
    encoder,
    inception,
    plugins,
    resnet,
    torchvision_refs,
    vgg,
)

__all__ = ["ModelInfo", "count_params", "create_model", "get_model", "get_model_info", "list_models", "register_model"]
