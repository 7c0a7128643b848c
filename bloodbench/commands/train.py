"""``bloodbench train MODEL``: train to convergence, evaluate on test, record the run."""

from __future__ import annotations

import argparse
import sys

from bloodbench.choices import CLASS_WEIGHTING, MONITORS, OPTIMIZERS, PRECISIONS, SCHEDULES
from bloodbench.commands.common import (add_data_options, add_results_option, fraction, nonnegative_float,
                                       positive_float, positive_int, seed)


def _grad_clip(value: str) -> float:
    return 0.0 if value.lower() in ("off", "none") else nonnegative_float(value)


def add_train_options(p: argparse.ArgumentParser) -> None:
    """Training options; a value left unset falls back to the model's registry recipe."""
    add_data_options(p)
    add_results_option(p)
    g = p.add_argument_group("recipe (default: the model's registry recipe)")
    g.add_argument("--seed", type=seed, default=0)
    g.add_argument("--epochs", type=positive_int, default=None, help="maximum epochs (early stopping may end sooner)")
    g.add_argument("--patience", type=positive_int, default=None,
                   help="epochs without validation improvement before stopping")
    g.add_argument("--monitor", choices=MONITORS, default=None)
    g.add_argument("--batch-size", type=positive_int, default=None)
    g.add_argument("--lr", type=positive_float, default=None)
    g.add_argument("--weight-decay", type=nonnegative_float, default=None)
    g.add_argument("--optimizer", choices=OPTIMIZERS, default=None)
    g.add_argument("--schedule", choices=SCHEDULES, default=None)
    g.add_argument("--label-smoothing", type=fraction, default=None)
    g.add_argument("--class-weighting", choices=CLASS_WEIGHTING, default=None,
                   help="loss: weighted cross-entropy; sampler: class-balanced sampling")
    g.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random flips, 90-degree rotations, brightness/contrast jitter (default: the recipe's, on)")
    g.add_argument("--grad-clip", type=_grad_clip, default=None, metavar="NORM|off",
                   help="clip the gradient norm to NORM (default: the recipe's, 5); 0 or off: no clipping")
    g.add_argument("--limit-train", type=positive_int, default=None,
                   help="use only the first N training images (smoke runs)")
    h = p.add_argument_group("execution")
    h.add_argument("--device", default="auto", help="auto, cpu or cuda")
    h.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="autocast precision (default: the recipe's, the same on every device; `bloodbench "
                        "models` shows each recipe; fp16: CUDA only)")
    h.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels_last memory format (default: on for CUDA, off for CPU)")
    h.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    h.add_argument("--force", action="store_true",
                   help="retrain from scratch even if the run is finished (its old files stay in "
                        "<run>/replaced/ until the new record is written)")
    h.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    h.add_argument("--tensorboard", default=None, metavar="DIR",
                   help="also log loss, accuracy, lr and validation metrics per epoch to DIR/<run_id> "
                        "(view with `tensorboard --logdir DIR`)")


RECIPE_OPTIONS = ("seed", "epochs", "patience", "monitor", "batch_size", "lr", "weight_decay", "optimizer",
                  "schedule", "label_smoothing", "class_weighting", "augment", "grad_clip", "limit_train", "device",
                  "precision", "channels_last", "compile")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model to convergence and evaluate it on test")
    p.add_argument("model", help="registry name (see `bloodbench models`)")
    add_train_options(p)
    p.add_argument("--json", action="store_true", help="end with the run's figures as JSON instead of a summary")
    p.set_defaults(func=cmd_train)


def config_from_args(args: argparse.Namespace):
    """The run's TrainConfig: registry recipe overlaid with the options given (unset ones are None)."""
    from bloodbench.train import TrainConfig

    options = {k: getattr(args, k) for k in RECIPE_OPTIONS}
    return TrainConfig.build(args.model, dataset=args.dataset, size=args.size, **options)


def _summary_json(rec: dict) -> str:
    test = rec["test"] or {}
    ci = test.get("ci95", {}).get("acc", [float("nan")] * 2)
    from bloodbench.store.fsutil import strict_json

    return strict_json({"run_id": rec["run_id"], "stop_reason": rec["stop_reason"], "epochs_run": rec["epochs_run"],
                       "best_epoch": rec["best_epoch"], "train_seconds": rec["train_seconds"],
                       "test_acc": test.get("acc"), "test_acc_ci95": ci, "test_f1_macro": test.get("f1_macro"),
                       "test_auc": test.get("auc"), "learned_nothing": bool(rec.get("learned_nothing")),
                       "converged": rec.get("converged")}, indent=1)


def summary(rec: dict, record_path) -> str:
    """What a finished run gives, in a few lines: test accuracy (percent, as the leaderboard prints it), the
    record, and the next command."""
    test = rec.get("test") or {}
    ci = (test.get("ci95") or {}).get("acc") or []
    what = f"{rec['model']} seed {rec.get('seed')} ({rec['dataset']} {rec['size']} px)"
    lines = []
    if test.get("acc") is not None:
        lines.append(f"{what}: test accuracy {100 * test['acc']:.2f} %"
                     + (f" (95 % CI {100 * ci[0]:.2f}–{100 * ci[1]:.2f})" if len(ci) == 2 else "")
                     + f", macro-F1 {test.get('f1_macro', float('nan')):.3f}, AUC {test.get('auc', float('nan')):.3f}")
    else:
        lines.append(f"{what}: {rec.get('status')}, no test figures")
    lines.append(f"stopped: {rec.get('stop_reason')} after {rec.get('epochs_run')} epochs (best epoch "
                 f"{rec.get('best_epoch')}), {float(rec.get('train_seconds') or 0):,.0f} s of training"
                 + ("" if rec.get("converged", True) else "; not converged (still improving at the epoch budget)"))
    lines.append(f"record: {record_path}")
    lines.append(f"next: bloodbench evaluate {rec['model']} --seed {rec.get('seed')}, or bloodbench leaderboard")
    return "\n".join(lines)


def warn_learned_nothing(rec: dict) -> None:
    """A run that learned nothing is flagged in its record; say so on screen too."""
    from bloodbench.errors import warn
    from bloodbench.store.verdicts import LEARNED_NOTHING_RULE

    if rec.get("learned_nothing"):
        warn(f"{rec['run_id']} learned nothing ({LEARNED_NOTHING_RULE}): it stays in the store but is left out of "
             f"every average; check the recipe (--lr, --epochs) or the data")


def _print(rec: dict, trainer, as_json: bool) -> None:
    warn_learned_nothing(rec)
    print(_summary_json(rec) if as_json else summary(rec, trainer.run_dir / "record.json"))


def cmd_train(args: argparse.Namespace) -> int:
    from bloodbench.train import Trainer

    cfg = config_from_args(args)
    trainer = Trainer(cfg, results=args.results, data_dir=args.data_dir, verify=args.verify,
                      progress=not args.quiet)
    existing = trainer.finished_record()
    if existing and not args.force:
        missing = [n for n in ("best.pt", "test_predictions.npz") if not (trainer.run_dir / n).is_file()]
        print(f"already finished: {cfg.run_id}" + (f" ({', '.join(missing)} missing)" if missing else "")
              + "; nothing retrained, --force retrains from scratch", file=sys.stderr)
        _print(existing, trainer, args.json)
        return 0
    logger = None
    if args.tensorboard:
        from bloodbench.train.tensorboard import TensorBoardLogger

        logger = TensorBoardLogger(args.tensorboard, cfg.run_id)
    try:
        rec = trainer.fit(force=args.force, on_epoch_end=logger)
    finally:
        if logger is not None:
            logger.close()
    _print(rec, trainer, args.json)
    return 0
