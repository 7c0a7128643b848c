"""``bloodbench leaderboard``: accuracy next to cost, one row per model, Pareto fronts marked."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bloodbench.choices import LEADERBOARD_FORMATS, SHOWN_COLUMNS, SIZES, TERMINAL_COLUMNS
from bloodbench.commands.common import add_results_option, comma_list
from bloodbench.errors import BloodbenchError


def add_cost_options(p: argparse.ArgumentParser) -> None:
    """Where cost comes from and which device it is shown for; shared with ``report``."""
    add_results_option(p)
    p.add_argument("--benchmark-json", action="append", default=[], metavar="PATH",
                   help="pytest-benchmark JSON to take cost from as well (repeatable), "
                        "e.g. from `pytest benchmarks/ --benchmark-json out.json`")
    p.add_argument("--device", "--device-name", dest="device", default=None,
                   help="the one machine whose cost the table shows: cpu, cuda (that kind's machine with the most "
                        "rows), or a device NAME as recorded, e.g. \"AMD EPYC (1 thread)\" (a substring of one name "
                        "will do); rows it lacks stay blank. Default: the machine with the most profiled rows")
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
    p.add_argument("--columns", default=None,
                   help="markdown columns to show, comma-separated: " + ", ".join(SHOWN_COLUMNS) + ", or all "
                        "(default on a terminal: " + ",".join(TERMINAL_COLUMNS) + "; in a file or pipe: all)")
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
    columns = shown_columns(args.columns, terminal=not args.output and sys.stdout.isatty())
    text = board.render(args.format, columns)
    if args.format == "markdown":
        text += own_tables(args, board, models, columns)
    if args.output:
        path = Path(args.output)
        atomic_write_text(path, text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def shown_columns(option: str | None, terminal: bool) -> list[str] | None:
    """The short column names to show (None: all): ``--columns``, else a narrow set on a terminal."""
    if option is None:
        return list(TERMINAL_COLUMNS) if terminal else None
    names = comma_list(option)
    return None if names == ["all"] else names


def own_tables(args: argparse.Namespace, board, models, columns) -> str:
    """The tables of the machines that ``--benchmark-json`` files were measured on, other than the shown one:
    a user's own figures appear in a table of their own, never mixed into the main one."""
    import contextlib
    import io

    from bloodbench.leaderboard import load_leaderboard

    parts = []
    for m in board.others:
        if not any(s.startswith("benchmark:") for s in m.sources):
            continue
        with contextlib.redirect_stderr(io.StringIO()):  # its warnings were said for the main table
            own = load_leaderboard(args.results, benchmark_json=args.benchmark_json, device=m.name,
                                   precision=m.precision, dataset=args.dataset, size=args.size, models=models,
                                   sort=args.sort)
        parts += ["", f"## Cost on {m.name} ({m.precision})", "", own.to_markdown(columns=columns).rstrip()]
    return "\n".join(parts) + ("\n" if parts else "")
