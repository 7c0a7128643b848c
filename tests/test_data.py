"""Data module on the real BloodMNIST/OrganAMNIST files and on small files made here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bloodbench import data
from bloodbench.cli import main
from bloodbench.errors import BloodbenchError
from conftest import write_medmnist_npz

BLOOD_COUNTS = {"train": 11959, "val": 1712, "test": 3421}
BLOOD_TRAIN_CLASS_COUNTS = [852, 2181, 1085, 2026, 849, 993, 2330, 1643]


def test_real_bloodmnist_shapes_counts_and_md5(blood):
    assert blood.md5_verdict.startswith("ok")
    assert blood.info.n_classes == 8 and blood.info.n_channels == 3
    assert blood.info.class_names[0] == "basophil" and blood.info.class_names[7] == "platelet"
    for split, n in BLOOD_COUNTS.items():
        s = blood[split]
        assert s.images.shape == (n, 3, 28, 28) and s.images.dtype == torch.uint8
        assert s.labels.shape == (n,) and s.labels.dtype == torch.int64
    assert blood["train"].class_counts(8).tolist() == BLOOD_TRAIN_CLASS_COUNTS
    assert blood["test"].class_counts(8).sum() == 3421


def test_md5_verdict_is_cached(real_data_dir):
    first = data.load_dataset("bloodmnist", 28, real_data_dir, splits=("val",))
    second = data.load_dataset("bloodmnist", 28, real_data_dir, splits=("val",))
    assert first.md5_verdict in ("ok", "ok (cached)")
    assert second.md5_verdict == "ok (cached)"


def test_real_organamnist_is_grayscale_with_11_classes(real_data_dir):
    ds = data.load_dataset("organamnist", 28, real_data_dir, splits=("val",))
    assert ds.info.n_channels == 1 and ds.info.n_classes == 11
    assert ds["val"].images.shape == (6491, 1, 28, 28)
    assert set(ds["val"].labels.unique().tolist()) == set(range(11))


@pytest.mark.parametrize("size", [64, 128, 224])
def test_larger_sizes_from_small_made_files(small_npz_dir, size):
    ds = data.load_dataset("bloodmnist", size, small_npz_dir, verify=False)
    assert ds.path.name == f"bloodmnist_{size}.npz"
    assert ds["train"].images.shape == (40, 3, size, size)
    assert ds["test"].labels.tolist() == [i % 8 for i in range(24)]


def test_grayscale_made_file_gets_one_channel(tmp_path):
    write_medmnist_npz(tmp_path / "organamnist_64.npz", 64, channels=1, n_classes=11)
    ds = data.load_dataset("organamnist", 64, tmp_path, verify=False)
    assert ds["train"].images.shape == (40, 1, 64, 64)


def test_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "env"))
    assert data.resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"  # beats the env var
    assert data.resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv(data.DATA_DIR_ENV)
    # unset: ../shared/data from the current folder, then from the checkout, where it exists
    from bloodbench.data import medmnist_data

    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "repo" / "sub").mkdir(parents=True)
    monkeypatch.setattr(medmnist_data, "REPO_ROOT", tmp_path / "elsewhere" / "repo")
    monkeypatch.chdir(tmp_path / "repo")
    assert data.resolve_data_dir() == (tmp_path / "shared" / "data").resolve()
    monkeypatch.chdir(tmp_path / "repo" / "sub")  # not from here, but from the checkout
    monkeypatch.setattr(medmnist_data, "REPO_ROOT", tmp_path / "repo")
    assert data.resolve_data_dir() == (tmp_path / "shared" / "data").resolve()
    monkeypatch.setattr(medmnist_data, "REPO_ROOT", tmp_path / "elsewhere" / "repo")
    monkeypatch.setattr(medmnist_data, "MEDMNIST_ROOT", tmp_path / "no-medmnist")
    assert data.resolve_data_dir() == tmp_path / "no-medmnist"
    # ... and then the message says plainly that the variable is needed
    with pytest.raises(BloodbenchError, match=r"BLOODBENCH_DATA_DIR is not set, and no \.\./shared/data was found"):
        data.load_dataset("bloodmnist", 28)


def test_missing_dir_and_missing_file_are_clear(tmp_path):
    with pytest.raises(BloodbenchError, match="does not exist.*--data-dir"):
        data.load_dataset("bloodmnist", 28, tmp_path / "nope")
    with pytest.raises(BloodbenchError, match=r"bloodmnist_64\.npz not found.*bloodbench data download"):
        data.load_dataset("bloodmnist", 64, tmp_path)


def test_wrong_md5_is_an_error(small_npz_dir):
    with pytest.raises(BloodbenchError, match="md5 .* expected 2b94928a2ae4916078ca51e05b6b800b"):
        data.load_dataset("bloodmnist", 64, small_npz_dir, verify=True)


def test_truncated_file_is_an_error(small_npz_dir):
    path = small_npz_dir / "bloodmnist_64.npz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(BloodbenchError, match="truncated or corrupt"):
        data.load_dataset("bloodmnist", 64, small_npz_dir, verify=False)


def test_corrupt_compressed_stream_is_an_error(small_npz_dir):
    """Bytes flipped inside a member (zip directory intact) fail in zlib, not in the zip reader."""
    path = small_npz_dir / "bloodmnist_64.npz"
    raw = bytearray(path.read_bytes())
    raw[1000:1512] = bytes(512)
    path.write_bytes(bytes(raw))
    with pytest.raises(BloodbenchError, match="truncated or corrupt"):
        data.load_dataset("bloodmnist", 64, small_npz_dir, verify=False)


def test_md5_verdict_is_recomputed_when_the_file_changes(tmp_path):
    path = write_medmnist_npz(tmp_path / "bloodmnist_64.npz", 64)
    md5 = data.file_md5(path)
    assert data.verify_md5(path, md5) == "ok"
    assert data.verify_md5(path, md5) == "ok (cached)"
    write_medmnist_npz(path, 64, seed=1)  # new content, new size/mtime: the cached verdict no longer applies
    with pytest.raises(BloodbenchError, match="md5"):
        data.verify_md5(path, md5)


def test_multi_label_dataset_is_refused_clearly():
    with pytest.raises(BloodbenchError, match="chestmnist is a multi-label.*single-label.*bloodmnist"):
        data.dataset_info("chestmnist")
    assert "chestmnist" not in data.available_flags() and "bloodmnist" in data.available_flags()


def test_bad_flag_and_size(tmp_path):
    with pytest.raises(BloodbenchError, match="did you mean bloodmnist"):
        data.dataset_info("bloodmnst")
    with pytest.raises(BloodbenchError, match="28, 64, 128, 224"):
        data.dataset_info("bloodmnist", 32)


def test_batches_cover_the_split_once_and_are_reproducible(blood):
    val = blood["val"]
    batches = data.TensorBatches(val, 256)
    seen = torch.cat([y for _, y in batches(data.epoch_generator(0, 0))])
    assert len(seen) == len(val) and torch.equal(seen.sort().values, val.labels.sort().values)
    again = torch.cat([y for _, y in batches(data.epoch_generator(0, 0))])
    assert torch.equal(seen, again)
    other = torch.cat([y for _, y in batches(data.epoch_generator(0, 1))])
    assert not torch.equal(seen, other)


def test_balanced_sampler_evens_out_classes(blood):
    batches = data.TensorBatches(blood["train"], 1024, sampler="balanced")
    labels = torch.cat([y for _, y in batches(data.epoch_generator(0, 0))])
    share = torch.bincount(labels, minlength=8).float() / len(labels)
    assert torch.all((share - 1 / 8).abs() < 0.02)


def test_class_weights_are_sklearn_balanced():
    labels = torch.tensor([0, 0, 0, 1])
    w = data.class_weights(labels, 3)
    assert w.tolist() == pytest.approx([4 / (2 * 3), 4 / (2 * 1), 1.0])


def test_augmentation_is_a_dihedral_permutation_of_pixels(blood):
    x = blood["val"].images[:64].float().div(255)
    y = data.augment_batch(x, data.epoch_generator(0, 0))
    assert y.shape == x.shape
    # flips/transposes move pixels, never change them: the sorted values of each image match
    assert torch.equal(x.flatten(1).sort(1).values, y.flatten(1).sort(1).values)
    assert not torch.equal(x, y)
    z = data.augment_batch(x, data.epoch_generator(0, 0), color_jitter=0.2)
    assert z.min() >= 0 and z.max() <= 1


def test_normalizer_centres_the_training_split(blood):
    norm = data.Normalizer.from_split(blood["val"])
    x = norm(blood["val"].images)
    assert x.mean(dim=(0, 2, 3)).abs().max() < 1e-3
    assert (x.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-2


def test_normalizer_builds_its_mean_and_std_tensors_once_per_device(monkeypatch):
    """A host-to-device copy per batch is a host sync on CUDA: the constants are made once."""
    norm = data.Normalizer((0.5, 0.25, 0.0), (0.5, 0.25, 1.0))
    made = []
    real = torch.tensor
    monkeypatch.setattr(torch, "tensor", lambda *a, **k: made.append(1) or real(*a, **k))
    x = torch.full((2, 3, 4, 4), 0.5)
    first, second = norm.normalize(x), norm.normalize(x)
    assert len(made) == 2 and torch.equal(first, second)  # mean and std, on the first call only
    assert first[0, :, 0, 0].tolist() == [0.0, 1.0, 0.5]
    fresh = data.Normalizer((0.5,), (0.5,))
    with torch.inference_mode():  # made under evaluation, still usable by training afterwards
        fresh.normalize(torch.ones(1, 1, 2, 2))
    assert not fresh._tensors[(torch.device("cpu"), torch.float32)][0].is_inference()
    assert fresh == data.Normalizer((0.5,), (0.5,))  # the cache is not part of its identity


def test_cli_data_info_prints_counts(real_data_dir, capsys):
    assert main(["data", "info", "--data-dir", str(real_data_dir)]) == 0
    out = capsys.readouterr().out
    assert "md5: ok" in out and "basophil" in out and "11959" in out and "3421" in out


def test_cli_data_info_missing_dir_is_one_line_error(tmp_path, capsys):
    assert main(["data", "info", "--data-dir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
