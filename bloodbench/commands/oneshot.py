"""``bloodbench oneshot``: the GPU one-shot (docs/GPU_RUN.md), or its CPU rehearsal."""

from __future__ import annotations

import argparse

from bloodbench.commands.common import add_results_option, comma_list, positive_int, seed_list
from bloodbench.errors import BloodbenchError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("oneshot", help="everything a short GPU slot can give, in one command (docs/GPU_RUN.md)",
                       description="Profiles of every model on the GPU (fp32, bf16, CUDA graphs, a cross-process "
                                   "check), the GPU checks, then training until the budget ends; everything new "
                                   "packed into at most 8 files under --out for `bloodbench results import`.")
    p.add_argument("--out", required=True, help="folder for the packed files (on the device tool: $OUT)")
    p.add_argument("--budget", type=positive_int, default=540,
                   help="seconds for all steps and the pack (default: 540, inside a 10-minute call)")
    p.add_argument("--rehearse", action="store_true",
                   help="the same steps on CPU with tiny settings, into a scratch results folder unless --results")
    p.add_argument("--jobs", type=positive_int, default=None, help="trainings side by side (default: 8 on a GPU, 2 rehearsing)")
    p.add_argument("--train-models", default=None, help="comma-separated training order (default: costliest on CPU first)")
    p.add_argument("--seeds", type=lambda t: ",".join(map(str, seed_list(t))), default="0,1,2", help="training seeds (default: 0,1,2)")
    p.add_argument("--skip", default=None, help="comma-separated steps not to run, e.g. cuda-tests,epoch-benchmark "
                   "(steps: profile-fp32, profile-bf16, profile-graphs, profile-agreement, cuda-tests, "
                   "epoch-benchmark, train)")
    add_results_option(p)
    p.set_defaults(func=cmd_oneshot)


def cmd_oneshot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bloodbench.remote.oneshot import run_oneshot
    from bloodbench.store.results import resolve_results_dir

    if not args.rehearse:
        import torch

        if not torch.cuda.is_available():
            raise BloodbenchError("the one-shot needs a CUDA GPU: run it on the GPU machine (docs/GPU_RUN.md), "
                                  "or add --rehearse to rehearse it on CPU")
    out = Path(args.out).resolve()  # the steps run from the checkout's root
    results = (Path(args.results) if args.results else out / "scratch-results" if args.rehearse
               else resolve_results_dir(None)).resolve()
    summary = run_oneshot(out, float(args.budget), results, rehearse=args.rehearse, jobs=args.jobs,
                          train_models=comma_list(args.train_models) or None, seeds=args.seeds,
                          skip=comma_list(args.skip))
    print(f"oneshot: {summary['seconds_with_pack']:.0f} s; {len(summary['profiles'])} profiles, "
          f"{len(summary['trained'])} trainings finished, {len(summary['cut_off'])} cut off; "
          f"files: {', '.join(f['file'] for f in summary['files'])} in {out}")
    failed = [s["name"] for s in summary["steps"] if s["status"] == "failed"]
    if failed:
        print(f"oneshot: failed steps: {', '.join(failed)} (logs in logs.tgz)")
    return 1 if failed else 0
