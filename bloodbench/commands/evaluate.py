"""``bloodbench evaluate MODEL``: metrics of a finished run from its saved test predictions."""

from __future__ import annotations

import argparse
import json

from bloodbench.commands.common import add_dataset_options, add_format_option, add_results_option, seed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="test metrics of a finished run (from its saved predictions)")
    p.add_argument("model")
    p.add_argument("--seed", type=seed, default=None, help="default: every finished seed")
    add_dataset_options(p)
    add_results_option(p)
    add_format_option(p)
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from bloodbench.formatting import md_table
    from bloodbench.hints import require_finished_runs, retrain_hint
    from bloodbench.stats.metrics import bootstrap_ci, classification_metrics
    from bloodbench.store.predictions import PREDICTION_FILES, load_predictions, prediction_path
    from bloodbench.store.results import ResultsStore

    store = ResultsStore(args.results)
    out = []
    for rec in require_finished_runs(store, args.model, args.dataset, args.size, args.seed):
        run_dir = store.run_dir(rec["run_id"])
        pred_path = (prediction_path(run_dir, rec, "test_predictions")
                     or run_dir / PREDICTION_FILES["test_predictions"])  # missing: load_predictions says so
        y_true, y_score = load_predictions(pred_path, f"recreate it with {retrain_hint(rec, store.root)}, "
                                                      f"or delete {run_dir}")
        m = classification_metrics(y_true, y_score, rec["test"].get("class_names"))
        m["ci95"] = bootstrap_ci(y_true, y_score, seed=rec["seed"])
        out.append({"run_id": rec["run_id"], "seed": rec["seed"], **m})
    if args.format == "json":
        print(json.dumps(out, indent=1))
        return 0
    rows = [[m["seed"], f"{m['acc']:.4f}", f"[{m['ci95']['acc'][0]:.4f}, {m['ci95']['acc'][1]:.4f}]",
             f"{m['f1_macro']:.4f}", f"{m['auc']:.4f}", m["run_id"]] for m in out]
    print(md_table(rows, ["seed", "test acc", "95% CI", "macro-F1", "AUC", "run"]))
    last = out[-1]
    pc = last["per_class"]
    print(f"\nper class (seed {last['seed']}):")
    print(md_table([[n, f"{p:.3f}", f"{r:.3f}", f"{f:.3f}", s] for n, p, r, f, s in
                    zip(last["class_names"], pc["precision"], pc["recall"], pc["f1"], pc["support"])],
                   ["class", "precision", "recall", "F1", "support"], numeric_from=1))
    return 0
