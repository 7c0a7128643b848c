"""``bloodbench leaderboard``: accuracy next to cost, one row per model, Pareto fronts marked."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bloodbench.choices import LEADERBOARD_FORMATS, SIZES
from bloodbench.commands.common import add_results_option, comma_list
from bloodbench.errors import BloodbenchError


def add_cost_options(p: argparse.ArgumentParser) -> None:
    """Where cost comes from and which device it is shown for; shared with ``report``."""
    add_results_option(p)
    p.add_argument("--benchmark-json", action="append", default=[], metavar="PATH",
                   help="pytest-benchmark JSON to take cost from as well (repeatable), "
                        "e.g. from `pytest benchmarks/ --benchmark-json out.json`")
    p.add_argument("--device", default=None,
                   help="cost on cpu, cuda, or a device NAME substring (default: cuda if profiled, else cpu)")
    p.add_argument("--precision", default=None,
                   help="profile precision to show, e.g. fp16 (default: fp32 where present, else the newest)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leaderboard", help="join training and profile results into an accuracy-vs-cost table")
    add_cost_options(p)
    p.add_argument("--dataset", default=None, help="only this dataset (default: all)")
    p.add_argument("--size", type=int, default=None, choices=SIZES, help="only this image size (default: all)")
    p.add_argument("--models", default=None, help="only these models, comma-separated")
    p.add_argument("--sort", default="acc",
                   help="column to sort by within each dataset/size: acc (default), f1, auc, latency, p99, "
                        "throughput, params, macs, memory, model, ...; force the order with a prefix: --sort=-latency")
    p.add_argument("--format", choices=LEADERBOARD_FORMATS, default="markdown", help="output format (default: markdown)")
    p.add_argument("-o", "--output", default=None, help="write to this file instead of stdout")
    p.set_defaults(func=cmd_leaderboard)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from bloodbench.leaderboard import load_leaderboard
    from bloodbench.store.fsutil import atomic_write_text, ensure_writable_dir

    if args.output:  # an unwritable -o is one line before the records are read, not after
        from bloodbench.store.results import refuse_inside_store

        out = Path(args.output)
        refuse_inside_store(out, args.results, "-o")
        if out.is_dir():
            raise BloodbenchError(f"cannot write the leaderboard to {out}: it is a folder; give a file name")
        ensure_writable_dir(out.parent, "output folder", "give -o a file in a writable folder")
    models = comma_list(args.models) or None
    board = load_leaderboard(args.results, benchmark_json=args.benchmark_json, device=args.device,
                             precision=args.precision, dataset=args.dataset, size=args.size, models=models,
                             sort=args.sort)
    text = board.render(args.format)
    if args.output:
        path = Path(args.output)
        atomic_write_text(path, text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
