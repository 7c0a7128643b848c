"""Grad-CAM, error analysis, calibration and the `bloodbench explain` command."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from records_factory import CLASS_NAMES, plugin_model
from torch import nn

from bloodbench.cli import main
from bloodbench.data import Normalizer
from bloodbench.errors import BloodbenchError
from bloodbench.explain import (
    OUTPUT_FILES,
    coarse_map_note,
    confused_pairs,
    default_target_layer,
    expected_calibration_error,
    grad_cam,
    match_class,
    per_class_errors,
    reliability_bins,
    resolve_target_layer,
    select_examples,
)
from bloodbench.explain.report import errors_markdown
from bloodbench.models import _api, create_model, get_model_info, list_models
from bloodbench.store.results import ResultsStore
from bloodbench.train.checkpoint import save_checkpoint

TINY = {"widths": [8, 16, 32, 32]}  # baseline_cnn, narrow enough to train in seconds on a shared CPU


@pytest.fixture(scope="module")
def tiny_trained(blood, one_thread):
    """baseline_cnn (narrow) after 60 Adam steps on 480 real BloodMNIST training images."""
    torch.manual_seed(0)
    train = blood["train"]
    idx = torch.arange(480)
    images, labels = train.images[idx], train.labels[idx]
    norm = Normalizer.from_split(type(train)(images, labels))
    model = create_model("baseline_cnn", **TINY)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(60):
        b = torch.randint(0, len(idx), (32,), generator=g)
        loss = nn.functional.cross_entropy(model(norm(images[b])), labels[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    model.eval()
    return model, norm


# -- Grad-CAM ---------------------------------------------------------------------------

def test_gradcam_on_trained_model_is_a_normalised_input_sized_map(tiny_trained, blood):
    model, norm = tiny_trained
    x = norm(blood["test"].images[:8])
    layer, _ = resolve_target_layer(model, get_model_info("baseline_cnn").target_layer, "baseline_cnn")
    assert layer == "features.3"
    cams, logits = grad_cam(model, x, layer)
    assert cams.shape == (8, 28, 28) and logits.shape == (8, 8)
    assert torch.isfinite(cams).all()
    assert cams.min() >= 0 and cams.max() <= 1
    per_image_span = cams.flatten(1).amax(1) - cams.flatten(1).amin(1)
    assert (per_image_span > 0.5).all(), "each map should be min-max scaled, not constant"
    # eval mode and the weights' .grad untouched: explanation must not disturb the model
    assert not model.training
    assert all(p.grad is None for p in model.parameters())
    with torch.no_grad():
        assert torch.allclose(logits, model(x), atol=1e-5)


def test_gradcam_explains_the_requested_class(tiny_trained, blood):
    model, norm = tiny_trained
    x = norm(blood["test"].images[:4])
    a, _ = grad_cam(model, x, "features.3", target=torch.zeros(4, dtype=torch.long))
    b, _ = grad_cam(model, x, "features.3", target=torch.full((4,), 7, dtype=torch.long))
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("name", list_models())
def test_gradcam_runs_on_every_registry_model(name, one_thread):
    torch.manual_seed(0)
    info = get_model_info(name)
    model = create_model(name, in_channels=3, num_classes=8).eval()
    layer, module = resolve_target_layer(model, info.target_layer, name)
    if info.target_layer is not None:
        assert layer == info.target_layer
    assert isinstance(module, nn.Module)
    cams, logits = grad_cam(model, torch.randn(2, 3, 28, 28), layer)
    assert cams.shape == (2, 28, 28) and logits.shape == (2, 8)
    assert torch.isfinite(cams).all() and cams.min() >= 0 and cams.max() <= 1
    # explain's default at 28 px: a map of at least 7x7, never the last block's 2x2-4x4 blob
    default, fmap, note = default_target_layer(model, info.target_layer, name, (1, 3, 28, 28))
    assert min(fmap) >= 7 and (default == layer or f"last block {layer} gives" in note)
    assert grad_cam(model, torch.randn(1, 3, 28, 28), default)[0].shape == (1, 28, 28)


def test_gradcam_survives_inplace_relu_after_the_target():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, 3))
    cams, _ = grad_cam(model, torch.randn(2, 3, 28, 28), "0")
    assert cams.shape == (2, 28, 28)


def test_model_without_conv_layers_is_a_clear_error():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 28 * 28, 32), nn.ReLU(), nn.Linear(32, 8))
    with pytest.raises(BloodbenchError, match="no convolutional layer"):
        resolve_target_layer(model, None, "mlp_only")
    with pytest.raises(BloodbenchError, match="not found in mlp_only"):
        resolve_target_layer(model, "features.3", "mlp_only")
    with pytest.raises(BloodbenchError, match="spatial"):
        grad_cam(model, torch.randn(2, 3, 28, 28), "1")


def test_unknown_layer_lists_conv_layers():
    model = create_model("baseline_cnn", **TINY)
    with pytest.raises(BloodbenchError, match=r"layer 'features\.9' not found .*conv layers include"):
        resolve_target_layer(model, "features.9", "baseline_cnn")


# -- calibration ------------------------------------------------------------------------

def test_ece_matches_hand_computation():
    # 15 equal-width bins, right-closed, of the top-label confidence:
    #   sample  scores              true  conf  correct  bin = ceil(15 * conf) - 1
    #   0       .90 .05 .05          0    .90   yes      ceil(13.5)  - 1 = 13
    #   1       .95 .03 .02          1    .95   no       ceil(14.25) - 1 = 14
    #   2       .20 .70 .10          1    .70   yes      ceil(10.5)  - 1 = 10
    #   3       .10 .20 .70          0    .70   no       10
    #   4       .45 .35 .20          0    .45   yes      ceil(6.75)  - 1 = 6
    # bin 13: acc 1,   conf .90 -> |gap| .10, weight 1/5 -> .02
    # bin 14: acc 0,   conf .95 -> |gap| .95, weight 1/5 -> .19
    # bin 10: acc 1/2, conf .70 -> |gap| .20, weight 2/5 -> .08
    # bin  6: acc 1,   conf .45 -> |gap| .55, weight 1/5 -> .11
    # ECE = .02 + .19 + .08 + .11 = .40
    y_score = np.array([[.90, .05, .05], [.95, .03, .02], [.20, .70, .10], [.10, .20, .70], [.45, .35, .20]])
    y_true = np.array([0, 1, 1, 0, 0])
    assert expected_calibration_error(y_true, y_score) == pytest.approx(0.40, abs=1e-9)
    bins = reliability_bins(y_true, y_score)
    assert bins.count.tolist() == [0] * 6 + [1] + [0] * 3 + [2, 0, 0, 1, 1]
    assert bins.accuracy[10] == pytest.approx(0.5)
    # One bin: |mean acc - mean conf| = |3/5 - (.90 + .95 + .70 + .70 + .45)/5| = |.60 - .74| = .14
    assert expected_calibration_error(y_true, y_score, n_bins=1) == pytest.approx(0.14, abs=1e-9)


def test_calibration_rejects_mismatched_scores_with_the_shapes():
    with pytest.raises(ValueError, match=r"y_score must be \(N, C\) with N=3, got \(2, 4\)"):
        reliability_bins([0, 1, 2], np.full((2, 4), 0.25))
    with pytest.raises(ValueError, match="no samples"):
        expected_calibration_error([], np.zeros((0, 4)))


def test_ece_zero_for_certain_and_correct():
    y_score = np.eye(4)[[0, 1, 2, 3, 1]]  # confidence exactly 1.0 lands in the last bin
    assert expected_calibration_error([0, 1, 2, 3, 1], y_score) == 0.0


def _strided_cnn(strides: list[int]) -> nn.Sequential:
    """Conv blocks with the given strides, then a head: block i's map is 28 / prod(strides[:i+1])."""
    layers, c = [], 3
    for s in strides:
        layers.append(nn.Sequential(nn.Conv2d(c, 8, 3, stride=s, padding=1), nn.ReLU()))
        c = 8
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 8))


def test_coarse_map_note_names_the_deepest_layer_of_at_least_7x7():
    model = _strided_cnn([2, 1, 2, 2])  # maps 14, 14, 7, 4
    note = coarse_map_note(model, "3", (4, 4), (1, 3, 28, 28))
    assert note == ("Grad-CAM layer 3 gives a 4x4 map at 28 px, too coarse to localise much; "
                    "for a finer map try --layer 2 (7x7)")
    assert coarse_map_note(_strided_cnn([1, 1, 2, 2]), "3", (7, 7), (1, 3, 28, 28)) is None  # 7x7 is fine
    assert coarse_map_note(_strided_cnn([2, 2, 1]), "2", (5, 5), (1, 3, 20, 20)) is None  # only <= 4x4 is noted
    note = coarse_map_note(_strided_cnn([8, 1]), "1", (4, 4), (1, 3, 28, 28))
    assert note.endswith(": no conv layer keeps a 7x7 map at this size")
    assert model.training  # the probing pass leaves the model's mode alone


def test_coarse_map_note_for_a_registry_model(tiny_trained):
    model, _ = tiny_trained
    note = coarse_map_note(model, "features.3", (3, 3), (1, 3, 28, 28))
    assert note.startswith("Grad-CAM layer features.3 gives a 3x3 map at 28 px")
    finer = note.split("--layer ")[1].split(" ")[0]
    cams, _ = grad_cam(model, torch.zeros(1, 3, 28, 28), finer)  # the suggestion is a usable --layer
    assert cams.shape == (1, 28, 28)


def _table_rows(md: str) -> list[list[str]]:
    """Each markdown table as its rows, cells split on unescaped pipes."""
    tables, current = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            current.append(re.split(r"(?<!\\)\|", line.strip())[1:-1])
        elif current:
            tables.append(current)
            current = []
    return tables


def assert_tables_well_formed(md: str) -> None:
    tables = _table_rows(md)
    assert tables, "no markdown table found"
    for rows in tables:
        assert len(rows) >= 2 and set("".join(rows[1])) <= set("-: "), rows[:2]  # header, then separator
        assert {len(r) for r in rows} == {len(rows[0])}, rows[:2]


def test_errors_markdown_tables_are_well_formed():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 8, 400)
    y_score = rng.dirichlet(np.ones(8), 400).astype(np.float32)
    y_score[np.arange(300), y_true[:300]] += 2.0  # mostly right, some wrong
    y_score /= y_score.sum(1, keepdims=True)
    record = {"run_id": "m-bloodmnist-28-s0-x", "dataset": "bloodmnist", "size": 28, "seed": 0}
    note = "Grad-CAM layer features.3 gives a 3x3 map at 28 px, too coarse to localise much"
    md = errors_markdown("m", record, y_true, y_score, CLASS_NAMES, reliability_bins(y_true, y_score),
                         "features.3", (3, 3), 15, CLASS_NAMES[3], note)
    assert_tables_well_formed(md)
    assert len(_table_rows(md)) == 3  # per-class errors, confused pairs, calibration
    assert "abs gap |" in md and f"  - note: {note}" in md


# -- error analysis ---------------------------------------------------------------------

def test_confused_pairs_and_per_class_errors_hand_made():
    names = ["a", "b", "c"]
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 2, 1, 0, 2, 2, 2, 1])
    y_score = np.eye(3)[y_pred] * 0.8 + 0.2 / 3
    pairs = confused_pairs(y_true, y_score, names)
    assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [
        ("a", "b", 2), ("a", "c", 1), ("b", "a", 1), ("c", "b", 1)]
    assert [p["share"] for p in pairs] == pytest.approx([2 / 4, 1 / 4, 1 / 2, 1 / 4])
    assert confused_pairs(y_true, y_score, names, top=1)[0]["count"] == 2
    pc = per_class_errors(y_true, y_score, names)
    assert [(r["support"], r["errors"]) for r in pc] == [(4, 3), (2, 1), (4, 1)]
    assert [r["error_rate"] for r in pc] == pytest.approx([0.75, 0.5, 0.25])


def test_select_examples_most_confident_first_and_deterministic():
    y_true = np.array([0, 0, 1, 1, 1])
    y_score = np.array([[.9, .1], [.6, .4], [.7, .3], [.2, .8], [.1, .9]])
    assert select_examples(y_true, y_score, True, 10).tolist() == [0, 4, 3, 1]
    assert select_examples(y_true, y_score, False, 10).tolist() == [2]
    assert select_examples(y_true, y_score, True, 2, class_idx=1).tolist() == [4, 3]


def test_match_class_prefix_case_insensitive():
    names = ["basophil", "eosinophil", "erythroblast", "immature granulocytes(myelocytes)", "lymphocyte"]
    assert match_class("Baso", names) == 0
    assert match_class("imm", names) == 3
    assert match_class("eosinophil", names) == 1
    with pytest.raises(BloodbenchError, match="ambiguous"):
        match_class("e", names)
    with pytest.raises(BloodbenchError, match="unknown class 'xyz': choose one of basophil, .*lymphocyte"):
        match_class("xyz", names)


# -- CLI --------------------------------------------------------------------------------

def _softmax_predictions(model, norm, test) -> np.ndarray:
    with torch.no_grad():
        return torch.cat([model(norm(test.images[i:i + 1024])).softmax(1)
                          for i in range(0, len(test), 1024)]).numpy().astype(np.float32)


@pytest.fixture(scope="module")
def tiny_predictions(tiny_trained, blood):
    return _softmax_predictions(*tiny_trained, blood["test"])


def _populate_run(root, model_name, model, norm, blood, y_score=None, seed=0, checkpoint=True, model_kwargs=None):
    """A finished run as the trainer leaves it: record.json, best.pt, test_predictions.npz."""
    store = ResultsStore(root)
    run_id = f"{model_name}-bloodmnist-28-s{seed}-0123456789"
    test = blood["test"]
    if y_score is None:
        y_score = _softmax_predictions(model, norm, test)
    y_true = test.labels.numpy().astype(np.int64)
    store.write({"kind": "train", "run_id": run_id, "model": model_name, "dataset": "bloodmnist", "size": 28,
                 "seed": seed, "status": "finished", "created_at": "2026-01-01T00:00:00+00:00",
                 "test": {"acc": float((y_score.argmax(1) == y_true).mean()),
                          "class_names": list(blood.info.class_names)},
                 "artifacts": {"best": "best.pt", "predictions": "test_predictions.npz"}})
    run_dir = store.run_dir(run_id)
    if checkpoint:
        save_checkpoint(run_dir / "best.pt", {
            "model": model_name, "model_kwargs": dict(model_kwargs or {}), "in_channels": 3, "num_classes": 8,
            "normalizer": {"mean": list(norm.mean), "std": list(norm.std)},
            "model_state": model.state_dict(), "epoch": 1})
    np.savez(run_dir / "test_predictions.npz", y_true=y_true, y_score=y_score)
    return run_dir


def test_cli_end_to_end_writes_the_five_outputs(tmp_path, tiny_trained, tiny_predictions, blood, real_data_dir,
                                                capsys):
    model, norm = tiny_trained
    _populate_run(tmp_path / "results", "baseline_cnn", model, norm, blood, tiny_predictions, model_kwargs=TINY)
    out = tmp_path / "explain"
    rc = main(["explain", "baseline_cnn", "--n", "4", "--data-dir", str(real_data_dir),
               "--results", str(tmp_path / "results"), "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    for name in OUTPUT_FILES:
        assert (out / name).stat().st_size > 1000, name
    md = (out / "errors.md").read_text()
    npz = np.load(tmp_path / "results" / "train" / "baseline_cnn-bloodmnist-28-s0-0123456789" / "test_predictions.npz")
    ece = expected_calibration_error(npz["y_true"], npz["y_score"])
    assert f"{ece:.4f}" in md and "ECE" in md
    for name in ("gradcam_correct.png", "gradcam_wrong.png", "reliability.png", "misclassified.png"):
        assert f"({name})" in md
    assert "| true " in md and "share of true class" in md
    assert f"ECE {ece:.4f}" in captured.out
    assert_tables_well_formed(md)
    # The last block's 3x3 map carries no information: the default is the deepest 7x7 layer, said
    # once on stderr and in errors.md.
    notes = [line for line in captured.err.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and notes[0].startswith("note: Grad-CAM on features.2.1 (7x7)")
    assert "features.3 gives 3x3" in notes[0] and f"  - {notes[0]}" in md
    assert "Grad-CAM target layer: `features.2.1`, a 7x7 feature map" in md
    assert "Grad-CAM layer features.2.1" in captured.out

    # --class narrows the example grids; an unknown class lists the class names; --layer still picks the layer
    rc = main(["explain", "baseline_cnn", "--n", "2", "--class", "Neut", "--layer", "features.3",
               "--data-dir", str(real_data_dir), "--results", str(tmp_path / "results"),
               "--out", str(tmp_path / "neut")])
    assert rc == 0
    neut = (tmp_path / "neut" / "errors.md").read_text()
    assert "true class **neutrophil**" in neut and "`features.3`, a 3x3 feature map" in neut
    assert "try --layer features.2.1 (7x7)" in capsys.readouterr().err
    rc = main(["explain", "baseline_cnn", "--class", "xyz", "--data-dir", str(real_data_dir),
               "--results", str(tmp_path / "results"), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "choose one of basophil" in err
    rc = main(["explain", "baseline_cnn", "--n", "2", "--data-dir", str(real_data_dir),
               "--results", str(tmp_path / "results"), "--out", "/dev/null/x"])
    err = capsys.readouterr().err
    assert rc == 2 and err == "error: cannot write to output folder /dev/null/x: Not a directory; choose another --out\n"


def test_cli_no_gradcam_needs_only_the_saved_predictions(tmp_path, tiny_trained, tiny_predictions, blood,
                                                          real_data_dir, capsys):
    model, norm = tiny_trained
    _populate_run(tmp_path / "results", "baseline_cnn", model, norm, blood, tiny_predictions, checkpoint=False)
    out = tmp_path / "explain"
    rc = main(["explain", "baseline_cnn", "--no-gradcam", "--n", "4", "--data-dir", str(real_data_dir),
               "--results", str(tmp_path / "results"), "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert sorted(p.name for p in out.iterdir()) == ["errors.md", "misclassified.png", "reliability.png"]
    md = (out / "errors.md").read_text()
    assert "Grad-CAM: not computed" in md and "gradcam_correct.png" not in md
    ece = expected_calibration_error(blood["test"].labels.numpy(), tiny_predictions)
    assert f"ECE = {ece:.4f}" in md and "no Grad-CAM" in captured.out
    assert_tables_well_formed(md)

    # Grids left by an earlier pass with the checkpoint are kept, and the text says what they are.
    for name in ("gradcam_correct.png", "gradcam_wrong.png"):
        (out / name).write_bytes(b"earlier grid")
    assert main(["explain", "baseline_cnn", "--no-gradcam", "--n", "4", "--data-dir", str(real_data_dir),
                 "--results", str(tmp_path / "results"), "--out", str(out)]) == 0
    md = (out / "errors.md").read_text()
    assert "not computed" not in md and "grids below are from an earlier pass" in md
    assert "![Grad-CAM correct](gradcam_correct.png)" in md
    assert (out / "gradcam_wrong.png").read_bytes() == b"earlier grid"


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_cli_missing_checkpoint_is_one_line_error(tmp_path, tiny_trained, tiny_predictions, blood, real_data_dir,
                                                  capsys):
    model, norm = tiny_trained
    _populate_run(tmp_path, "baseline_cnn", model, norm, blood, tiny_predictions, seed=3, checkpoint=False,
                  model_kwargs=TINY)
    rc = main(["explain", "baseline_cnn", "--seed", "3", "--data-dir", str(real_data_dir),
               "--results", str(tmp_path), "--out", str(tmp_path / "out")])
    assert rc == 2
    err = _one_line_error(capsys)
    assert "best.pt" in err and "bloodbench train baseline_cnn --seed 3" in err


def test_cli_no_finished_run_names_the_train_command(tmp_path, capsys):
    rc = main(["explain", "baseline_cnn", "--seed", "5", "--results", str(tmp_path), "--out", str(tmp_path / "o")])
    assert rc == 2
    err = _one_line_error(capsys)
    assert "no finished training run" in err and "bloodbench train baseline_cnn --seed 5" in err


def test_cli_model_without_conv_layer(tmp_path, blood, real_data_dir, monkeypatch, capsys):
    def mlp_only(in_channels=3, num_classes=8):
        return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * 28 * 28, num_classes))

    monkeypatch.setitem(_api._REGISTRY, "mlp_only", _api.ModelInfo(
        "mlp_only", "test", "linear only", "test", mlp_only, {}, None))
    _populate_run(tmp_path, "mlp_only", mlp_only().eval(), Normalizer((0.5,) * 3, (0.25,) * 3), blood)
    rc = main(["explain", "mlp_only", "--data-dir", str(real_data_dir), "--results", str(tmp_path),
               "--out", str(tmp_path / "out")])
    assert rc == 2
    assert "no convolutional layer" in _one_line_error(capsys)


def test_find_run_prefers_lowest_seed_then_newest(tmp_path):
    from bloodbench.explain import find_train_run

    plugin_model("m")  # a made-up model, registered as a plug-in would be
    store = ResultsStore(tmp_path)
    for rid, seed, created, status in [("a", 2, "2026-01-03", "finished"), ("b", 1, "2026-01-01", "finished"),
                                       ("c", 1, "2026-01-02", "finished"), ("d", 0, "2026-01-09", "running")]:
        store.write({"kind": "train", "run_id": rid, "model": "baseline_cnn", "dataset": "bloodmnist", "size": 28,
                     "seed": seed, "status": status, "created_at": created, "test": {"acc": 0.9}})
    assert find_train_run(store, "baseline_cnn")["run_id"] == "c"
    assert find_train_run(store, "baseline_cnn", seed=2)["run_id"] == "a"
    with pytest.raises(BloodbenchError, match="seed 0"):
        find_train_run(store, "baseline_cnn", seed=0)
    with pytest.raises(BloodbenchError, match="unknown model 'baseline_cn'"):  # a typo is not "train it first"
        find_train_run(store, "baseline_cn")


class _TinyViT(nn.Module):
    """Patch embedding + CLS token: the target block outputs N x (1 + 7*7) x C tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 16, 4, stride=4)
        self.cls = nn.Parameter(torch.zeros(1, 1, 16))
        self.block = nn.Sequential(nn.LayerNorm(16), nn.Linear(16, 16), nn.GELU())
        self.head = nn.Linear(16, 8)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(len(x), -1, -1), t], 1)
        t = t + self.block(t)
        return self.head(t.mean(1))


def test_gradcam_reshapes_transformer_tokens():
    torch.manual_seed(0)
    cams, _ = grad_cam(_TinyViT().eval(), torch.randn(2, 3, 28, 28), "block")
    assert cams.shape == (2, 28, 28) and cams.min() >= 0 and cams.max() <= 1


def test_fallback_layer_is_last_spatial_conv():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 8, 3, stride=2, padding=1),
                          nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 8, 1), nn.Flatten(), nn.Linear(8, 8))
    layer, _ = resolve_target_layer(model, None, "toy")
    assert layer == "2"  # not "4", whose 1x1 output carries no spatial information


def test_explain_without_out_never_writes_the_published_folder(tmp_path, tiny_trained, tiny_predictions, blood,
                                                              real_data_dir, capsys, monkeypatch):
    """`explain` overwrote the committed reports/explain/<model>/errors.md: without --out it writes to a working
    folder, and says how to publish."""
    model, norm = tiny_trained
    _populate_run(tmp_path / "results", "baseline_cnn", model, norm, blood, tiny_predictions, checkpoint=False)
    published = tmp_path / "reports" / "explain" / "baseline_cnn" / "errors.md"
    published.parent.mkdir(parents=True)
    published.write_text("# the committed analysis\n")
    monkeypatch.chdir(tmp_path)
    assert main(["explain", "baseline_cnn", "--no-gradcam", "--n", "4", "--data-dir", str(real_data_dir),
                 "--results", str(tmp_path / "results")]) == 0
    captured = capsys.readouterr()
    assert published.read_text() == "# the committed analysis\n"
    assert (tmp_path / "explain-out" / "baseline_cnn" / "errors.md").is_file()
    assert "--out reports/explain/baseline_cnn to publish" in captured.err
    assert re.search(r"test accuracy \d+\.\d\d % \(", captured.out)  # percent, as the leaderboard prints
