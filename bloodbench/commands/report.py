"""``bloodbench report``: regenerate reports/ (README, plots, model cards) or compare two result sets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bloodbench.commands.leaderboard import add_cost_options
from bloodbench.errors import BloodbenchError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write reports/ (leaderboard, plots, model cards) or compare results")
    add_cost_options(p)
    p.add_argument("--out", default=None,
                   help="output folder (default: reports; with --compare: none, the comparison goes to stdout)")
    p.add_argument("--compare", nargs="+", metavar="OLD", default=None,
                   help="compare OLD_RESULTS_DIR against the current results, or OLD.json NEW.json "
                        "(two pytest-benchmark files, or two results dirs); prints markdown, and writes OUT/compare.md "
                        "only when --out is given")
    p.add_argument("--threshold", type=float, default=0.05,
                   help="relative latency increase / throughput drop that counts as a regression (default: 0.05)")
    p.add_argument("--acc-threshold", type=float, default=0.5,
                   help="test-accuracy drop in percentage points that counts as a regression (default: 0.5)")
    p.add_argument("--fail-on-regression", action="store_true", help="exit 1 when --compare finds a regression")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from bloodbench.store.fsutil import atomic_write_text
    from bloodbench.store.results import refuse_inside_store, resolve_results_dir

    out = Path(args.out or "reports")
    refuse_inside_store(out, args.results, "--out")
    if args.compare is not None:
        from bloodbench.report import compare
        from bloodbench.store.fsutil import output_dir

        if len(args.compare) > 2:
            raise BloodbenchError("--compare takes OLD (against the current results) or OLD NEW, not more")
        out_dir = output_dir(out) if args.out else None  # an unusable --out fails before any work
        old = args.compare[0]
        new = args.compare[1] if len(args.compare) == 2 else str(resolve_results_dir(args.results))
        result = compare(old, new, threshold=args.threshold, acc_threshold_pt=args.acc_threshold,
                         device=args.device, precision=args.precision)
        text = result.to_markdown()
        sys.stdout.write(text)
        if out_dir is not None:  # never into the repository's reports/ unless asked
            atomic_write_text(out_dir / "compare.md", text)
            print(f"wrote {out_dir / 'compare.md'}", file=sys.stderr)
        return 1 if (args.fail_on_regression and result.regressions) else 0

    from bloodbench.errors import warnings_once
    from bloodbench.report import write_report

    with warnings_once():  # the report reads the records and benchmark files for every device it shows
        paths = write_report(args.results, out, benchmark_json=args.benchmark_json, device=args.device,
                             precision=args.precision)
    print(f"wrote {len(paths)} files under {out}/ (start at {out / 'README.md'})")
    return 0
