"""``bloodbench train MODEL``: train to convergence, evaluate on test, record the run."""

from __future__ import annotations

import argparse
import json

from bloodbench.commands.common import add_data_options, add_results_option
from bloodbench.config import CLASS_WEIGHTING, MONITORS, OPTIMIZERS, SCHEDULES
from bloodbench.precision import PRECISIONS


def add_train_options(p: argparse.ArgumentParser) -> None:
    """Training options; a value left unset falls back to the model's registry recipe."""
    add_data_options(p)
    add_results_option(p)
    g = p.add_argument_group("recipe (default: the model's registry recipe)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--epochs", type=int, default=None, help="maximum epochs (early stopping may end sooner)")
    g.add_argument("--patience", type=int, default=None, help="epochs without validation improvement before stopping")
    g.add_argument("--monitor", choices=MONITORS, default=None)
    g.add_argument("--batch-size", type=int, default=None)
    g.add_argument("--lr", type=float, default=None)
    g.add_argument("--weight-decay", type=float, default=None)
    g.add_argument("--optimizer", choices=OPTIMIZERS, default=None)
    g.add_argument("--schedule", choices=SCHEDULES, default=None)
    g.add_argument("--label-smoothing", type=float, default=None)
    g.add_argument("--class-weighting", choices=CLASS_WEIGHTING, default=None,
                   help="loss: weighted cross-entropy; sampler: class-balanced sampling")
    g.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random flips, 90-degree rotations, brightness/contrast jitter (default: the recipe's, on)")
    g.add_argument("--limit-train", type=int, default=None, help="use only the first N training images (smoke runs)")
    h = p.add_argument_group("execution")
    h.add_argument("--device", default="auto", help="auto, cpu or cuda")
    h.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="autocast precision (default: fp32 on CPU, bf16 on CUDA; fp16: CUDA only)")
    h.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels_last memory format (default: on for CUDA, off for CPU)")
    h.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    h.add_argument("--force", action="store_true", help="retrain even if a finished record exists")
    h.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")


RECIPE_OPTIONS = ("seed", "epochs", "patience", "monitor", "batch_size", "lr", "weight_decay", "optimizer",
                  "schedule", "label_smoothing", "class_weighting", "augment", "limit_train", "device",
                  "precision", "channels_last", "compile")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model to convergence and evaluate it on test")
    p.add_argument("model", help="registry name (see `bloodbench models`)")
    add_train_options(p)
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from bloodbench.train import train

    options = {k: getattr(args, k) for k in RECIPE_OPTIONS}
    options.update(dataset=args.dataset, size=args.size)
    rec = train(args.model, results=args.results, data_dir=args.data_dir, force=args.force,
                progress=not args.quiet, verify=args.verify, **options)
    test = rec["test"] or {}
    ci = test.get("ci95", {}).get("acc", [float("nan")] * 2)
    print(json.dumps({"run_id": rec["run_id"], "stop_reason": rec["stop_reason"], "epochs_run": rec["epochs_run"],
                      "best_epoch": rec["best_epoch"], "train_seconds": rec["train_seconds"],
                      "test_acc": test.get("acc"), "test_acc_ci95": ci, "test_f1_macro": test.get("f1_macro"),
                      "test_auc": test.get("auc")}, indent=1))
    return 0
