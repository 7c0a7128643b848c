"""``bloodbench weights list|publish``: the published weights (safetensors in the package) and how they are made."""

from __future__ import annotations

import argparse

from bloodbench.commands.common import add_dataset_options, add_results_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="published weights: list them, or publish the Pareto front's")
    wsub = p.add_subparsers(dest="action", metavar="ACTION")
    wsub.required = True
    ls = wsub.add_parser("list", help="the published weights: model, run, sha256, size")
    ls.set_defaults(func=cmd_list)
    pub = wsub.add_parser("publish", help="publish the weights of the models on the MACs Pareto front",
                          description="For each model on the leaderboard's MACs Pareto front: the best-on-val "
                                      "seed's best.pt, checked to reproduce its saved test predictions, as "
                                      "safetensors (at most 5 MB) into bloodbench/models/published/ with its "
                                      "manifest entry.")
    add_dataset_options(pub)
    add_results_option(pub)
    pub.add_argument("--checkpoints", default=None, metavar="DIR",
                     help="results store to take the best.pt files from (default: --results)")
    pub.add_argument("--data-dir", default=None,
                     help="folder with the MedMNIST .npz files (default: $BLOODBENCH_DATA_DIR, then ~/.medmnist)")
    pub.add_argument("--out", default=None, help="folder of the published weights (default: the package's)")
    pub.set_defaults(func=cmd_publish)


def cmd_list(args: argparse.Namespace) -> int:
    from bloodbench.formatting import fmt, md_table
    from bloodbench.models.weights import PUBLISHED_DIR, read_manifest

    entries = read_manifest()
    if not entries:
        print(f"no published weights in {PUBLISHED_DIR}: `bloodbench weights publish` makes them")
        return 0
    print(md_table([[e["model"], f"{e['dataset']} {e['size']}px", e["seed"], fmt(e.get("val_acc"), ".2f", 100),
                     fmt(e.get("test_acc"), ".2f", 100), e["file"], e["sha256"][:16], f"{e['bytes'] / 1e6:.2f}"]
                    for e in entries],
                   ["model", "data", "seed", "val acc (%)", "test acc (%)", "file", "sha256", "MB"]))
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from bloodbench.models.weights import PUBLISHED_DIR
    from bloodbench.report.publish import publish_weights
    from bloodbench.store.fsutil import output_dir

    out = output_dir(args.out or PUBLISHED_DIR)
    for o in publish_weights(args.results, args.checkpoints, out, args.data_dir, args.dataset, args.size):
        print(f"{o.model}: {o.status} ({o.run_id}; {o.detail})")
    return 0
