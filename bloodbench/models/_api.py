"""Model registry in the style of torchvision's ``models/_api.py``.

Each builder is registered with its metadata (family, description, origin, training
recipe, Grad-CAM target layer) so every later stage (training, profiling, reports,
explanations) reads the same facts from one place.
"""

from __future__ import annotations

import difflib
import sys
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from torch import nn

from bloodbench.errors import BloodbenchError

BuildFn = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about a model besides how to build it."""

    name: str
    family: str
    description: str
    origin: str
    builder: BuildFn = field(repr=False, compare=False)
    # Per-model training defaults (lr, weight_decay, epochs, batch_size, label_smoothing,
    # augment, ...); the trainer overlays them on its global defaults.
    recipe: dict[str, Any] = field(default_factory=dict)
    # Dotted module path of the last conv block, for Grad-CAM.
    target_layer: str | None = None
    # Where a plug-in model comes from (its distribution, else the module of its builder: see
    # models/plugins.py); None: a built-in model, its builder in bloodbench.
    plugin: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "description": self.description,
            "origin": self.origin,
            "recipe": dict(self.recipe),
            "target_layer": self.target_layer,
            **({"plugin": self.plugin} if self.plugin else {}),
        }


class DuplicateModelError(ValueError):
    """A second registration of one name (a plug-in clashing with a built-in model, say)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"model {name!r} is already registered")
        self.name = name


_REGISTRY: dict[str, ModelInfo] = {}
#: What runs before each lookup, and what an unknown name's error adds: models/plugins.py installs
#: its loader (plug-ins join on the registry's first use), so this module imports nothing of it.
_HOOKS: dict[str, Callable[[], Any]] = {"before_lookup": lambda: None, "unknown_hint": lambda: ""}


def install_plugin_hooks(before_lookup: Callable[[], None], unknown_hint: Callable[[], str]) -> None:
    _HOOKS.update(before_lookup=before_lookup, unknown_hint=unknown_hint)


def registered_names() -> set[str]:
    """The names registered so far, without loading plug-ins (what a plug-in's import added is the difference)."""
    return set(_REGISTRY)


def registered(name: str) -> ModelInfo | None:
    return _REGISTRY.get(name)


def unregister(names: Iterable[str]) -> None:
    """Undo a refused plug-in's registrations."""
    for name in names:
        _REGISTRY.pop(name, None)


def mark_plugin(name: str, origin: str) -> None:
    _REGISTRY[name] = dataclasses.replace(_REGISTRY[name], plugin=origin)


def register_model(
    name: str | None = None,
    *,
    family: str,
    description: str,
    origin: str,
    recipe: dict[str, Any] | None = None,
    target_layer: str | None = None,
) -> Callable[[BuildFn], BuildFn]:
    """Decorator that adds ``fn(in_channels, num_classes, **kwargs)`` to the registry."""

    def wrapper(fn: BuildFn) -> BuildFn:
        key = name or fn.__name__
        if key in _REGISTRY:
            raise DuplicateModelError(key)
        _REGISTRY[key] = ModelInfo(key, family, description, origin, fn, dict(recipe or {}), target_layer,
                                   _outside(fn))
        return fn

    return wrapper


def _outside(fn: BuildFn) -> str | None:
    """The module of a builder defined outside bloodbench (a script's, a plug-in's): such a model is a
    plug-in wherever it was registered from; None for bloodbench's own."""
    module = getattr(fn, "__module__", None) or "?"
    if module == "bloodbench" or module.startswith("bloodbench."):
        return None
    if module == "__main__":
        main = getattr(sys.modules.get("__main__"), "__file__", None)
        return Path(main).name if main else "__main__"
    return module


def list_models(family: str | None = None) -> list[str]:
    """Registered model names, sorted; optionally only one family."""
    _load_plugins()
    return sorted(n for n, i in _REGISTRY.items() if family is None or i.family == family)


def _load_plugins() -> None:
    _HOOKS["before_lookup"]()


def get_model_info(name: str) -> ModelInfo:
    _load_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.4)
        hint = _HOOKS["unknown_hint"]() + (f"; did you mean {' or '.join(close)}?" if close else "")
        raise BloodbenchError(f"unknown model {name!r}{hint} (`bloodbench models` lists them)") from None


def create_model(name: str, in_channels: int | None = None, num_classes: int | None = None,
                 weights: str | None = None, **kwargs: Any) -> nn.Module:
    """Build a registered model for ``in_channels`` inputs and ``num_classes`` outputs (default 3 and 8).

    ``weights``: ``"published"`` or the path of a ``.safetensors`` / a run's ``best.pt``
    (:mod:`bloodbench.models.weights`); the model then comes in eval mode, built for its weights.
    """
    info = get_model_info(name)
    if weights is not None:
        from bloodbench.models.weights import build_with_weights

        return build_with_weights(info.builder, name, weights, in_channels, num_classes, **kwargs)[0]
    in_channels = 3 if in_channels is None else in_channels
    num_classes = 8 if num_classes is None else num_classes
    if in_channels < 1 or num_classes < 2:
        raise BloodbenchError(
            f"cannot build {name}: in_channels must be >= 1 and num_classes >= 2 "
            f"(got {in_channels} and {num_classes})"
        )
    return info.builder(in_channels=in_channels, num_classes=num_classes, **kwargs)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Parameters, counting each shared (tied) tensor once, as ``model.parameters()`` does.

    Here, not in profile/, because the trainer records it too and must not import the profiler.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


get_model = create_model
