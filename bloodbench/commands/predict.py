"""``bloodbench predict MODEL INPUT...``: classify images with trained weights, preprocessed exactly as in training."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bloodbench.commands.common import add_weights_options, trained_from_args

TOP_K = 3


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="classify PNG/JPEG images, folders of them or a MedMNIST npz",
                       description="Classify images with a trained model: the class, its probability and the "
                                   "top 3. The preprocessing is the training one (the run's normaliser, precision "
                                   "and memory format); an image of another size is resized, and the output says so.")
    p.add_argument("model")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="PNG/JPEG files, folders of them, or MedMNIST npz files")
    add_weights_options(p)
    p.add_argument("--split", default="test", help="which split of an npz input (default: test)")
    p.add_argument("--tta", action="store_true", help="also the 8-view test-time augmentation (mean over the D4 views)")
    p.add_argument("--out", default=None, metavar="FILE.csv|FILE.json", help="write the predictions there")
    p.add_argument("--format", choices=("table", "json"), default="table", help="stdout format (default: table)")
    p.set_defaults(func=cmd_predict)


def _top(probs, names: tuple[str, ...]) -> list[dict]:
    order = probs.argsort()[::-1][:TOP_K]
    return [{"class": names[i], "label": int(i), "probability": float(probs[i])} for i in order]


def prediction_rows(names: list[str], probs, tta, resized, labels, class_names: tuple[str, ...]) -> list[dict]:
    """One dict per image: class, probability, top 3 (and TTA's class and probability), resizing, label."""
    rows = []
    for i, name in enumerate(names):
        top = _top(probs[i], class_names)
        row = {"image": name, "class": top[0]["class"], "label": top[0]["label"], "probability": top[0]["probability"],
               "top3": top}
        if tta is not None:
            t = _top(tta[i], class_names)[0]
            row.update(tta_class=t["class"], tta_label=t["label"], tta_probability=t["probability"])
        if labels and labels[i] is not None:
            row["true_label"] = labels[i]
        row["resized_from"] = f"{resized[i][0]}x{resized[i][1]}" if resized[i] else None
        rows.append(row)
    return rows


def _check_out(path: Path) -> None:
    """An unusable --out is one line before any work."""
    from bloodbench.errors import BloodbenchError
    from bloodbench.store.fsutil import output_dir

    if path.suffix.lower() not in (".csv", ".json"):
        raise BloodbenchError(f"--out {path}: name a .csv or .json file")
    output_dir(path.parent)


def _write(path: Path, doc: dict) -> None:
    import pandas as pd

    from bloodbench.store.fsutil import atomic_write_text

    if path.suffix.lower() == ".json":
        atomic_write_text(path, json.dumps(doc, indent=1) + "\n")
        return
    flat = [{**{k: v for k, v in r.items() if k != "top3"},
             **{f"top{j + 1}_{key}": t[key] for j, t in enumerate(r["top3"]) for key in ("class", "probability")}}
            for r in doc["predictions"]]
    atomic_write_text(path, pd.DataFrame(flat).to_csv(index=False))


def cmd_predict(args: argparse.Namespace) -> int:
    from bloodbench.data import dataset_info
    from bloodbench.data.images import read_inputs
    from bloodbench.errors import warn
    from bloodbench.formatting import md_table, short_name
    from bloodbench.train.trained import probabilities

    if args.out:
        _check_out(Path(args.out))
    trained = trained_from_args(args)
    meta = trained.weights.meta
    info = dataset_info(meta.get("dataset") or args.dataset, int(trained.size or args.size))
    inputs = read_inputs(args.inputs, info.size, trained.in_channels, args.split)
    if inputs.n_resized:
        sizes = sorted({f"{h}x{w}" for h, w in filter(None, inputs.resized_from)})
        warn(f"{inputs.n_resized} of {len(inputs.names)} images resized to {info.size}x{info.size} "
             f"(from {', '.join(sizes)}): the model was trained on {info.size}x{info.size} images")
    probs, tta = probabilities(trained, inputs.images, args.tta)
    rows = prediction_rows(inputs.names, probs, tta, inputs.resized_from, inputs.labels, info.class_names)
    doc = {"model": args.model, "weights": trained.source, "run_id": meta.get("run_id"),
           "preprocessing": {"size": info.size, "mean": list(trained.norm.mean), "std": list(trained.norm.std),
                             "precision": trained.precision, "channels_last": trained.channels_last},
           "predictions": rows}
    if args.out:
        _write(Path(args.out), doc)
    if args.format == "json":
        print(json.dumps(doc, indent=1))
        return 0
    print(f"{args.model}: {trained.source}; {trained.precision}, images {info.size}x{info.size}")
    has_label = any("true_label" in r for r in rows)
    table = []
    for r in rows:
        cells = [r["image"], short_name(r["class"]), f"{r['probability']:.4f}",
                 ", ".join(f"{short_name(t['class'], 14)} {t['probability']:.3f}" for t in r["top3"])]
        if tta is not None:
            cells += [short_name(r["tta_class"]), f"{r['tta_probability']:.4f}"]
        if has_label:
            cells.append(short_name(info.class_names[r["true_label"]]) if "true_label" in r else "")
        cells.append(f"resized from {r['resized_from']}" if r["resized_from"] else "")
        table.append(cells)
    headers = ["image", "class", "probability", "top 3"] + (["TTA class", "TTA prob."] if tta is not None else []) \
        + (["true class"] if has_label else []) + ["note"]
    print(md_table(table, headers))
    if args.out:
        print(f"wrote {args.out}")
    return 0
