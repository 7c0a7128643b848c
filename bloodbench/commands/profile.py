"""``bloodbench profile MODEL... | --all``: cost counts, latency, throughput (and traces) per model."""

from __future__ import annotations

import argparse
import os

from bloodbench.choices import DEFAULT_ROUND_S, DEFAULT_ROUNDS, DEFAULT_WARMUP_S, PRECISIONS
from bloodbench.commands.common import (
    add_dataset_options,
    add_results_option,
    nonnegative_float,
    positive_int,
    positive_int_list,
)
from bloodbench.errors import BloodbenchError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="MACs, params, memory, latency and throughput of models",
                       description="Profile registry models; each profile is a record in the results store. "
                                   "MACs = fused multiply-adds (fvcore), FLOPs = 2 x MACs.")
    p.add_argument("models", nargs="*", metavar="MODEL", help="registry model names (see `bloodbench models`)")
    p.add_argument("--all", action="store_true", help="profile every registered model")
    add_dataset_options(p)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS, help="autocast precision (fp16: CUDA only)")
    p.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    p.add_argument("--compile", action="store_true", help="torch.compile the model first")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="launch-free setting: time the replay of a captured CUDA graph (CUDA only; "
                        "its own record beside the eager one)")
    p.add_argument("--tf32", action="store_true", help="allow TF32 for fp32 matmul/conv on CUDA (default: off)")
    p.add_argument("--batch-size", type=positive_int, default=1, help="batch size of the latency figure (default: 1)")
    p.add_argument("--batch-sizes", type=positive_int_list, default=None,
                   help="throughput sweep, e.g. 1,8,32 (default: 1..64 on cpu, 1..1024 on cuda)")
    p.add_argument("--iters", type=positive_int, default=20, help="timed latency calls per round (default: 20)")
    p.add_argument("--rounds", type=positive_int, default=DEFAULT_ROUNDS,
                   help=f"latency rounds; p50 = median of the rounds' p50s (default: {DEFAULT_ROUNDS})")
    p.add_argument("--warmup", type=int, default=10, help="untimed warm-up calls, at least (default: 10)")
    p.add_argument("--round-s", type=nonnegative_float, default=DEFAULT_ROUND_S,
                   help=f"seconds per latency round, at least: --iters rises for fast models "
                        f"(default: {DEFAULT_ROUND_S:g})")
    p.add_argument("--warmup-s", type=nonnegative_float, default=DEFAULT_WARMUP_S,
                   help=f"untimed warm-up seconds, at least (default: {DEFAULT_WARMUP_S:g})")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads (default: torch's current)")
    p.add_argument("--trace", action="store_true", help="also write torch.profiler traces and a top-operators table")
    p.add_argument("--trace-dir", default=None, help="trace folder (default: reports/traces)")
    p.add_argument("--no-save", dest="save", action="store_false", help="print only, write no record")
    p.add_argument("--missing", action="store_true",
                   help="skip models that already have a quiet record of this very setting (a resumed or repeated "
                        "sweep; a noisy one is measured again)")
    add_results_option(p)
    p.set_defaults(func=cmd_profile)


def _record_notes(rec: dict) -> list[str]:
    """What the table cannot show: skipped operators, a MAC cross-check failure, out-of-memory steps."""
    from bloodbench.profile.counting import unsupported_ops_note

    notes = []
    if rec["unsupported_ops"]:
        notes.append(unsupported_ops_note(rec["unsupported_ops"]))
    if rec["macs_disagreement_flagged"]:
        notes.append(f"fvcore and torch FlopCounterMode disagree by {rec['macs_disagreement']:.1%} "
                     f"({rec['macs']:,} vs {rec['macs_flopcounter']:,} MACs)")
    oom_batches = ", ".join(str(t["batch_size"]) for t in rec["throughput"] if t["oom"])
    stages = [f"throughput (batch {oom_batches})" if s == "throughput" else s for s in rec["oom_stages"]]
    if stages:
        notes.append(f"out of memory in {'; '.join(stages)}: no figure recorded there")
    return notes


def cmd_profile(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from bloodbench.config import ProfileConfig
    from bloodbench.formatting import fmt, md_table
    from bloodbench.models import get_model_info, list_models
    from bloodbench.profile.graphs import check_cuda_graphs
    from bloodbench.profile.labels import memory_method_label
    from bloodbench.runtime.envinfo import resolve_device
    from bloodbench.runtime.precision import check_precision
    from bloodbench.store.results import ResultsStore

    if args.all and args.models:
        raise BloodbenchError("give model names or --all, not both")
    names = list_models() if args.all else list(args.models)
    if not names:
        raise BloodbenchError("no model given: name one or more models, or use --all")
    for name in names:  # fail on a typo before spending minutes on the others
        get_model_info(name)
    device = resolve_device(args.device)
    check_precision(args.precision, device)
    check_cuda_graphs(args.cuda_graphs, device)
    if args.warmup < 0:
        raise BloodbenchError(f"--warmup must be >= 0 (got {args.warmup})")
    os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # keep kineto's C++ log lines off the console
    from bloodbench.profile.record import profile_model
    from bloodbench.profile.trace import DEFAULT_TRACE_DIR

    trace_dir = args.trace_dir or DEFAULT_TRACE_DIR
    store = ResultsStore(args.results)
    config = ProfileConfig.build(
        dataset=args.dataset, size=args.size, device=device, precision=args.precision,
        channels_last=args.channels_last, compile=args.compile, batch_size=args.batch_size,
        batch_sizes=args.batch_sizes, warmup=args.warmup, iters=args.iters, threads=args.threads,
        rounds=args.rounds, warmup_s=args.warmup_s, cuda_graphs=args.cuda_graphs, tf32=args.tf32,
        round_s=args.round_s)
    if args.missing:  # a noisy record is not done: it is measured again, and a quiet one replaces it
        from bloodbench.store.verdicts import is_noisy

        done = [n for n in names if (rec := store.get("profile", config.run_id(n))) is not None and not is_noisy(rec)]
        names = [n for n in names if n not in done]
        if done:
            print(f"already profiled in this setting, skipped: {', '.join(done)}")
        if not names:
            return 0
    if args.save:
        store.ensure_writable()
    records, notes = [], []
    bar = tqdm(names, desc="profile", unit="model", disable=None)
    for name in bar:
        def stage(s: str, name: str = name) -> None:
            bar.set_postfix_str(f"{name}: {s}")

        rec = profile_model(name, config, results=store.root, save=args.save, trace=args.trace,
                            trace_dir=trace_dir, progress=stage)
        records.append(rec)
        notes += [f"{name}: {n}" for n in _record_notes(rec)]
    bar.close()

    lat_bs = args.batch_size
    rows = [[r["model"], fmt(r["params"], ".2f", 1e-6), fmt(r["macs"], ".1f", 1e-6), fmt(r["flops"], ".1f", 1e-6),
             fmt(r["latency"]["p50_ms"], ".3f"), fmt(r["latency"]["p90_ms"], ".3f"),
             fmt(r["latency"]["p99_ms"], ".3f"), fmt(r["peak_throughput"], ".0f"),
             fmt(r["peak_memory_mb"], ".1f")] for r in records]
    print(md_table(rows, ["model", "params (M)", "MACs (M)", "FLOPs (M)", "p50 ms", "p90 ms", "p99 ms",
                          "peak img/s", "peak mem MiB"], numeric_from=1))
    first = records[0]
    method = memory_method_label(next((r["peak_memory_method"] for r in records if r["peak_memory_method"]), None))
    print(f"\n{first['dataset']} {args.size}x{args.size}x{first['in_channels']}, {first['device_name']}, "
          f"{args.precision}{', channels_last' if args.channels_last else ''}{', compiled' if args.compile else ''}"
          f"{', CUDA graphs (launch-free)' if args.cuda_graphs else ''}. "
          f"MACs per image (fvcore; FLOPs = 2 x MACs); latency at batch {lat_bs}, p50 = median of {args.rounds} "
          f"rounds' p50s; peak mem (MiB) = {method}.")
    for note in notes:
        print(f"note: {note}")
    if args.save:
        print(f"records: {store.root / 'profile'}")
    if args.trace:
        print(f"traces: {trace_dir}/<model>/ (tensorboard --logdir {trace_dir}; the plain <worker>.json opens in "
              f"https://ui.perfetto.dev; <worker>.top_ops.md per setting)")
    return 0
