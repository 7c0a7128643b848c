"""``bloodbench run``: train, evaluate and profile every model x seed not yet recorded, then report."""

from __future__ import annotations

import argparse

from bloodbench.commands.common import add_data_options, add_results_option, comma_list, int_list, positive_int
from bloodbench.errors import BloodbenchError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="the whole pipeline for every model x seed without a finished record")
    add_data_options(p)
    add_results_option(p)
    p.add_argument("--models", default="all", help="comma-separated registry names (default: all)")
    p.add_argument("--seeds", type=int_list, default=[0, 1, 2], help="comma-separated seeds (default: 0,1,2)")
    p.add_argument("--device", default="auto", help="training device: auto, cpu or cuda")
    p.add_argument("--profile-devices", default=None,
                   help="comma-separated devices to profile on (default: cpu, plus cuda when present)")
    p.add_argument("--no-profile", action="store_true", help="train and evaluate only")
    p.add_argument("--no-report", action="store_true", help="do not regenerate reports/ at the end")
    p.add_argument("--epochs", type=positive_int, default=None, help="override every recipe's maximum epochs (smoke runs)")
    p.add_argument("--limit-train", type=positive_int, default=None, help="first N training images only (smoke runs)")
    p.add_argument("--dry-run", action="store_true", help="list the jobs and whether they are done, run nothing")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from bloodbench import run
    from bloodbench.formatting import md_table

    models = run.resolve_models(comma_list(args.models))
    devices = comma_list(args.profile_devices) or run.default_devices()
    if not args.seeds:
        raise BloodbenchError("--seeds is empty: give at least one seed, e.g. --seeds 0,1,2")
    overrides = {k: v for k, v in (("epochs", args.epochs), ("limit_train", args.limit_train)) if v is not None}
    jobs = run.plan(models, args.seeds, args.dataset, args.size, args.results, devices, args.device,
                    train_options=overrides, profile=not args.no_profile)
    print(md_table([[j.kind, j.model, j.seed, j.device, "done" if j.done else "pending"] for j in jobs],
                   ["job", "model", "seed", "device", "state"]))
    pending = sum(not j.done for j in jobs)
    eta = sum(run.estimate_seconds([j for j in jobs if not j.done], run.past_job_seconds(args.results)))
    print(f"{pending} of {len(jobs)} jobs pending" + (f", ETA {tqdm.format_interval(eta)} (from past job times)"
                                                      if pending else ""))
    if args.dry_run or not pending:
        return 0
    from bloodbench.results import ResultsStore

    ResultsStore(args.results).ensure_writable()
    log = run.execute(jobs, args.dataset, args.size, args.results, args.data_dir, args.verify)
    print(f"finished {len(log['jobs'])} jobs in {log['wall_seconds']:.0f}s")
    if not args.no_report:
        from bloodbench.report import write_report

        written = write_report(args.results)
        print(f"report: {len(written)} files regenerated under reports/")
    return 0
