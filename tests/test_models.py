"""Every registered model: builds for 1/3 channels, any class count, 28-224 px, trains, explains."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bloodbench.errors import BloodbenchError
from bloodbench.models import create_model, get_model_info, list_models
from bloodbench.models.blocks import MaybeMaxPool2d
from bloodbench.profile import count_macs

MODELS = list_models()
# Cheap enough at 224 px on a 2-core CPU (resnet18 with its large-input stem).
CHEAP_224 = [("baseline_cnn", {}), ("encoder_cnn_se", {}), ("mobilenet_v3_small", {}), ("autoencoder_cnn", {}),
             ("resnet18", {"stem": "imagenet"}), ("mobilenet_v3_small", {"small_input": False})]


pytestmark = pytest.mark.usefixtures("one_thread")  # OpenMP spin-waiting made this file ~5x slower


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_all_families_registered():
    expected = {"baseline_cnn", "encoder_cnn", "encoder_cnn_se", "cnn_attention", "vgg11", "vgg11_attention",
                "resnet18", "inception", "inception_small", "autoencoder_cnn", "mobilenet_v3_small", "efficientnet_b0",
                "densenet121"}
    assert expected <= set(MODELS)


def test_inception_small_is_the_widest_inception_step_that_fits_25m_macs():
    """Its width is chosen by the MACs budget alone: 0.6 fits 25 M MACs at 28 px, the next step 0.65 does not."""
    from bloodbench.models.inception import CompactInception

    def macs(model):
        return count_macs(model.eval(), (1, 3, 28, 28))

    small = create_model("inception_small")
    assert macs(small) <= 25e6 < macs(CompactInception(3, 8, width=0.65))
    assert macs(CompactInception(3, 8, width=1.0)) == macs(create_model("inception"))
    assert sum(p.numel() for p in small.parameters()) < 0.4 * sum(p.numel() for p in create_model("inception").parameters())
    with pytest.raises(ValueError, match="width must be positive"):
        CompactInception(3, 8, width=0)


@pytest.mark.parametrize("name", MODELS)
def test_metadata(name):
    from dataclasses import fields

    from bloodbench.config import OPTIMIZERS, TrainConfig

    info = get_model_info(name)
    assert info.family and info.description and info.origin and info.target_layer
    recipe_keys = {f.name for f in fields(TrainConfig)} - {"model"}
    assert set(info.recipe) <= recipe_keys, f"recipe keys the trainer does not know: {set(info.recipe) - recipe_keys}"
    assert info.recipe.get("optimizer", "adamw") in OPTIMIZERS


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("in_channels,num_classes", [(3, 8), (1, 11)])
def test_shapes_and_target_layer(name, in_channels, num_classes):
    """Logits shape at 28 and 64 px; the Grad-CAM layer holds a conv and yields a spatial map."""
    model = create_model(name, in_channels=in_channels, num_classes=num_classes).eval()
    target = model.get_submodule(get_model_info(name).target_layer)
    assert isinstance(target, nn.Conv2d) or any(isinstance(m, nn.Conv2d) for m in target.modules())
    seen = []
    target.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    with torch.no_grad():
        for size in (28, 64):
            out = model(torch.randn(2, in_channels, size, size))
            assert out.shape == (2, num_classes)
            assert torch.isfinite(out).all()
    assert len(seen) == 2, "target layer is not on the forward path"
    n, c, h, w = seen[0]  # 28 px
    assert n == 2 and min(h, w) >= 2, f"28 px input reduced to {h}x{w} at the target layer"


@pytest.mark.parametrize("name", MODELS)
def test_training_steps_lower_loss(name):
    """A few AdamW steps on one fixed batch (train mode, same dropout masks) lower its loss."""
    model = create_model(name, in_channels=3, num_classes=8).train()
    x = torch.randn(4, 3, 28, 28)
    y = torch.tensor([0, 3, 5, 7])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def loss_fn():
        torch.manual_seed(1)
        return nn.functional.cross_entropy(model(x), y)

    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        losses.append(loss_fn().item())
    assert losses[-1] < losses[0], losses


@pytest.mark.parametrize("name,kwargs", CHEAP_224, ids=[f"{n}{'-' + '-'.join(map(str, k.values())) if k else ''}"
                                                        for n, k in CHEAP_224])
def test_forward_224(name, kwargs):
    model = create_model(name, in_channels=3, num_classes=8, **kwargs).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 8)


@pytest.mark.parametrize("name", ["vgg11_attention", "mobilenet_v3_small", "autoencoder_cnn"])
def test_channels_last_and_macs(name):
    """Same logits in channels_last; fvcore traces it (VGG's shape-dependent pools included)."""
    model = create_model(name, in_channels=1, num_classes=8).eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    assert count_macs(model, (1, 1, 28, 28)) > 0


def test_autoencoder_aux_loss():
    model = create_model("autoencoder_cnn", in_channels=3, num_classes=8, aux_weight=0.5).train()
    decoder_calls = []
    model.reconstruct.register_forward_hook(lambda *a: decoder_calls.append(1))
    for size in (28, 29):  # odd size: the decoder must still match x's shape
        x = torch.randn(4, 3, size, size)
        logits, aux = model.forward_with_aux(x)
        assert logits.shape == (4, 8)
        assert aux.ndim == 0 and aux.item() > 0
        model.zero_grad()
        aux.backward()
        grads = [p.grad for p in model.reconstruct.parameters()] + [p.grad for p in model.decoder.parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads)
    n_calls = len(decoder_calls)
    model.eval()
    with torch.no_grad():
        plain = model(x)
        with_aux, _ = model.forward_with_aux(x)
    torch.testing.assert_close(plain, with_aux)
    assert len(decoder_calls) == n_calls + 1, "plain forward must not run the decoder"
    # aux_weight scales the auxiliary loss linearly.
    model.aux_weight = 1.0
    with torch.no_grad():
        _, aux1 = model.forward_with_aux(x)
        model.aux_weight = 0.5
        _, aux05 = model.forward_with_aux(x)
    torch.testing.assert_close(aux1 * 0.5, aux05)


def test_unknown_model_suggests_close_names():
    with pytest.raises(BloodbenchError, match="resnet18"):
        create_model("resnet19")


def test_invalid_resnet_stem():
    with pytest.raises(BloodbenchError, match="stem"):
        create_model("resnet18", stem="bogus")


def test_maybe_max_pool_schedule():
    """VGG-11's five pools: 28 px stops at 3x3, 224 px keeps the original 7x7 output."""
    pool = MaybeMaxPool2d(2, min_size=2)
    assert pool(torch.zeros(1, 1, 3, 3)).shape[-1] == 3
    assert pool(torch.zeros(1, 1, 4, 4)).shape[-1] == 2
    features = create_model("vgg11", width_mult=0.125).features.eval()
    with torch.no_grad():
        assert features(torch.zeros(1, 3, 28, 28)).shape[-2:] == (3, 3)
        assert features(torch.zeros(1, 3, 224, 224)).shape[-2:] == (7, 7)


def test_vgg_width_mult():
    small = create_model("vgg11", width_mult=0.5)
    full = create_model("vgg11")
    n_small = sum(p.numel() for p in small.parameters())
    n_full = sum(p.numel() for p in full.parameters())
    assert n_small < 0.3 * n_full


def test_reading_the_registry_does_not_import_torchvision():
    """``import torchvision`` loads torch._dynamo (about 3 s): commands that only read records, the
    leaderboard first, must not pay for it; building a torchvision reference still works."""
    import subprocess
    import sys

    code = ("import sys; from bloodbench.models import list_models, get_model_info; "
            "assert 'densenet121' in list_models() and get_model_info('densenet121'); "
            "print('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    assert isinstance(create_model("mobilenet_v3_small", num_classes=8), nn.Module)
