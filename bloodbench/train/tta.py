"""8-view test-time augmentation: the dihedral group D4 of the square (4 rotations by 90°,
each with and without a horizontal flip), probabilities averaged over the views.

Blood-cell smears have no preferred orientation, so every view is a plausible image; the
8 views are exactly the symmetries of a square image, no interpolation involved.
"""

from __future__ import annotations

from typing import Callable

import torch

from bloodbench.store.predictions import TTA_VIEWS as N_VIEWS  # noqa: F401  (defined where torch-free readers see it)


def d4_views(x: torch.Tensor) -> list[torch.Tensor]:
    """The 8 dihedral transforms of an N×C×H×W batch (H = W): rot90^k, then each flipped."""
    rots = [torch.rot90(x, k, dims=(2, 3)) for k in range(4)]
    return rots + [torch.flip(r, dims=(3,)) for r in rots]


def view_probabilities(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
    """Softmax probabilities of each of the 8 views; the first view is ``x`` itself (the plain prediction)."""
    return [torch.softmax(forward(v).float(), dim=1) for v in d4_views(x)]


def tta_probabilities(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Mean softmax probability over the 8 views; ``forward`` maps a batch to logits."""
    return torch.stack(view_probabilities(forward, x)).mean(0)
