"""Grad-CAM (Selvaraju et al., 2017) written against plain module hooks.

Only the model's logits are needed: a forward hook on the target module captures its
activation, and the gradient of the chosen class logit with respect to that activation
gives the channel weights. No Grad-CAM package is involved.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bloodbench.errors import BloodbenchError

COARSE_SIDE = 4  # maps of at most 4x4 get a note: every CAM looks like the same blob
FINE_SIDE = 7    # the suggested --layer keeps at least a 7x7 map


def _logits(out) -> torch.Tensor:
    """Models return logits; tolerate ``(logits, aux...)`` and ``{"logits": ...}`` too."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict) and "logits" in out:
        return out["logits"]
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise BloodbenchError(f"the model returned {type(out).__name__}, not a logits tensor: Grad-CAM needs logits")


def conv_layer_names(model: nn.Module) -> list[str]:
    """Names of the modules that contain a Conv2d (candidates for ``--layer``)."""
    return [n for n, m in model.named_modules() if n and any(isinstance(s, nn.Conv2d) for s in m.modules())]


def _output_shapes(model: nn.Module, names: list[str], input_shape: tuple[int, ...]) -> list[tuple[str, tuple]]:
    """(name, output shape) of the named modules, in the order their forward passes finish.

    One no-grad pass on zeros in eval mode (so batch-norm statistics are left alone); the
    model's train/eval mode is restored afterwards.
    """
    seen: list[tuple[str, tuple]] = []

    def record(name: str):
        return lambda m, i, o: seen.append((name, tuple(o.shape))) if isinstance(o, torch.Tensor) else None

    handles = [model.get_submodule(n).register_forward_hook(record(n)) for n in names]
    was_training = model.training
    try:
        p = next(model.parameters(), None)
        with torch.no_grad():
            model.eval()(torch.zeros(input_shape, device=p.device if p is not None else "cpu"))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return seen


def _last_spatial_conv(model: nn.Module, input_shape: tuple[int, ...]) -> str | None:
    """The last Conv2d executed whose output is still spatial (H*W > 1).

    Execution order rather than definition order, and the spatial test skips the 1x1
    convs inside squeeze-excitation gates, whose maps would be a single pixel.
    """
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        return None
    spatial = [n for n, shape in _output_shapes(model, convs, input_shape)
               if len(shape) == 4 and shape[-1] * shape[-2] > 1]
    return spatial[-1] if spatial else None


def resolve_target_layer(model: nn.Module, layer: str | None, model_name: str = "the model",
                         input_shape: tuple[int, ...] = (1, 3, 28, 28)) -> tuple[str, nn.Module]:
    """``layer`` (dotted path, from ``--layer`` or the registry) or else the last spatial conv."""
    if layer is None:
        layer = _last_spatial_conv(model, input_shape)
        if layer is None:
            raise BloodbenchError(
                f"{model_name} has no convolutional layer with a spatial output, so Grad-CAM does not apply "
                f"(and its registry entry names no target_layer); pass --layer with a module that outputs N x C x H x W"
            )
    try:
        return layer, model.get_submodule(layer)
    except AttributeError:
        names = conv_layer_names(model)
        hint = f"conv layers include {', '.join(names[-6:])}" if names else "it has no conv layers"
        raise BloodbenchError(f"layer {layer!r} not found in {model_name}: {hint}") from None


def feature_map_size(model: nn.Module, layer: str, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(h, w) of the target layer's map: the resolution the CAM really has before upsampling."""
    shapes = [shape for _, shape in _output_shapes(model, [layer], input_shape)]
    if not shapes:
        raise BloodbenchError(f"layer {layer!r} never ran in the forward pass: choose another --layer")
    return tuple(_as_spatial(torch.empty(shapes[-1], device="meta"), layer).shape[-2:])


def finer_layer(model: nn.Module, input_shape: tuple[int, ...],
                min_side: int = FINE_SIDE) -> tuple[str, tuple[int, int]] | None:
    """(name, (h, w)) of the deepest conv-holding module whose map is still >= ``min_side`` a side.

    Deepest means the last to finish its forward pass, so a whole block wins over the convs
    inside it: the finest map that has still seen most of the network. None if no such module.
    """
    fine = [(name, shape[-2:]) for name, shape in _output_shapes(model, conv_layer_names(model), input_shape)
            if len(shape) == 4 and min(shape[-2:]) >= min_side]
    return (fine[-1][0], tuple(fine[-1][1])) if fine else None


def coarse_map_note(model: nn.Module, layer: str, fmap: tuple[int, int],
                    input_shape: tuple[int, ...]) -> str | None:
    """One line when the Grad-CAM map is at most 4x4, where it is a blob whatever the image,
    naming a finer ``--layer`` to try; None when the map is fine enough."""
    if max(fmap) > COARSE_SIDE:
        return None
    note = (f"Grad-CAM layer {layer} gives a {fmap[0]}x{fmap[1]} map at {input_shape[-1]} px, "
            f"too coarse to localise much")
    finer = finer_layer(model, input_shape)
    if finer is None:
        return note + f": no conv layer keeps a {FINE_SIDE}x{FINE_SIDE} map at this size"
    name, (h, w) = finer
    return note + f"; for a finer map try --layer {name} ({h}x{w})"


def default_target_layer(model: nn.Module, registry_layer: str | None, model_name: str,
                         input_shape: tuple[int, ...]) -> tuple[str, tuple[int, int], str | None]:
    """(layer, (h, w), note) that ``explain`` uses when no ``--layer`` is given.

    The registry's last conv block, unless its map is at most 4x4 at this input size (at 28 px
    it is 2x2 to 4x4 for every CNN here: upsampled, every map is the same centre blob). Then
    the deepest layer that keeps at least a 7x7 map, with a note naming both.
    """
    name, _ = resolve_target_layer(model, registry_layer, model_name, input_shape)
    fmap = feature_map_size(model, name, input_shape)
    if max(fmap) > COARSE_SIDE:
        return name, fmap, None
    finer = finer_layer(model, input_shape)
    if finer is None:
        return name, fmap, coarse_map_note(model, name, fmap, input_shape)
    fine_name, (h, w) = finer
    note = (f"Grad-CAM on {fine_name} ({h}x{w}), the deepest layer with at least a {FINE_SIDE}x{FINE_SIDE} map "
            f"at {input_shape[-1]} px: the last block {name} gives {fmap[0]}x{fmap[1]}, too coarse to localise "
            f"(--layer {name} shows it anyway)")
    return fine_name, (h, w), note


def _as_spatial(act: torch.Tensor, layer: str) -> torch.Tensor:
    """N x C x H x W as is; transformer tokens N x L x C reshaped to a square grid (CLS dropped)."""
    if act.ndim == 4:
        return act
    if act.ndim == 3:
        n, length, c = act.shape
        for skip in (0, 1):
            side = math.isqrt(length - skip)
            if side > 0 and side * side == length - skip:
                return act[:, skip:].transpose(1, 2).reshape(n, c, side, side)
    raise BloodbenchError(
        f"layer {layer!r} outputs shape {tuple(act.shape)}; Grad-CAM needs a spatial N x C x H x W map: "
        f"choose a conv layer with --layer"
    )


def grad_cam(model: nn.Module, x: torch.Tensor, layer: str, target: torch.Tensor | None = None,
             batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM maps (N, H, W) in [0, 1] at the input's size, and the logits (N, K).

    ``x`` is the normalised input batch; ``target`` the class to explain per image
    (default: the model's own prediction). The model is put in eval mode because
    dropout and batch-norm statistics would otherwise make the map depend on the batch.
    """
    model.eval()
    module = model.get_submodule(layer)
    captured: list[torch.Tensor] = []

    def forward_hook(mod, inputs, output):
        if not isinstance(output, torch.Tensor):
            raise BloodbenchError(
                f"layer {layer!r} returns {type(output).__name__}, not a tensor: choose another --layer")
        captured.append(output)
        # Hand a copy downstream: an in-place op after the module (ReLU(inplace=True))
        # would otherwise overwrite the activation whose gradient we take.
        return output.clone()

    maps, all_logits = [], []
    handle = module.register_forward_hook(forward_hook)
    try:
        for start in range(0, x.shape[0], batch_size):
            xb = x[start:start + batch_size]
            captured.clear()
            with torch.enable_grad():
                xb = xb.detach().requires_grad_(True)  # a graph even if all weights are frozen
                logits = _logits(model(xb))
                if not captured:
                    raise BloodbenchError(f"layer {layer!r} never ran in the forward pass: choose another --layer")
                act = captured[-1]
                tb = logits.argmax(1) if target is None else target[start:start + batch_size].to(logits.device)
                score = logits.gather(1, tb.view(-1, 1)).sum()  # samples are independent in eval mode
                # torch.autograd.grad (not .backward()) leaves the weights' .grad untouched.
                (grad,) = torch.autograd.grad(score, act)
            act, grad = _as_spatial(act.detach(), layer), _as_spatial(grad, layer)
            weights = grad.mean(dim=(2, 3), keepdim=True)  # global-average-pooled gradients
            cam = F.relu((weights * act).sum(dim=1, keepdim=True))
            cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
            maps.append(normalize_maps(cam))
            all_logits.append(logits.detach())
    finally:
        handle.remove()
    return torch.cat(maps).cpu(), torch.cat(all_logits).cpu()


def normalize_maps(cam: torch.Tensor) -> torch.Tensor:
    """Min-max scale each map to [0, 1]; an all-equal map (no evidence) becomes all zeros."""
    flat = cam.flatten(1)
    lo = flat.min(1, keepdim=True).values
    span = flat.max(1, keepdim=True).values - lo
    out = torch.where(span > 1e-12, (flat - lo) / span.clamp_min(1e-12), torch.zeros_like(flat))
    return out.clamp_(0, 1).view_as(cam)
