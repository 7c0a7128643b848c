"""No input may move a published figure (issue 24): every record field validated in one place, strict JSON
out, prediction files checked against the dataset, names that never become paths outside --out, caches
and benchmark JSON that cannot inject a figure, and ensembles that survive an extra seed."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from conftest import run_cli
from records_factory import (
    THREE_SEEDS_ACCS,
    benchmark_entry,
    plugin_model,
    profile_record,
    row,
    three_seed_store,
    train_record,
    write_benchmark_json,
    write_store,
)

from bloodbench.leaderboard import load_leaderboard
from bloodbench.store import cache
from bloodbench.store.fsutil import strict_json
from bloodbench.store.results import ResultsStore

ACCS = THREE_SEEDS_ACCS




def strict_loads(text: str):
    """JSON as a strict parser reads it: NaN and Infinity are not JSON."""
    def refuse(name):
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def store(tmp_path):
    return three_seed_store(tmp_path / "r")


def _edit(path, change) -> None:
    rec = json.loads(path.read_text())
    change(rec)
    path.write_text(json.dumps(rec))  # json.dumps writes NaN / Infinity as a hand edit would


def _set(path: str, value):
    def change(rec):
        *parents, last = path.split(".")
        node = rec
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = value
    return change


# -- item 2: every record field ------------------------------------------------------------
TRAIN_CASES = [
    ("test.acc", 1.7, "test.acc is 1.7, not in [0, 1]"),
    ("test.acc", math.nan, "test.acc is nan, not a finite number"),
    ("test.acc", math.inf, "test.acc is inf, not a finite number"),
    ("test.auc", 5.0, "test.auc is 5, not in [0, 1]"),
    ("test.f1_macro", -0.1, "test.f1_macro is -0.1, not in [0, 1]"),
    ("test.acc", "0.97", "status is 'finished' but it has no test accuracy ('test.acc')"),
    ("test.auc", "0.97", "test.auc '0.97' is not a number"),
    ("train_seconds", -120.0, "train_seconds is -120, not >= 0"),
    ("epochs_run", -3, "epochs_run is -3, not >= 0"),
    ("params", -5, "params is -5, not >= 0"),
    ("history.0.epoch_seconds", -10.0, "history[0].epoch_seconds is -10, not >= 0"),
]


@pytest.mark.parametrize("field, value, why", TRAIN_CASES, ids=[f"{f}={v}" for f, v, _ in TRAIN_CASES])
def test_a_train_record_out_of_range_is_one_warning_and_skipped(store, capsys, field, value, why):
    path = next((store / "train").glob("m-*s1-*/record.json"))
    _edit(path, _set(field, value))
    rc, out, err = run_cli(capsys, "leaderboard", "--results", store, "--format", "json")
    assert rc == 0 and err == f"warning: skipped train record {path}: {why}; fix or delete it\n"
    r = next(r for r in strict_loads(out) if r["model"] == "m")
    assert r["seeds"] == 2 and r["acc_mean"] == pytest.approx(np.mean([ACCS[0], ACCS[2]]))
    assert r["f1_macro_mean"] == pytest.approx(np.mean([ACCS[0] - 0.01, ACCS[2] - 0.01]))  # the same 2 runs


PROFILE_CASES = [
    ("latency.p50_ms", 0, "latency.p50_ms is 0, not > 0"),
    ("latency.p50_ms", math.nan, "latency.p50_ms is nan, not a finite number"),
    ("latency.p99_ms", math.inf, "latency.p99_ms is inf, not a finite number"),
    ("macs", -21_000_000, "macs is -2.1e+07, not >= 0"),
    ("params", -1, "params is -1, not >= 0"),
    ("peak_throughput", -100, "peak_throughput is -100, not >= 0"),
    ("throughput.1.images_per_s", math.inf, "throughput[1].images_per_s is inf, not a finite number"),
    ("peak_memory_mb", -50.0, "peak_memory_mb is -50, not >= 0"),
]


@pytest.mark.parametrize("field, value, why", PROFILE_CASES, ids=[f"{f}={v}" for f, v, _ in PROFILE_CASES])
def test_a_profile_record_out_of_range_is_one_warning_and_never_a_cost(store, capsys, field, value, why):
    path = next((store / "profile").glob("m-*.json"))
    _edit(path, _set(field, value))
    rc, out, err = run_cli(capsys, "leaderboard", "--results", store, "--format", "json")
    assert rc == 0 and err == f"warning: skipped profile record {path}: {why}; fix or delete it\n"
    r = next(r for r in strict_loads(out) if r["model"] == "m")
    assert r["latency_p50_ms"] is None and r["macs"] is None and r["throughput"] is None
    assert r["seeds"] == 3


@pytest.mark.parametrize("name, why", [
    ("not_a_model", "model 'not_a_model' is not registered"),
    ("baseline_cnn ", "model 'baseline_cnn ' holds white space or control characters"),
    ("base\nline", "model 'base\\nline' holds white space or control characters"),
])
def test_a_record_of_an_unregistered_or_spaced_name_adds_no_row(store, capsys, name, why):
    rec = train_record("m", 5, 0.99)
    rec.update(model=name, run_id=f"x-{5}")
    write_store(store, [rec])
    rc, out, err = run_cli(capsys, "leaderboard", "--results", store, "--format", "json")
    assert rc == 0 and err.count("\n") == 1 and why in err
    assert [r["model"] for r in strict_loads(out)] == ["m"]


def test_a_model_registered_at_runtime_is_a_model(tmp_path, capsys):
    """A plug-in registers its model when it is imported: the live registry, not a fixed list, decides."""
    from torch import nn

    from bloodbench.models import register_model

    @register_model("my_plugin_net", family="plug", description="d", origin="o")
    def build(in_channels=3, num_classes=8):  # defined here, outside bloodbench: a plug-in
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))

    write_store(tmp_path, [train_record("my_plugin_net", 0, 0.9)])
    board = load_leaderboard(tmp_path)
    assert [r["model"] for r in board.to_records()] == ["my_plugin_net"]
    assert "plug-in model, not part of bloodbench" in board.to_markdown()
    from bloodbench.models import _api

    del _api._REGISTRY["my_plugin_net"]  # the plug-in not loaded: its record is refused, with a warning
    rc, _, err = run_cli(capsys, "leaderboard", "--results", tmp_path)
    assert rc == 2 and "model 'my_plugin_net' is not registered" in err


@pytest.mark.parametrize("where", ["file", "field"])
def test_deep_nesting_is_a_warning_not_a_recursion_error(store, capsys, where):
    deep = "[" * 100_000 + "]" * 100_000
    path = store / "train" / "deep" / "record.json"
    path.parent.mkdir()
    if where == "file":
        path.write_text(deep)
    else:
        rec = train_record("m", 7, 0.9)
        path.write_text(json.dumps(rec)[:-1] + f', "env2": {deep}}}')
    rc, out, err = run_cli(capsys, "leaderboard", "--results", store)
    assert rc == 0 and "| m" in out
    assert err == f"warning: skipped train record {path}: it is unreadable (nested too deeply); fix or delete it\n"


def test_json_output_is_strict_even_for_figures_that_cannot_be_computed(tmp_path):
    assert strict_json({"a": math.inf, "b": [math.nan, 1.0], "c": np.float32("nan"), "d": np.array([1.0, np.inf])}) \
        == '{"a": null, "b": [null, 1.0], "c": null, "d": [1.0, null]}'
    store = ResultsStore(tmp_path)
    rec = train_record("m", 0, 0.9, status="diverged")
    rec["history"][-1]["train_loss"] = math.nan  # a diverged run's loss: kept as null, never NaN
    path = store.write(rec)
    assert strict_loads(path.read_text())["history"][-1]["train_loss"] is None


def test_a_figure_that_cannot_be_computed_is_stored_as_null_and_read_as_a_gap(tmp_path):
    """An AUC over a split of one class is NaN: the writer stores null (never a lost run), the reader a gap."""
    from bloodbench.store.schema import check_written

    rec = train_record("m", 0, 0.9)
    rec["val"]["auc"] = math.nan
    path = ResultsStore(tmp_path).write(check_written(rec, "train"))
    assert strict_loads(path.read_text())["val"]["auc"] is None
    assert ResultsStore(tmp_path).get("train", rec["run_id"])["val"]["auc"] is None


# -- item 3: prediction files against the dataset -------------------------------------------
@pytest.fixture(scope="module")
def real_labels(real_data_dir):
    with np.load(real_data_dir / "bloodmnist.npz") as npz:
        return {split: npz[f"{split}_labels"].reshape(-1).astype(np.int64) for split in ("val", "test")}


def _probs(y: np.ndarray, right: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(abs(seed))
    hit = rng.random(len(y)) < right
    guess = np.where(hit, y, (y + 1) % 8)
    p = np.full((len(y), 8), 0.02, np.float32)
    p[np.arange(len(y)), guess] = 0.86
    return p


def real_store(root, labels, seeds=(0, 1, 2), models=("m", "n"), tta=True, extra=()):
    """Runs whose records and prediction files fit BloodMNIST's own val and test splits."""
    from bloodbench.store.predictions import save_predictions

    store = ResultsStore(root)
    for model, seed in [(m, s) for m in models for s in seeds] + list(extra):
        rec = train_record(model, seed, 0.9)
        rec["val"]["n"], rec["test"]["n"] = len(labels["val"]), len(labels["test"])
        run_dir = store.run_dir(rec["run_id"])
        arts = {"test_predictions": "test_predictions.npz", "val_predictions": "val_predictions.npz"}
        mix = seed + 100 * models.index(model) if model in models else seed  # models err on other images
        save_predictions(run_dir / "test_predictions.npz", labels["test"], _probs(labels["test"], 0.9, mix))
        save_predictions(run_dir / "val_predictions.npz", labels["val"], _probs(labels["val"], 0.9, mix + 10))
        if tta:
            arts["test_predictions_tta"] = "test_predictions_tta.npz"
            save_predictions(run_dir / "test_predictions_tta.npz", labels["test"], _probs(labels["test"], 0.92, mix))
        rec["artifacts"] = {**rec["artifacts"], **arts}
        store.write(rec)
    for model in models:
        store.write(profile_record(model, device="cpu", macs=1_000_000, p50=1.0, throughput=1000))
    return store


def _file(store: ResultsStore, model: str, seed: int, name: str):
    return next((store.root / "train").glob(f"{model}-*-s{seed}-*")) / name


@pytest.fixture
def preds(tmp_path, real_labels, real_data_dir, monkeypatch):
    monkeypatch.setenv("BLOODBENCH_DATA_DIR", str(real_data_dir))
    return real_store(tmp_path / "r", real_labels)


def _damage(path, how: str, labels):
    from bloodbench.store.predictions import load_predictions, save_predictions

    y, s = load_predictions(path)
    if how == "5 classes":
        save_predictions(path, y % 5, s[:, :5] / s[:, :5].sum(1, keepdims=True))
    elif how == "shuffled labels":
        save_predictions(path, np.random.default_rng(0).permutation(y), s)
    elif how == "another dataset's labels":
        with np.load(os.environ["BLOODBENCH_DATA_DIR"] + "/organamnist.npz") as npz:
            other = npz["test_labels"].reshape(-1)[: len(y)] % 8
        save_predictions(path, other, s)
    elif how == "fewer rows":
        save_predictions(path, y[:-5], s[:-5])
    elif how == "NaN probabilities":
        s[3, 2] = np.nan
        save_predictions(path, y, s)
    elif how == "torn":
        path.write_bytes(b"PK\x03\x04 torn")
    elif how == "deleted":
        path.unlink()
    elif how == "a folder":
        path.unlink()
        path.mkdir()


DAMAGES = ["5 classes", "shuffled labels", "another dataset's labels", "fewer rows", "NaN probabilities", "torn",
           "deleted", "a folder"]
MESSAGES = {"5 classes": "has 5 classes, its record 8", "shuffled labels": "labels that are not the dataset's own "
            "test labels (in another order)", "another dataset's labels": "labels that are not the dataset's own",
            "fewer rows": "rows, its record's test split 3421", "NaN probabilities": "NaN or infinite probabilities",
            "torn": "is unreadable", "deleted": "is missing", "a folder": "is not a regular file"}


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("name", ["test_predictions_tta.npz", "test_predictions.npz"])
def test_a_damaged_prediction_file_is_one_error_naming_it(preds, capsys, how, name, real_labels):
    """Seed 0's file is damaged: the message names seed 0's file (not seed 1's intact one), and no row moves."""
    damaged = _file(preds, "m", 0, name)
    _damage(damaged, how, real_labels)
    rc, out, err = run_cli(capsys, "leaderboard", "--results", preds.root)
    assert rc == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: {damaged}") and MESSAGES[how] in err, err
    assert "s1-" not in err.split(":")[1] and "--seed 0 --force" in err


def test_without_the_dataset_the_odd_file_is_named_by_the_majority(tmp_path, real_labels, capsys, monkeypatch):
    monkeypatch.setenv("BLOODBENCH_DATA_DIR", str(tmp_path / "no-data"))
    store = real_store(tmp_path / "r", real_labels, tta=False)
    from bloodbench.store.predictions import load_predictions, save_predictions

    damaged = _file(store, "m", 0, "test_predictions.npz")
    y, s = load_predictions(damaged)
    save_predictions(damaged, np.roll(y, 1), s)
    rc, _, err = run_cli(capsys, "leaderboard", "--results", store.root)
    assert rc == 2 and err.count("\n") == 1 and "not on the same images" in err
    assert str(damaged) in err and "s1-" not in err and "s2-" not in err


@pytest.mark.parametrize("target", ["../../outside.npz", "/etc/passwd", "sub/../../x.npz"])
def test_an_artifact_pointing_outside_the_store_is_refused(preds, tmp_path, capsys, target):
    from bloodbench.store.predictions import save_predictions

    save_predictions(tmp_path / "outside.npz", np.zeros(3421, int), np.full((3421, 8), 0.125))
    record = _file(preds, "m", 1, "record.json")
    _edit(record, lambda rec: rec["artifacts"].update(test_predictions_tta=target))
    rc, out, err = run_cli(capsys, "leaderboard", "--results", preds.root)
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"error: {record}: its artifact test_predictions_tta ") and "points outside" in err


def test_intact_files_give_the_same_rows_as_before(preds):
    board = load_leaderboard(preds.root)
    kinds = {r["model"]: r for r in board.to_records()}
    assert kinds["m + TTA×8"]["seeds"] == 3 and kinds["ensemble"]["seeds"] == 3
    assert 0 <= kinds["ensemble"]["acc_mean"] <= 1


# -- item 8: ensembles ------------------------------------------------------------------------
def test_one_extra_seed_of_one_model_keeps_the_ensemble_rows_and_is_footnoted(tmp_path, real_labels, monkeypatch,
                                                                             real_data_dir):
    monkeypatch.setenv("BLOODBENCH_DATA_DIR", str(real_data_dir))
    base = load_leaderboard(real_store(tmp_path / "a", real_labels, seeds=(0, 1)).root)
    board = load_leaderboard(real_store(tmp_path / "b", real_labels, seeds=(0, 1), extra=[("m", 2)]).root)
    ens = {r["model"]: r for r in board.to_records() if r["kind"] == "ensemble"}
    assert ens and all(r["seeds"] == 2 for r in ens.values())
    before = {r["model"]: r for r in base.to_records() if r["kind"] == "ensemble"}
    assert {m: r["acc_mean"] for m, r in ens.items()} == {m: r["acc_mean"] for m, r in before.items()}
    text = board.to_markdown()
    assert "ensembles of seeds 0, 1, from the models with a run of each; left out: seed 2 (runs of m only)" in text
    assert row(board, "m")["seeds"] == 3  # the model's own row keeps its third seed


def test_a_model_with_one_seed_so_far_waits_outside_the_ensembles_instead_of_cutting_them_to_one_seed(
        tmp_path, real_labels, monkeypatch, real_data_dir):
    """Mid-sweep, a new model has landed its seed 0 only: the ensembles keep every seed, without it, until
    its other seeds land, and the footnote says so."""
    monkeypatch.setenv("BLOODBENCH_DATA_DIR", str(real_data_dir))
    base = load_leaderboard(real_store(tmp_path / "a", real_labels, seeds=(0, 1)).root)
    board = load_leaderboard(real_store(tmp_path / "b", real_labels, seeds=(0, 1), extra=[("o", 0)]).root)
    ens = {r["model"]: r for r in board.to_records() if r["kind"] == "ensemble"}
    before = {r["model"]: r for r in base.to_records() if r["kind"] == "ensemble"}
    assert ens and all(r["seeds"] == 2 for r in ens.values())
    assert not any("-o-" in m or m.startswith("o-") for r in ens.values() for m in r["members"])
    assert {m: r["acc_mean"] for m, r in ens.items()} == {m: r["acc_mean"] for m, r in before.items()}
    assert "ensembles of seeds 0, 1, from the models with a run of each; left out: o (seed 0 only)" in board.to_markdown()
    assert row(board, "o")["seeds"] == 1


# -- item 4: files and paths ---------------------------------------------------------------------
def test_report_never_writes_outside_out(store, tmp_path, capsys):
    evil = "../../../pwned_model"
    rec = train_record("m", 4, 0.95)
    rec.update(model=evil, run_id="pwned")
    write_store(store, [rec])
    out = tmp_path / "a" / "b" / "c" / "out"
    rc, _, err = run_cli(capsys, "report", "--results", store, "--out", out)
    assert rc == 0 and "model '../../../pwned_model' is not registered" in err
    plugin_model(evil)  # even a registered name with a path in it stays a file name under --out
    rc, _, err = run_cli(capsys, "report", "--results", store, "--out", out)
    assert rc == 0 and "Traceback" not in err
    written = {p for p in tmp_path.rglob("*") if p.is_file()} - {p for p in store.rglob("*")}
    assert written and all(p.is_relative_to(out) for p in written)
    assert [p.name for p in (out / "models").glob("*pwned_model.md")] == ["--..-..-pwned_model.md"]


@pytest.mark.parametrize("inside", ["record", "folder", "root"])
def test_leaderboard_output_inside_the_store_is_refused(store, capsys, inside):
    record = next((store / "train").glob("m-*s0-*/record.json"))
    before = record.read_bytes()
    target = {"record": record, "folder": store / "train" / "board.md", "root": store / "board.md"}[inside]
    rc, out, err = run_cli(capsys, "leaderboard", "--results", store, "-o", target)
    assert rc == 2 and err.count("\n") == 1 and "is inside the results store" in err
    assert record.read_bytes() == before and not (store / "board.md").exists()
    rc, _, err = run_cli(capsys, "report", "--results", store, "--out", store / "rep")
    assert rc == 2 and "is inside the results store" in err and not (store / "rep").exists()


@pytest.mark.parametrize("where", ["train/fifo/record.json", "profile/fifo.json"])
def test_a_fifo_named_json_is_never_read(store, capsys, where):
    path = store / where
    path.parent.mkdir(exist_ok=True)
    os.mkfifo(path)
    rc, out, err = run_cli(capsys, "leaderboard", "--results", store)  # would block for good on open()
    assert rc == 0 and "| m" in out and err.count("\n") == 1 and f"{path}: it is not a regular file" in err


def test_a_fifo_as_benchmark_json_is_one_error(store, tmp_path, capsys):
    os.mkfifo(tmp_path / "b.json")
    rc, _, err = run_cli(capsys, "leaderboard", "--results", store, "--benchmark-json", tmp_path / "b.json")
    assert rc == 2 and err == f"error: benchmark JSON {tmp_path / 'b.json'} is not a regular file\n"


# -- item 7: caches and benchmark JSON -------------------------------------------------------------
GOOD_ROW = {"name": "baseline_cnn", "family": "cnn", "params": 1, "macs": 2, "flops": 4, "description": "d",
            "origin": "o"}


@pytest.mark.parametrize("rows", [[], [{"name": "x"}], [{**GOOD_ROW, "macs": "many"}], [{**GOOD_ROW, "params": -1}],
                                  [{**GOOD_ROW, "macs": math.inf}], "rows", None, [[1, 2]]])
def test_a_cost_cache_with_the_right_key_but_bad_rows_is_a_miss(tmp_path, capsys, monkeypatch, rows):
    from bloodbench.commands import models as models_cmd
    from bloodbench.models import get_model_info

    monkeypatch.setenv("BLOODBENCH_CACHE_DIR", str(tmp_path / "cache"))  # not the session's: its rows are made up

    monkeypatch.setattr(models_cmd, "compute_model_rows", lambda *a: [GOOD_ROW])
    key = cache.registry_key(28, 3, 8)
    path = cache.cache_dir() / cache.COSTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": key, "rows": rows}))
    rc, out, err = run_cli(capsys, "models", "--format", "json")
    recipe = dict(get_model_info("baseline_cnn").recipe)  # read from the registry, never cached
    assert rc == 0 and err == "" and strict_loads(out) == [{**GOOD_ROW, "plugin": None, "recipe": recipe}]
    assert json.loads(path.read_text())["rows"] == [GOOD_ROW]


@pytest.mark.parametrize("content", [[1, 2], "text", None, 3])
def test_md5_verdicts_that_are_not_an_object_are_rebuilt(tmp_path, monkeypatch, real_data_dir, content):
    from bloodbench.data import dataset_info, medmnist_data

    monkeypatch.setenv("BLOODBENCH_CACHE_DIR", str(tmp_path / "cache"))

    path = medmnist_data._cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))
    assert medmnist_data.verify_md5(real_data_dir / "bloodmnist.npz", dataset_info("bloodmnist", 28).md5) == "ok"
    assert isinstance(json.loads(path.read_text()), dict)  # rebuilt with the verdict


@pytest.mark.parametrize("change, why", [
    ({"images_per_s": math.inf}, "images_per_s inf, not a finite number > 0"),
    ({"images_per_s": -100}, "images_per_s -100, not a finite number > 0"),
    ({"p50_ms": 0}, "p50_ms 0, not a finite number > 0"),
    ({"macs": -1}, "macs -1, not a finite number >= 0"),
    ({"model": "nobody"}, "model 'nobody' is not registered"),
    ({"model": "m "}, "model 'm ' is not registered"),
    ({"device": "tpu"}, "device 'tpu' is not cpu or cuda"),
])
def test_a_benchmark_entry_with_a_bad_figure_or_model_is_left_out_with_a_warning(store, tmp_path, capsys, change, why):
    good = benchmark_entry("m", batch_size=64, p50=20.0, images_per_s=130, macs=21_000_000, device="cpu")
    bad = benchmark_entry("m", batch_size=256, p50=20.0, images_per_s=130, macs=21_000_000, device="cpu")
    bad["extra_info"].update(change)
    path = write_benchmark_json(tmp_path / "b.json", [good, bad])
    before = load_leaderboard(store).to_json()
    capsys.readouterr()
    rc, out, err = run_cli(capsys, "leaderboard", "--results", store, "--benchmark-json", path, "--format", "json")
    assert rc == 0 and err.count("\n") == 1 and f"left out 1 of 2 entries of {path}" in err and why in err
    assert strict_loads(out) == strict_loads(before)  # the profile record's figures stand


@pytest.mark.parametrize("key", ["machine_info", "commit_info"])
def test_a_benchmark_file_whose_blocks_are_not_objects_is_one_error(store, tmp_path, capsys, key):
    path = write_benchmark_json(tmp_path / "b.json", [])
    data = json.loads(path.read_text())
    data[key] = [1]
    path.write_text(json.dumps(data))
    for command in (["leaderboard"], ["report", "--out", tmp_path / "out"]):
        rc, _, err = run_cli(capsys, *command, "--results", store, "--benchmark-json", path)
        assert rc == 2 and err == f"error: {path} is not a pytest-benchmark JSON file ({key} is not an object)\n"


def test_a_cpu_files_entry_is_never_published_under_cuda(store, tmp_path, capsys):
    entry = benchmark_entry("m", batch_size=1, p50=0.5, images_per_s=2000, macs=21_000_000, device="cuda")
    path = write_benchmark_json(tmp_path / "b.json", [entry])
    data = json.loads(path.read_text())
    data["machine_info"].update(gpu=None, cuda=None, bb_device="cpu")  # made on a machine without a GPU
    path.write_text(json.dumps(data))
    rc, out, err = run_cli(capsys, "leaderboard", "--results", store, "--benchmark-json", path, "--device", "cuda")
    assert rc == 2 and out == "" and "a cuda entry in a file made without a GPU" in err
    assert "no profile records on 'cuda'" in err
