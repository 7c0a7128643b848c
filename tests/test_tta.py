"""8-view test-time augmentation: the views are the 8 distinct symmetries of the square, and
the TTA probability is the mean of the per-view softmax."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from bloodbench.train.tta import N_VIEWS, d4_views, tta_probabilities


def test_views_are_the_eight_distinct_dihedral_transforms():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    views = d4_views(x)
    assert len(views) == N_VIEWS == 8
    assert x.equal(views[0])
    flat = {tuple(v.flatten().tolist()) for v in views}
    assert len(flat) == 8  # all distinct
    # the same group built independently from numpy: rot90^k of the image and of its transpose
    a = x[0, 0].numpy()
    expected = {tuple(np.rot90(m, k).flatten().tolist()) for m, k in itertools.product((a, a.T), range(4))}
    assert flat == expected
    # closed under composition: a view of a view is a view
    for v in views:
        assert {tuple(w.flatten().tolist()) for w in d4_views(v)} == flat


def test_tta_probability_is_the_mean_softmax_over_the_views():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(5))
    x = torch.randn(2, 3, 6, 6)
    model(x)
    with torch.no_grad():
        got = tta_probabilities(model, x)
        by_hand = sum(torch.softmax(model(v), 1) for v in d4_views(x)) / 8
        plain = torch.softmax(model(x), 1)
    assert torch.allclose(got, by_hand, atol=1e-7)
    assert torch.allclose(got.sum(1), torch.ones(2))
    assert not torch.allclose(got, plain)  # a model that is not rotation invariant: TTA changes the output
