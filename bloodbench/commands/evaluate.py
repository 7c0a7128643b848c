"""``bloodbench evaluate MODEL``: metrics of a finished run from its saved test predictions."""

from __future__ import annotations

import argparse

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
    from bloodbench.store.predictions import PREDICTION_FILES, checked_predictions, load_predictions
    from bloodbench.store.results import ResultsStore

    store = ResultsStore(args.results)
    out = []
    for rec in require_finished_runs(store, args.model, args.dataset, args.size, args.seed):
        run_dir = store.run_dir(rec["run_id"])
        fix = f"recreate it with {retrain_hint(rec, store.root)}, or delete {run_dir}"
        y_true, y_score = (checked_predictions(run_dir, rec, "test_predictions", fix)  # checked against the record
                           or load_predictions(run_dir / PREDICTION_FILES["test_predictions"], fix))  # missing: says so
        m = classification_metrics(y_true, y_score, rec["test"].get("class_names"))
        m["ci95"] = bootstrap_ci(y_true, y_score, seed=rec["seed"])
        out.append({"run_id": rec["run_id"], "seed": rec["seed"], **m})
    if args.format == "json":
        from bloodbench.store.fsutil import strict_json

        print(strict_json(out, indent=1))
        return 0
    rows = [[m["seed"], f"{100 * m['acc']:.2f}", f"[{100 * m['ci95']['acc'][0]:.2f}, {100 * m['ci95']['acc'][1]:.2f}]",
             f"{m['f1_macro']:.4f}", f"{m['auc']:.4f}", m["run_id"]] for m in out]
    print(md_table(rows, ["seed", "test acc (%)", "95% CI (%)", "macro-F1", "AUC", "run"]))
    print(per_class_table(out))
    return 0


def per_class_table(out: list[dict]) -> str:
    """Per-class figures of every seed shown: precision and recall averaged over them, F1 of each."""
    import numpy as np

    from bloodbench.formatting import md_table

    seeds = [m["seed"] for m in out]
    pcs = [m["per_class"] for m in out]
    mean = {k: np.mean([pc[k] for pc in pcs], axis=0) for k in ("precision", "recall")}
    unique = len(set(seeds)) == len(seeds)  # else two recipes ran one seed: name each run by its hash
    f1_cols = ([f"F1 seed {m['seed']}" + ("" if unique else f" ({m['run_id'].rsplit('-', 1)[-1][:6]})")
                for m in out] if len(out) > 1 else ["F1"])
    rows = [[name, f"{mean['precision'][i]:.3f}", f"{mean['recall'][i]:.3f}",
             *(f"{pc['f1'][i]:.3f}" for pc in pcs), pcs[0]["support"][i]]
            for i, name in enumerate(out[0]["class_names"])]
    which = (f"seed {seeds[0]}" if len(out) == 1 else f"mean over seeds {', '.join(map(str, seeds))}; F1 per seed"
             if unique else f"mean over the {len(out)} runs above; F1 per run")
    return f"\nper class ({which}):\n" + md_table(
        rows, ["class", "precision", "recall", *f1_cols, "support"], numeric_from=1)
