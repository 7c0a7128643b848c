"""``bloodbench weights publish``: the weights of the models on the published Pareto front (MACs).

For each model row on the leaderboard's MACs front, the seed with the best **validation**
accuracy among the seeds that row averages; its ``best.pt`` state_dict goes out as safetensors
into ``bloodbench/models/published/`` with a manifest entry (sha256, size, run, recipe, val and
test accuracy), if the file is at most ``MAX_PUBLISHED_BYTES``. Before anything is written the
weights must reproduce the run's saved test predictions (the leaderboard's) to ``ATOL``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bloodbench.errors import BloodbenchError
from bloodbench.models.weights import (MANIFEST, MAX_PUBLISHED_BYTES, PUBLISHED_DIR, load_weights, read_manifest,
                                       safetensors_bytes, sha256_bytes)
from bloodbench.store.fsutil import atomic_write_bytes, atomic_write_text

#: the largest |reloaded − saved| test probability accepted
ATOL = 1e-5
#: the config fields a manifest's recipe leaves out (they name the run, not how it trained)
_NOT_RECIPE = ("model", "dataset", "size", "seed", "device", "limit_train")


@dataclass
class Outcome:
    model: str
    run_id: str | None
    status: str  # "published" | "too large" | "no checkpoint"
    detail: str = ""


def best_on_val(runs: list[dict]) -> dict:
    """The run with the best validation accuracy (then the lowest seed)."""
    return min(runs, key=lambda r: (-float((r.get("val") or {}).get("acc") or 0.0), int(r.get("seed") or 0)))


def front_runs(results: str | os.PathLike | None, dataset: str, size: int) -> tuple[Path, dict[str, list[dict]]]:
    """(results root, {model on the MACs front: the finished records its leaderboard row averages})."""
    from bloodbench.leaderboard import assemble_leaderboard
    from bloodbench.leaderboard.frames import train_frame
    from bloodbench.store.results import read_results

    root, train, profiles = read_results(results)
    board = assemble_leaderboard(train, profiles, dataset=dataset, size=size, results_root=root)
    rows = board.rows
    front = rows[(rows["kind"] == "model") & rows["pareto_macs"].fillna(False).astype(bool)]
    picked = train_frame(train)
    by_id = {r["run_id"]: r for r in train}
    out = {}
    for model in sorted(front["model"]):
        ids = picked[(picked["model"] == model) & (picked["dataset"] == dataset) & (picked["size"] == size)]["run_id"]
        out[model] = [by_id[i] for i in ids]
    return root, out


def recipe_command(record: dict) -> str:
    """The `bloodbench train` command that trains ``record``'s run again (same recipe, same run id)."""
    from bloodbench.config import recipe_cli_args
    from bloodbench.hints import train_hint

    config = {**(record.get("config") or {}), "model": record["model"]}
    try:
        args, _ = recipe_cli_args(config)  # fields no option sets: the manifest's recipe lists every field
    except BloodbenchError:  # a model no longer in the registry: no recipe to compare with
        args = []
    return train_hint(record["model"], record.get("seed"), record["dataset"], int(record["size"]), None,
                      tuple(args)).strip("`")


def _entry_meta(rec: dict, weights) -> dict[str, Any]:
    config = rec.get("config") or {}
    return {
        "model": rec["model"], "run_id": rec["run_id"], "seed": rec.get("seed"), "dataset": rec["dataset"],
        "size": int(rec["size"]), "in_channels": weights.in_channels, "num_classes": weights.num_classes,
        "model_kwargs": weights.model_kwargs, "normalizer": {"mean": list(weights.mean), "std": list(weights.std)},
        "precision": config.get("precision", "fp32"), "channels_last": bool(config.get("channels_last", False)),
        "eval_batch_size": int(config.get("eval_batch_size") or 512),
        "recipe": {k: v for k, v in sorted(config.items()) if k not in _NOT_RECIPE},
        "train_command": recipe_command(rec),
        "val_acc": (rec.get("val") or {}).get("acc"), "test_acc": (rec.get("test") or {}).get("acc"),
        "test_tta_acc": (rec.get("test_tta") or {}).get("acc"), "best_epoch": rec.get("best_epoch"),
        "torch": (rec.get("env") or {}).get("torch"), "git_commit": (rec.get("env") or {}).get("git_commit"),
    }


def reproduce(rec: dict, checkpoint: Path, run_dir: Path, data_dir: str | os.PathLike | None) -> float:
    """max |p − saved| of the checkpoint's test probabilities against the run's saved ones."""
    from bloodbench.data import load_dataset
    from bloodbench.store.predictions import PREDICTION_FILES, load_predictions, prediction_path
    from bloodbench.train.trained import load_trained, probabilities

    saved_path = prediction_path(run_dir, rec, "test_predictions") or run_dir / PREDICTION_FILES["test_predictions"]
    _, saved = load_predictions(saved_path)
    test = load_dataset(rec["dataset"], int(rec["size"]), data_dir, splits=("test",))["test"]
    probs, _ = probabilities(load_trained(rec["model"], checkpoint), test.images)
    if probs.shape != saved.shape:
        return float("inf")
    return float(np.abs(probs - saved).max())


def publish_weights(results: str | os.PathLike | None = None, checkpoints: str | os.PathLike | None = None,
                    out: str | os.PathLike = PUBLISHED_DIR, data_dir: str | os.PathLike | None = None,
                    dataset: str = "bloodmnist", size: int = 28) -> list[Outcome]:
    """Publish the front's weights into ``out`` and rewrite its manifest (entries of other datasets
    or sizes kept); files no longer named by the manifest are removed."""
    out = Path(out)
    root, front = front_runs(results, dataset, size)
    ckpt_root = Path(checkpoints) if checkpoints else root
    outcomes: list[Outcome] = []
    before = read_manifest(out)
    entries = [e for e in before if (e.get("dataset"), e.get("size")) != (dataset, size)]
    for model, runs in front.items():
        rec = best_on_val(runs)
        if 4 * int(rec.get("params") or 0) > MAX_PUBLISHED_BYTES:  # fp32 parameters alone are too many bytes
            outcomes.append(Outcome(model, rec["run_id"], "too large", f"{rec['params']:,} fp32 parameters > "
                                                                        f"{MAX_PUBLISHED_BYTES / 1e6:g} MB"))
            continue
        ckpt = ckpt_root / "train" / rec["run_id"] / (rec.get("artifacts") or {}).get("best", "best.pt")
        if not ckpt.is_file():
            same = [e for e in before if e["run_id"] == rec["run_id"] and (out / e["file"]).is_file()]
            entries += same  # already published from this run: kept
            outcomes.append(Outcome(model, rec["run_id"], "published" if same else "no checkpoint",
                                    f"kept {same[0]['file']}" if same else f"{ckpt} is missing"))
            continue
        diff = reproduce(rec, ckpt, root / "train" / rec["run_id"], data_dir)
        if not diff <= ATOL:
            raise BloodbenchError(f"{ckpt} does not reproduce the saved test predictions of {rec['run_id']} "
                                  f"(max |diff| {diff:.2e} > {ATOL:g}): not the leaderboard's weights")
        w = load_weights(model, ckpt)
        meta = _entry_meta(rec, w)
        data = safetensors_bytes(w.state_dict, meta)
        if len(data) > MAX_PUBLISHED_BYTES:
            outcomes.append(Outcome(model, rec["run_id"], "too large",
                                    f"{len(data) / 1e6:.2f} MB > {MAX_PUBLISHED_BYTES / 1e6:g} MB"))
            continue
        name = f"{rec['run_id']}.safetensors"
        atomic_write_bytes(out / name, data)
        entries.append({**meta, "file": name, "sha256": sha256_bytes(data), "bytes": len(data),
                        "reproduced_max_abs_diff": diff})
        outcomes.append(Outcome(model, rec["run_id"], "published", f"{name}, {len(data) / 1e6:.2f} MB"))
    entries.sort(key=lambda e: (e["dataset"], e["size"], e["model"]))
    doc = {"about": "weights of the models on the MACs Pareto front, best-on-val seed; written by "
                    "`bloodbench weights publish`", "max_bytes": MAX_PUBLISHED_BYTES, "weights": entries}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / MANIFEST, json.dumps(doc, indent=1, sort_keys=True) + "\n")
    keep = {e["file"] for e in entries}
    for stale in out.glob("*.safetensors"):
        if stale.name not in keep:
            stale.unlink()
    return outcomes
