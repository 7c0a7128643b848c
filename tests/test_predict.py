"""``bloodbench predict`` on real BloodMNIST test images written as PNG/JPEG files and npz: the saved
predictions of the published run come back, resizing is said, bad inputs are one error line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bloodbench.cli import main
from bloodbench.models.weights import read_manifest
from bloodbench.store.predictions import load_predictions
from bloodbench.store.results import REPO_RESULTS

ENTRY = next(e for e in read_manifest() if e["model"] == "baseline_cnn")
RUN_DIR = REPO_RESULTS / "train" / ENTRY["run_id"]
IDX = [0, 7, 100, 1234, 2500, 3420]


@pytest.fixture(scope="module")
def saved():
    return {k: load_predictions(RUN_DIR / f"{k}.npz")[1] for k in ("test_predictions", "test_predictions_tta")}


@pytest.fixture
def pngs(blood, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in IDX:  # zero-padded names: the folder's sorted order is IDX's order
        Image.fromarray(blood["test"].images[i].permute(1, 2, 0).numpy()).save(folder / f"test_{i:04d}.png")
    return folder


def run_json(args, capsys) -> dict:
    assert main(["predict", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_png_folder_gives_the_saved_predictions_plain_and_tta(pngs, saved, capsys, blood):
    doc = run_json(["baseline_cnn", str(pngs), "--weights", "published", "--tta"], capsys)
    assert doc["run_id"] == ENTRY["run_id"] and doc["preprocessing"]["precision"] == ENTRY["precision"]
    rows = doc["predictions"]
    assert [r["image"].rsplit("/", 1)[-1] for r in rows] == [f"test_{i:04d}.png" for i in IDX]
    plain, tta = saved["test_predictions"][IDX], saved["test_predictions_tta"][IDX]
    names = list(blood.info.class_names)
    for r, p, t in zip(rows, plain, tta):
        assert r["label"] == int(p.argmax()) and r["class"] == names[int(p.argmax())]
        assert r["probability"] == pytest.approx(float(p.max()), abs=1e-5)
        assert [x["label"] for x in r["top3"]] == list(np.argsort(-p)[:3])
        for x in r["top3"]:
            assert x["probability"] == pytest.approx(float(p[x["label"]]), abs=1e-5)
        assert r["tta_label"] == int(t.argmax()) and r["tta_probability"] == pytest.approx(float(t.max()), abs=1e-5)
        assert r["resized_from"] is None


def test_table_output_and_csv(pngs, saved, capsys, tmp_path):
    out = tmp_path / "o" / "pred.csv"
    assert main(["predict", "baseline_cnn", str(pngs / "test_0007.png"), str(pngs / "test_0100.png"),
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "published weights" in text and "| image" in text and f"wrote {out}" in text
    df = pd.read_csv(out)
    p = saved["test_predictions"][[7, 100]]
    assert list(df["label"]) == list(p.argmax(1))
    np.testing.assert_allclose(df["probability"], p.max(1), atol=1e-5)
    np.testing.assert_allclose(df["top2_probability"], np.sort(p, 1)[:, -2], atol=1e-5)


def test_npz_in_medmnist_layout_with_labels(blood, saved, capsys, tmp_path):
    imgs = blood["test"].images[IDX].permute(0, 2, 3, 1).numpy()
    path = tmp_path / "few.npz"
    np.savez(path, test_images=imgs, test_labels=blood["test"].labels[IDX].numpy().reshape(-1, 1))
    doc = run_json(["baseline_cnn", str(path)], capsys)
    got = np.array([r["probability"] for r in doc["predictions"]])
    np.testing.assert_allclose(got, saved["test_predictions"][IDX].max(1), atol=1e-5)
    assert [r["true_label"] for r in doc["predictions"]] == blood["test"].labels[IDX].tolist()
    assert doc["predictions"][0]["image"] == "few.npz[test 0]"


def test_wrong_size_is_resized_and_said(blood, capsys, tmp_path):
    img = Image.fromarray(blood["test"].images[7].permute(1, 2, 0).numpy())
    img.resize((56, 56), Image.Resampling.NEAREST).save(tmp_path / "big.png")
    img.save(tmp_path / "same.jpg", quality=95)
    assert main(["predict", "baseline_cnn", str(tmp_path / "big.png"), str(tmp_path / "same.jpg"),
                 "--format", "json"]) == 0
    said = capsys.readouterr()
    big, jpg = json.loads(said.out)["predictions"]
    assert big["resized_from"] == "56x56" and jpg["resized_from"] is None
    assert "1 of 2 images resized to 28x28 (from 56x56)" in said.err
    # nearest x2 then bicubic back is close to the original: the same class
    assert big["label"] == int(blood["test"].labels[7]) == jpg["label"]
    assert main(["predict", "baseline_cnn", str(tmp_path / "big.png")]) == 0
    assert "resized from 56x56" in capsys.readouterr().out


@pytest.mark.parametrize("make, message", [
    (lambda p: Image.new("L", (28, 28)).save(p), "has 1 channel, the model takes 3 (RGB)"),
    (lambda p: Image.new("RGBA", (28, 28)).save(p), "has 4 channels, the model takes 3 (RGB)"),
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n truncated"), "is not a readable PNG/JPEG image"),
], ids=["grayscale", "rgba", "unreadable"])
def test_bad_inputs_are_one_error_line(make, message, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    make(bad)
    assert main(["predict", "baseline_cnn", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_other_refusals(tmp_path, capsys):
    for args, message in [(["vgg11", str(tmp_path)], "no published weights for vgg11"),
                          (["baseline_cnn", str(tmp_path)], "holds no .png/.jpg/.jpeg files"),
                          (["baseline_cnn", str(tmp_path / "nope.png")], "not found"),
                          (["baseline_cnn", str(tmp_path), "--out", str(tmp_path / "x.txt")], "name a .csv or .json")]:
        assert main(["predict", *args]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


def test_seed_loads_that_runs_checkpoint(pngs, saved, capsys, tmp_path):
    """``--seed S``: the run of that seed in the results store, through its best.pt."""
    from test_weights import write_checkpoint

    store = tmp_path / "store"
    (store / "train" / ENTRY["run_id"]).mkdir(parents=True)
    (store / "train" / ENTRY["run_id"] / "record.json").write_text((RUN_DIR / "record.json").read_text())
    args = ["baseline_cnn", str(pngs), "--seed", str(ENTRY["seed"]), "--results", str(store)]
    assert main(["predict", *args]) == 2
    assert "has no checkpoint" in capsys.readouterr().err
    write_checkpoint(ENTRY, store / "train" / ENTRY["run_id"] / "best.pt")
    doc = run_json(args, capsys)
    assert doc["weights"] == f"run {ENTRY['run_id']}" and doc["run_id"] == ENTRY["run_id"]
    np.testing.assert_allclose([r["probability"] for r in doc["predictions"]],
                               saved["test_predictions"][IDX].max(1), atol=1e-5)
    assert main(["predict", "baseline_cnn", str(pngs), "--seed", "7", "--results", str(store)]) == 2
    assert "no finished training run of baseline_cnn on bloodmnist 28px seed 7" in capsys.readouterr().err
