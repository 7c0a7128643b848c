"""Published weights: the leaderboard's runs, reproducing their saved test predictions; sha256-checked
loading through ``get_model(name, weights=...)``; ``bloodbench weights publish`` remakes the files byte for byte."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from bloodbench.cli import main
from bloodbench.errors import BloodbenchError
from bloodbench.models import get_model
from bloodbench.models.weights import PUBLISHED_DIR, load_weights, read_manifest
from bloodbench.store.predictions import load_predictions
from bloodbench.store.results import REPO_RESULTS

ENTRIES = read_manifest()


def test_something_is_published():
    assert ENTRIES, f"no published weights in {PUBLISHED_DIR}"
    for e in ENTRIES:
        assert (PUBLISHED_DIR / e["file"]).stat().st_size == e["bytes"] <= 5_000_000


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["model"] for e in ENTRIES])
def test_published_weights_reproduce_the_saved_test_predictions(entry, blood):
    """The weights are the ones whose test predictions the leaderboard shows: reloaded through the
    public API and run over the real test split by the project's own predict code, they give the
    run's saved probabilities to 1e-5."""
    from bloodbench.train.trained import load_trained, probabilities

    model = get_model(entry["model"], weights="published")
    assert not model.training
    trained = load_trained(entry["model"], "published")
    assert trained.precision == entry["precision"] and trained.channels_last == entry["channels_last"]
    probs, _ = probabilities(trained, blood["test"].images)
    y_true, saved = load_predictions(REPO_RESULTS / "train" / entry["run_id"] / "test_predictions.npz")
    assert np.array_equal(y_true, blood["test"].labels.numpy())
    np.testing.assert_allclose(probs, saved, atol=1e-5, rtol=0)
    # get_model's module is the same network: same fp32 outputs as the loader's
    x = trained.norm(blood["test"].images[:64])
    with torch.no_grad():
        torch.testing.assert_close(model(x), trained.model(x))


def test_published_weights_are_the_front_models_best_on_val_seeds():
    from bloodbench.report.publish import best_on_val, front_runs

    _, front = front_runs(REPO_RESULTS, "bloodmnist", 28)
    for e in ENTRIES:
        assert e["model"] in front, f"{e['model']} is not on the MACs Pareto front any more: republish"
        best = best_on_val(front[e["model"]])
        assert best["run_id"] == e["run_id"]
        assert e["val_acc"] == best["val"]["acc"] and e["test_acc"] == best["test"]["acc"]


def test_a_changed_file_fails_its_sha256(tmp_path):
    e = ENTRIES[0]
    shutil.copytree(PUBLISHED_DIR, tmp_path / "pub")
    f = tmp_path / "pub" / e["file"]
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF  # one bit of one weight
    f.write_bytes(bytes(data))
    with pytest.raises(BloodbenchError, match="sha256"):
        load_weights(e["model"], "published", folder=tmp_path / "pub")


def test_weights_by_path_and_their_refusals(tmp_path):
    e = ENTRIES[0]
    path = PUBLISHED_DIR / e["file"]
    a, b = get_model(e["model"], weights=str(path)), get_model(e["model"], weights="published")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    other = next(m for m in ("encoder_cnn", "resnet18") if m != e["model"])
    with pytest.raises(BloodbenchError, match=f"weights of {e['model']}, not {other}"):
        get_model(other, weights=str(path))
    with pytest.raises(BloodbenchError, match="num_classes=8, not 5"):
        get_model(e["model"], weights="published", num_classes=5)
    with pytest.raises(BloodbenchError, match="no published weights for vgg11"):
        get_model("vgg11", weights="published")
    with pytest.raises(BloodbenchError, match="not found"):
        get_model(e["model"], weights=str(tmp_path / "missing.safetensors"))
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(BloodbenchError, match="not a safetensors file"):
        get_model(e["model"], weights=str(tmp_path / "junk.safetensors"))


def write_checkpoint(entry: dict, path) -> None:
    """A run's best.pt in the trainer's format (train/checkpoint.py), from the published weights."""
    from bloodbench.train.checkpoint import save_checkpoint

    w = load_weights(entry["model"], "published")
    record = json.loads((REPO_RESULTS / "train" / entry["run_id"] / "record.json").read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, {"model": entry["model"], "model_kwargs": w.model_kwargs, "in_channels": w.in_channels,
                           "num_classes": w.num_classes, "normalizer": {"mean": list(w.mean), "std": list(w.std)},
                           "model_state": w.state_dict, "epoch": record["best_epoch"], "config": record["config"]})


def test_publish_remakes_the_committed_files(tmp_path, real_data_dir, capsys):
    """`weights publish` from the committed records and the runs' checkpoints writes the same bytes."""
    ckpts = tmp_path / "ckpts"
    for e in ENTRIES:
        write_checkpoint(e, ckpts / "train" / e["run_id"] / "best.pt")
    out = tmp_path / "out"
    rc = main(["weights", "publish", "--results", str(REPO_RESULTS), "--checkpoints", str(ckpts),
               "--out", str(out), "--data-dir", str(real_data_dir)])
    assert rc == 0
    said = capsys.readouterr().out
    remade = {e["model"]: e for e in read_manifest(out)}
    for e in ENTRIES:
        assert f"{e['model']}: published" in said
        assert remade[e["model"]]["sha256"] == e["sha256"]
        assert (out / e["file"]).read_bytes() == (PUBLISHED_DIR / e["file"]).read_bytes()
    assert "mobilenet_v3_small: too large" in said or "mobilenet_v3_small" not in said


def test_model_card_weights_section():
    from bloodbench.report.weights_card import weights_section
    from bloodbench.store.results import ResultsStore

    recs = ResultsStore(REPO_RESULTS).records("train")
    e = ENTRIES[0]
    card = "\n".join(weights_section(e["model"], [r for r in recs if r["model"] == e["model"]]))
    assert e["sha256"] in card and f"bloodbench/models/published/{e['file']}" in card
    assert f'get_model("{e["model"]}", weights="published")' in card and e["train_command"] in card
    card = "\n".join(weights_section("vgg11", [r for r in recs if r["model"] == "vgg11"]))
    # its command names the seed once vgg11 has a finished run (`... --seed 0`), none before
    assert "No published weights" in card and "`bloodbench train vgg11" in card
