"""``bloodbench explain``'s work: find the run, Grad-CAM its checkpoint, analyse its errors.

The output names are fixed (``OUTPUT_FILES``) because the report links to them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bloodbench.errors import BloodbenchError
from bloodbench.explain import plots
from bloodbench.explain.calibration import DEFAULT_BINS, reliability_bins
from bloodbench.explain.confusions import (
    confused_pairs,
    load_predictions,
    match_class,
    per_class_errors,
    select_examples,
)
from bloodbench.explain.files import OUTPUT_FILES
from bloodbench.explain.gradcam import (
    coarse_map_note,
    default_target_layer,
    feature_map_size,
    grad_cam,
    resolve_target_layer,
)
from bloodbench.formatting import md_table, short_name
from bloodbench.hints import require_finished_runs, retrain_hint
from bloodbench.store.fsutil import atomic_write_text, output_dir
from bloodbench.store.predictions import PREDICTION_FILES
from bloodbench.store.results import ResultsStore

#: Where ``explain`` writes without ``--out``: a working folder, never the published ``reports/explain``
#: (the report links what is there; publish a run's files with ``--out reports/explain/MODEL``).
DEFAULT_OUT = Path("explain-out")


def find_train_run(store: ResultsStore, model: str, dataset: str = "bloodmnist", size: int = 28,
                   seed: int | None = None) -> dict[str, Any]:
    """The finished train record for (model, dataset, size, seed): newest if several,
    lowest seed if ``seed`` is None (so repeated calls pick the same run)."""
    runs = require_finished_runs(store, model, dataset, size, seed)
    low = min(int(r.get("seed", 0)) for r in runs) if seed is None else seed
    runs = [r for r in runs if int(r.get("seed", 0)) == low]
    return max(runs, key=lambda r: (str(r.get("created_at", "")), str(r.get("written_at", "")), r["run_id"]))


def errors_markdown(model: str, record: dict, y_true: np.ndarray, y_score: np.ndarray, class_names,
                    bins, layer: str | None, fmap: tuple[int, int] | None, n_bins: int, class_filter: str | None,
                    note: str | None = None, earlier_gradcam: bool = False) -> str:
    """errors.md: ECE, per-class error rates, confused pairs, and links to the PNGs.

    ``earlier_gradcam``: no Grad-CAM in this pass, but grids from an earlier one sit in the
    output folder; the text says so rather than "not computed" next to them.
    """
    pred = y_score.argmax(1)
    n, n_wrong = len(y_true), int((pred != y_true).sum())
    plugin = (record.get("model_info") or {}).get("plugin")
    lines = [
        f"# Error analysis: {model}",
        "",
        f"Run `{record['run_id']}` ({record.get('dataset')} {record.get('size')}px, seed {record.get('seed')}); "
        f"from its saved test predictions (`test_predictions.npz`, N = {n}), no re-inference."
        + (f" A plug-in model, from {plugin}, not part of bloodbench." if plugin else ""),
        "",
        f"- test accuracy: **{1 - n_wrong / n:.4f}** ({n_wrong} of {n} misclassified)",
        f"- expected calibration error (ECE, {n_bins} equal-width bins of top-label confidence): "
        f"**{bins.ece:.4f}**",
        f"- mean top-label confidence: {float(y_score.max(1).mean()):.4f}",
        f"- Grad-CAM target layer: `{layer}`, a {fmap[0]}x{fmap[1]} feature map upsampled to "
        f"{record.get('size')}x{record.get('size')} (maps for the predicted class)" if layer and fmap else
        "- Grad-CAM: the grids below are from an earlier pass with the run's checkpoint, not redrawn in this one "
        "(`--no-gradcam`); each grid's title names its target layer" if earlier_gradcam else
        "- Grad-CAM: not computed in this pass (`--no-gradcam`, the run's checkpoint is not needed for the rest)",
    ]
    if note:
        lines.append(f"  - note: {note}")
    if class_filter:
        lines.append(f"- example grids restricted to true class **{short_name(class_filter, 40)}**")
    lines += ["", "## Per-class error rates", ""]
    names = [short_name(c, 40) for c in class_names]  # the long parenthetical would triple the table width
    pc = per_class_errors(y_true, y_score, names)
    lines.append(md_table([[r["class"], r["support"], r["errors"],
                            "n/a" if np.isnan(r["error_rate"]) else f"{r['error_rate']:.3f}"] for r in pc],
                          ["true class", "support", "errors", "error rate"], numeric_from=1))
    lines += ["", "## Most-confused class pairs", ""]
    pairs = confused_pairs(y_true, y_score, names, top=10)
    if pairs:
        lines.append(md_table([[r["true"], r["predicted"], r["count"], f"{r['share']:.3f}"] for r in pairs],
                              ["true", "predicted", "count", "share of true class"], numeric_from=2))
    else:
        lines.append("No misclassifications.")
    lines += ["", "## Calibration", "", f"ECE = {bins.ece:.4f}", "",
              "![reliability diagram](reliability.png)", ""]
    rows = [[f"({lo:.3f}, {hi:.3f}]", int(c), f"{a:.3f}", f"{cf:.3f}", f"{abs(a - cf):.3f}"]
            for lo, hi, c, a, cf in zip(bins.edges[:-1], bins.edges[1:], bins.count, bins.accuracy, bins.confidence)
            if c > 0]
    lines.append(md_table(rows, ["confidence bin", "images", "accuracy", "mean confidence", "abs gap"],
                          numeric_from=1))
    gradcam = ["- [Grad-CAM, most confident correct predictions](gradcam_correct.png)",
               "- [Grad-CAM, most confident wrong predictions](gradcam_wrong.png)"] if layer or earlier_gradcam else []
    lines += ["", "## Figures", "", *gradcam,
              "- [Misclassified test images](misclassified.png)",
              "- [Reliability diagram](reliability.png)", ""]
    if layer or earlier_gradcam:
        lines += ["![Grad-CAM correct](gradcam_correct.png)", "", "![Grad-CAM wrong](gradcam_wrong.png)", ""]
    lines += ["![misclassified](misclassified.png)", ""]
    return "\n".join(lines)


def explain(model: str, *, seed: int | None = None, n: int = 16, class_name: str | None = None,
            layer: str | None = None, dataset: str = "bloodmnist", size: int = 28,
            data_dir: str | os.PathLike | None = None, verify: bool = True,
            results: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
            n_bins: int = DEFAULT_BINS, device: str = "cpu", gradcam: bool = True) -> dict[str, Any]:
    """Write the five explain outputs for one finished run; returns paths and headline numbers.

    ``gradcam=False`` writes only what the saved test predictions give (error analysis,
    misclassified grid, calibration), so a run whose checkpoint is gone (checkpoints stay out
    of git) can still have its error analysis regenerated.
    """
    from bloodbench.data import load_dataset
    from bloodbench.models import get_model_info
    from bloodbench.train.checkpoint import model_from_checkpoint

    if n < 1:
        raise BloodbenchError(f"--n must be >= 1 (got {n})")
    if n_bins < 1:
        raise BloodbenchError(f"--bins must be >= 1 (got {n_bins})")
    info = get_model_info(model)
    store = ResultsStore(results)
    record = find_train_run(store, model, dataset, size, seed)
    run_dir = store.run_dir(record["run_id"])
    hint = retrain_hint(record, store.root)
    ckpt_path, pred_path = run_dir / "best.pt", run_dir / PREDICTION_FILES["test_predictions"]
    if gradcam and not ckpt_path.is_file():
        raise BloodbenchError(f"run {record['run_id']} has no checkpoint {ckpt_path} (checkpoints stay out of git): "
                              f"recreate it with {hint}, or pass --no-gradcam for the rest")
    if not pred_path.is_file():
        raise BloodbenchError(f"run {record['run_id']} has no {pred_path.name} in {run_dir}: recreate it with {hint}")

    y_true, y_score = load_predictions(pred_path)
    data = load_dataset(dataset, size, data_dir, verify=verify, splits=("test",))
    test = data["test"]
    if len(test) != len(y_true) or not np.array_equal(test.labels.numpy(), y_true):
        raise BloodbenchError(f"{pred_path} does not match the {dataset} {size}px test split "
                              f"({len(y_true)} vs {len(test)} images or different labels): recreate it with {hint}")
    class_names = list((record.get("test") or {}).get("class_names") or data.info.class_names)
    if y_score.shape[1] != len(class_names):
        raise BloodbenchError(f"{pred_path} has {y_score.shape[1]} classes but {dataset} has {len(class_names)}")
    class_idx = None if class_name is None else match_class(class_name, class_names)

    layer_name = fmap = note = None
    if gradcam:
        net, normalizer, ckpt = model_from_checkpoint(ckpt_path, device=device)
        if int(ckpt["num_classes"]) != len(class_names):
            raise BloodbenchError(f"{ckpt_path} predicts {ckpt['num_classes']} classes, "
                                  f"{dataset} has {len(class_names)}")
        input_shape = (1, int(ckpt["in_channels"]), size, size)
        if layer is None:
            layer_name, fmap, note = default_target_layer(net, info.target_layer, model, input_shape)
        else:
            layer_name, _ = resolve_target_layer(net, layer, model, input_shape)
            fmap = feature_map_size(net, layer_name, input_shape)
            note = coarse_map_note(net, layer_name, fmap, input_shape)

    out_dir = output_dir(out if out else DEFAULT_OUT / model)
    pred, conf = y_score.argmax(1), y_score.max(1)
    cname = None if class_idx is None else class_names[class_idx]
    suffix = "" if cname is None else f", true class {short_name(cname)}"
    paths: dict[str, Path] = {}
    for correct, fname in ((True, "gradcam_correct.png"), (False, "gradcam_wrong.png")) if gradcam else ():
        idx = select_examples(y_true, y_score, correct, n, class_idx)
        imgs = test.images[torch.as_tensor(idx, dtype=torch.long)]
        if len(idx):
            x = normalizer(imgs.to(device))
            cams, _ = grad_cam(net, x, layer_name, target=torch.as_tensor(pred[idx], dtype=torch.long))
            cams = cams.numpy()
        else:
            cams = np.zeros((0, size, size), np.float32)
        kind = "correct" if correct else "wrong"
        title = (f"{model}: Grad-CAM on `{layer_name}` for the predicted class, "
                 f"{len(idx)} most confident {kind} test prediction{'' if len(idx) == 1 else 's'}{suffix}"
                 if len(idx) else f"{model}: Grad-CAM, no {kind} test predictions{suffix}")
        paths[fname] = plots.gradcam_grid(out_dir / fname, imgs.numpy(), cams, y_true[idx], pred[idx], conf[idx],
                                          class_names, title, indices=idx)

    wrong_idx = select_examples(y_true, y_score, False, max(n, 32), class_idx)
    paths["misclassified.png"] = plots.misclassified_grid(
        out_dir / "misclassified.png", test.images[torch.as_tensor(wrong_idx, dtype=torch.long)].numpy(),
        y_true[wrong_idx], pred[wrong_idx], conf[wrong_idx], class_names,
        f"{model}: {len(wrong_idx)} most confident misclassified test images{suffix} "
        f"(true → predicted, confidence)" if len(wrong_idx) else f"{model}: misclassified test images{suffix}",
        indices=wrong_idx)

    bins = reliability_bins(y_true, y_score, n_bins)
    paths["reliability.png"] = plots.reliability_diagram(out_dir / "reliability.png", bins,
                                                         f"{model} reliability diagram ({dataset} test)")
    earlier = not gradcam and all((out_dir / f).is_file() for f in ("gradcam_correct.png", "gradcam_wrong.png"))
    md = errors_markdown(model, record, y_true, y_score, class_names, bins, layer_name, fmap, n_bins, cname, note,
                         earlier)
    atomic_write_text(out_dir / "errors.md", md)
    paths["errors.md"] = out_dir / "errors.md"
    return {"run_id": record["run_id"], "out_dir": out_dir, "layer": layer_name, "note": note, "ece": bins.ece,
            "accuracy": float((pred == y_true).mean()), "n_wrong": int((pred != y_true).sum()),
            "paths": {k: paths[k] for k in OUTPUT_FILES if k in paths}}
