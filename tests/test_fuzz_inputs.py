"""Fuzz (issue 24): seeded random mutations of real committed records, prediction files and benchmark
entries, fed to ``leaderboard`` and ``report`` in a copy of the store.

Every mutation makes its file invalid. Then: no traceback; an error is one ``error:`` line; every figure
shown is in its valid range and the JSON is strict; and no published row changes: the table is the
one without the mutated file (or entry), since an invalid file is skipped with a warning, or the
command refuses with one line naming it.
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from bloodbench.cli import main
from bloodbench.config import TrainConfig
from bloodbench.store.predictions import load_predictions, save_predictions

REPO_RESULTS = __import__("pathlib").Path(__file__).resolve().parents[1] / "reports" / "results"
MODELS = ("baseline_cnn", "encoder_cnn")
N_MUTATIONS = 28
BAD_NUMBERS = [math.nan, math.inf, -math.inf, -1, -1e9, "12", [], {}, True]
UNIT = {"acc_mean", "acc_std", "f1_macro_mean", "f1_macro_std", "auc_mean", "auc_std"}
NON_NEGATIVE = {"train_seconds_mean", "epochs_mean", "params", "macs", "flops", "latency_p50_ms", "latency_p90_ms",
                "latency_p99_ms", "throughput", "throughput_batch_size", "peak_memory_mb", "train_throughput", "seeds"}


def _strict(text: str):
    def refuse(name):
        raise AssertionError(f"{name} in the JSON output")
    return json.loads(text, parse_constant=refuse)


def _bench_entry(model: str, kind: str, batch: int, p50: float, ips: float, machine: str) -> dict:
    return {"name": f"test_{kind}[{model}-bs{batch}]", "stats": {"median": p50 / 1e3},
            "extra_info": {"kind": kind, "model": model, "dataset": "bloodmnist", "size": 28, "in_channels": 3,
                           "num_classes": 8, "device": "cpu", "device_name": machine, "precision": "fp32",
                           "batch_size": batch, "params": 400_000, "macs": 12_000_000, "flops": 24_000_000,
                           "p50_ms": p50, "p90_ms": p50 * 1.1, "p99_ms": p50 * 1.2, "images_per_s": ips}}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A copy of part of the committed store (two models' runs, one model's CPU profile) and a
    benchmark file that gives the other model's cost."""
    root = tmp_path_factory.mktemp("fuzz") / "pristine"
    for model in MODELS:
        for run in sorted((REPO_RESULTS / "train").glob(f"{model}-*")):
            shutil.copytree(run, root / "train" / run.name, ignore=shutil.ignore_patterns("*.pt"))
    (root / "profile").mkdir()
    path = sorted((REPO_RESULTS / "profile").glob("baseline_cnn-*-cpu-fp32-*.json"))[0]
    shutil.copy(path, root / "profile" / path.name)
    machine = json.loads(path.read_text())["device_name"]  # the benchmark joins that machine's table
    bench = {"machine_info": {"torch": "2", "torch_threads": 2, "bb_device": "cpu", "bb_full": False,
                              "git_commit": "x", "gpu": None},
             "datetime": "2026-01-01T00:00:00", "benchmarks": [
                 _bench_entry("encoder_cnn", "inference", 1, 2.0, 500.0, machine),
                 _bench_entry("encoder_cnn", "inference", 64, 40.0, 1600.0, machine),
                 _bench_entry("encoder_cnn", "train_step", 32, 80.0, 400.0, machine)]}
    (root.parent / "bench.json").write_text(json.dumps(bench))
    return root


def _leaderboard(capsys, root, bench) -> tuple[int, str, str]:
    rc = main(["leaderboard", "--results", str(root), "--benchmark-json", str(bench), "--format", "json"])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _numeric_leaves(node, path=()):
    """Paths of the numbers in a record, outside its provenance blocks (config, env, model_info)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if not path and k in ("config", "env", "model_info", "backend"):
                continue
            yield from _numeric_leaves(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _numeric_leaves(v, path + (i,))
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield path


def _mutate_record(rng, rec: dict, kind: str) -> str:
    """One change that makes ``rec`` invalid, described; None when this record has no such field."""
    checked = {"train": ["test.acc", "test.auc", "test.f1_macro", "train_seconds", "epochs_run", "params", "seed",
                         "size", "val.acc", "test_tta.acc"],
               "profile": ["latency.p50_ms", "latency.p90_ms", "latency.p99_ms", "macs", "flops", "params",
                           "peak_memory_mb", "peak_throughput", "size"]}[kind]
    how = rng.choice(["field", "field", "field", "name", "delete", "leaf"])
    if how == "name":
        rec["model"] = str(rng.choice(["", "baseline_cnn ", "../../../pwned_model", "no_such_model", "a\tb"]))
        return f"model {rec['model']!r}"
    if how == "delete":
        key = str(rng.choice(["run_id", "model", "dataset", "size"] + (["seed", "test"] if kind == "train" else [])))
        rec.pop(key, None)
        return f"no {key}"
    if how == "leaf":  # any number at all, then a value no field accepts where it is checked
        leaves = list(_numeric_leaves(rec))
        path = leaves[rng.integers(len(leaves))]
        value = [math.nan, math.inf, -1e9][rng.integers(3)]
    else:
        path = tuple(str(rng.choice(checked)).split("."))
        value = BAD_NUMBERS[rng.integers(len(BAD_NUMBERS))]
    node = rec
    for key in path[:-1]:
        if isinstance(node, dict) and key not in node:
            return "nothing"
        node = node[key]
    if isinstance(node, dict) and path[-1] not in node:
        return "nothing"
    if path[-1] in ("acc", "auc", "f1_macro") and isinstance(value, (int, float)) and value == -1:
        value = 1.5  # out of [0, 1] the other way
    node[path[-1]] = value
    return f"{'.'.join(map(str, path))} = {value!r}"


def _mutate_predictions(rng, path) -> str:
    y, s = load_predictions(path)
    how = str(rng.choice(["nan", "negative", "above one", "row dropped", "class added", "labels shuffled",
                          "one label changed", "torn", "deleted"]))
    i = int(rng.integers(len(y)))
    if how == "nan":
        s[i, 0] = np.nan
    elif how == "negative":
        s[i, 1] = -0.5
    elif how == "above one":
        s[i, 2] = 3.0
    elif how == "row dropped":
        y, s = np.delete(y, i), np.delete(s, i, axis=0)
    elif how == "class added":
        s = np.concatenate([s, np.zeros((len(s), 1), s.dtype)], axis=1)
    elif how == "labels shuffled":
        y = rng.permutation(y)
    elif how == "one label changed":
        y[i] = (y[i] + 1) % s.shape[1]
    if how == "torn":
        path.write_bytes(path.read_bytes()[:200])
    elif how == "deleted":
        path.unlink()
    else:
        save_predictions(path, y, s)
    return how


def _check_ranges(rows: list[dict]) -> None:
    for r in rows:
        for col in UNIT:
            assert r[col] is None or 0 <= r[col] <= 1, (r["model"], col, r[col])
        for col in NON_NEGATIVE:
            assert r[col] is None or (math.isfinite(r[col]) and r[col] >= 0), (r["model"], col, r[col])
        assert r["latency_p50_ms"] is None or r["latency_p50_ms"] > 0


def test_random_invalid_inputs_never_move_a_published_row(pristine, tmp_path, capsys, monkeypatch, real_data_dir):
    monkeypatch.setenv("BLOODBENCH_DATA_DIR", str(real_data_dir))
    bench = pristine.parent / "bench.json"
    rc, out, err = _leaderboard(capsys, pristine, bench)
    assert rc == 0 and err == "", err
    baseline = _strict(out)
    _check_ranges(baseline)
    assert {r["kind"] for r in baseline} == {"model", "ensemble", "tta"}  # every kind of row is at stake
    rng = np.random.default_rng(24)
    records = sorted(pristine.glob("train/*/record.json")) + sorted(pristine.glob("profile/*.json"))
    npzs = sorted(pristine.glob("train/*/*_predictions*.npz"))
    seen = {"skipped": 0, "refused": 0}
    for trial in range(N_MUTATIONS):
        work = tmp_path / f"t{trial}"
        shutil.copytree(pristine, work / "r")
        shutil.copy(bench, work / "bench.json")
        target = str(rng.choice(["record", "record", "predictions", "benchmark"]))
        if target == "record":
            rel = records[rng.integers(len(records))].relative_to(pristine)
            path = work / "r" / rel
            rec = json.loads(path.read_text())
            what = _mutate_record(rng, rec, "train" if rel.parts[0] == "train" else "profile")
            if what == "nothing":
                continue
            path.write_text(json.dumps(rec))
            without = work / "without"
            shutil.copytree(pristine, without)
            (without / rel).unlink()  # the store less that record: what the table must then be
        elif target == "predictions":
            rel = npzs[rng.integers(len(npzs))].relative_to(pristine)
            path = work / "r" / rel
            what = _mutate_predictions(rng, path)
            without = None  # a damaged file is refused, never averaged
        else:
            data = json.loads(bench.read_text())
            i = int(rng.integers(len(data["benchmarks"])))
            key = str(rng.choice(["images_per_s", "p50_ms", "macs", "params", "model", "device"]))
            value = {"model": "no_such_model", "device": "tpu"}.get(key, BAD_NUMBERS[rng.integers(5)])
            data["benchmarks"][i]["extra_info"][key] = value
            (work / "bench.json").write_text(json.dumps(data))
            what, path = f"benchmarks[{i}].{key} = {value!r}", work / "bench.json"
            data["benchmarks"].pop(i)
            without = work / "without"
            shutil.copytree(pristine, without)
            (work / "bench-without").mkdir()
            (work / "bench-without" / "bench.json").write_text(json.dumps(data))  # same name: same cost_source
        rc, out, err = _leaderboard(capsys, work / "r", work / "bench.json")
        context = f"trial {trial}: {target} {path.name}: {what}\n{err}"
        assert "Traceback" not in err and rc in (0, 2), context
        if rc == 2:
            seen["refused"] += 1
            assert out == "" and err.count("\n") == 1 and err.startswith("error: "), context
            assert target == "predictions" and str(path) in err, context  # only a damaged file refuses, named
            continue
        rows = _strict(out)
        _check_ranges(rows)
        assert all(line.startswith("warning: ") for line in err.splitlines()), context
        if not err:  # a number no reader uses (a file no row reads, an epoch's loss): nothing moved
            assert rows == baseline, context
            continue
        seen["skipped"] += 1
        assert without is not None, context  # a damaged prediction file is never skipped quietly
        bench_without = work / "bench-without" / "bench.json" if target == "benchmark" else bench
        rc2, expected, _ = _leaderboard(capsys, without, bench_without)
        assert rc2 == 0 and rows == _strict(expected), context
    assert seen["refused"] and seen["skipped"]  # both ways an invalid file can end were exercised


def test_report_on_invalid_inputs_writes_only_valid_figures(pristine, tmp_path, capsys, monkeypatch, real_data_dir):
    """Invalid inputs through ``report``: no traceback; the README is the one without the invalid record,
    profile and benchmark entry; a damaged prediction file is one error line naming it."""
    monkeypatch.setenv("BLOODBENCH_DATA_DIR", str(real_data_dir))
    root = tmp_path / "r"
    shutil.copytree(pristine, root)
    record = sorted(root.glob("train/encoder_cnn-*/record.json"))[0]
    rec = json.loads(record.read_text())
    rec["test"]["acc"] = math.inf
    record.write_text(json.dumps(rec))
    profile = sorted(root.glob("profile/*.json"))[0]
    prof = json.loads(profile.read_text())
    prof["latency"]["p50_ms"] = -1
    profile.write_text(json.dumps(prof))
    data = json.loads((pristine.parent / "bench.json").read_text())
    data["benchmarks"][1]["extra_info"]["images_per_s"] = math.inf
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "bench.json").write_text(json.dumps(data))
    capsys.readouterr()
    argv = ["report", "--results", str(root), "--benchmark-json"]
    assert main([*argv, str(tmp_path / "bad" / "bench.json"), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("warning: skipped") == 2 and err.count("left out 1 of 3") == 1
    record.unlink()
    profile.unlink()
    data["benchmarks"].pop(1)
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "bench.json").write_text(json.dumps(data))
    assert main([*argv, str(tmp_path / "good" / "bench.json"), "--out", str(tmp_path / "without")]) == 0
    assert (tmp_path / "out" / "README.md").read_text() == (tmp_path / "without" / "README.md").read_text()

    shown = TrainConfig.build("baseline_cnn", seed=0, device="cpu").run_id  # of the recipe the table shows
    damaged = root / "train" / shown / "test_predictions_tta.npz"
    y, s = load_predictions(damaged)
    s[0, 0] = np.nan
    save_predictions(damaged, y, s)
    capsys.readouterr()
    assert main([*argv, str(tmp_path / "good" / "bench.json"), "--out", str(tmp_path / "out2")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {damaged}: y_score holds NaN")
