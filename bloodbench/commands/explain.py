"""``bloodbench explain MODEL``: Grad-CAM grids, error analysis and calibration for a trained run."""

from __future__ import annotations

import argparse
import sys

from bloodbench.commands.common import add_data_options, add_results_option, seed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="Grad-CAM, confused classes and calibration of a trained model")
    p.add_argument("model", metavar="MODEL", help="registered model name (see `bloodbench models`)")
    p.add_argument("--seed", type=seed, default=None, help="training seed (default: the lowest finished one)")
    p.add_argument("--n", type=int, default=16, help="images per Grad-CAM grid (default: 16)")
    p.add_argument("--class", dest="class_name", default=None, metavar="NAME",
                   help="only examples of this true class (case-insensitive prefix, e.g. 'neut')")
    p.add_argument("--layer", default=None, metavar="DOTTED.PATH",
                   help="Grad-CAM target module (default: the registry's target_layer, the last conv block, "
                        "unless its map is 4x4 or smaller: then the deepest layer keeping a 7x7 map)")
    p.add_argument("--bins", type=int, default=15, help="confidence bins for ECE (default: 15)")
    add_data_options(p)
    add_results_option(p)
    p.add_argument("--out", default=None,
                   help="output folder (default: explain-out/MODEL, a working folder; the report links what is in "
                        "reports/explain/MODEL, so give --out reports/explain/MODEL to publish)")
    p.add_argument("--no-gradcam", dest="gradcam", action="store_false",
                   help="only the outputs the saved test predictions give (no checkpoint needed)")
    p.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    from bloodbench.explain import explain

    res = explain(args.model, seed=args.seed, n=args.n, class_name=args.class_name, layer=args.layer,
                  dataset=args.dataset, size=args.size, data_dir=args.data_dir, verify=args.verify,
                  results=args.results, out=args.out, n_bins=args.bins, gradcam=args.gradcam)
    if res["note"]:
        print(f"note: {res['note']}", file=sys.stderr)
    print(f"{res['run_id']}: test accuracy {100 * res['accuracy']:.2f} % ({res['n_wrong']} wrong), "
          f"ECE {res['ece']:.4f}" + (f", Grad-CAM layer {res['layer']}" if res["layer"] else ", no Grad-CAM"))
    for path in res["paths"].values():
        print(f"wrote {path}")
    if args.out is None:
        print(f"not published: the report links reports/explain/{args.model}/ (rerun with "
              f"--out reports/explain/{args.model} to publish)", file=sys.stderr)
    return 0
