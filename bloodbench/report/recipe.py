"""A model card's training recipe: what each recipe in the store trained with, and which one the
leaderboard averages (the recipe with most seeds, then the newest: ``leaderboard.frames.pick_recipe``)."""

from __future__ import annotations

from dataclasses import MISSING, fields

from bloodbench.config import TrainConfig, recipe_hash
from bloodbench.formatting import fmt, md_table
from bloodbench.leaderboard import train_frame
from bloodbench.store.schema import is_finished

HEADERS = ["recipe", "seeds", "optimizer", "lr", "weight decay", "schedule", "batch size", "epochs run / budget",
           "patience", "label smoothing", "augmentation", "precision", "in the leaderboard"]


def _defaults() -> dict:
    out = {}
    for f in fields(TrainConfig):
        if f.default is not MISSING:
            out[f.name] = f.default
    return out


def _augmentation(cfg: dict) -> str:
    if not cfg.get("augment"):
        return "none"
    jitter = cfg.get("color_jitter")
    return "flips, 90° rotations" + (f", brightness/contrast jitter {jitter:g}" if jitter else "")


def _epochs(runs: list[dict], budget) -> str:
    ran = sorted(int(r["epochs_run"]) for r in runs if isinstance(r.get("epochs_run"), (int, float)))
    return f"{', '.join(map(str, ran)) or '—'} / {budget}"


def recipe_section(train_recs: list[dict]) -> list[str]:
    """Markdown lines of the "Training recipe" section of one model and dataset/size: one row per recipe of its
    finished runs (none: no lines)."""
    done = [r for r in train_recs if is_finished(r)]
    if not done:
        return []
    chosen = set(train_frame(done)["recipe"])
    by_recipe: dict[str, list[dict]] = {}
    for r in done:
        by_recipe.setdefault(recipe_hash(r.get("config") or {}), []).append(r)
    base = _defaults()
    rows = []
    for h, runs in sorted(by_recipe.items(), key=lambda kv: (kv[0] not in chosen, kv[0])):
        cfg = {**base, **(runs[-1].get("config") or {})}
        rows.append([f"`{h[:10]}`", ", ".join(str(s) for s in sorted({r.get("seed") for r in runs})),
                     cfg.get("optimizer"), fmt(cfg.get("lr"), "g"), fmt(cfg.get("weight_decay"), "g"),
                     f"{cfg.get('schedule')}, warm-up {cfg.get('warmup_epochs')} ep." if cfg.get("warmup_epochs")
                     else str(cfg.get("schedule")), cfg.get("batch_size"), _epochs(runs, cfg.get("epochs")),
                     cfg.get("patience"), fmt(cfg.get("label_smoothing"), "g"), _augmentation(cfg),
                     cfg.get("precision"), "yes" if h in chosen else "no (another recipe)"])
    return ["### Training recipe", "", md_table(rows, HEADERS), "",
            "Epochs run per seed against the epoch budget; early stopping on the monitored validation metric "
            "ends a run after `patience` epochs without improvement. The leaderboard averages one recipe per model "
            "(the one with most seeds); `bloodbench train MODEL` reruns it.", ""]
