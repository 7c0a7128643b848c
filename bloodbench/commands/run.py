"""``bloodbench run``: train, evaluate and profile every model x seed not yet recorded, then report.

``--executor local`` (default) runs here, ``--jobs`` at a time; ``--executor slurm`` submits a
Slurm job array. ``--status`` says where every job of the sweep stands.
"""

from __future__ import annotations

import argparse
import os

from bloodbench.choices import sbatch_flag, slurm_value
from bloodbench.commands.common import (
    add_data_options,
    add_results_option,
    comma_list,
    seed_list,
    positive_int,
)
from bloodbench.errors import BloodbenchError


def _non_negative(text: str) -> int:
    return 0 if text.strip() == "0" else positive_int(text)


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (an sbatch flag without its dashes), got {text!r}")
    try:
        return sbatch_flag(key.strip(), value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _slurm_option(key: str):
    """argparse type of a Slurm option: the rule its --slurm-config value meets too."""
    def check(text: str):
        try:
            return slurm_value(key, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    check.__name__ = key  # argparse names the type in some messages
    return check


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="the whole pipeline for every model x seed without a finished record")
    add_data_options(p)
    add_results_option(p)
    p.add_argument("--models", default="all", help="comma-separated registry names (default: all)")
    p.add_argument("--seeds", type=seed_list, default=[0, 1, 2], help="comma-separated seeds (default: 0,1,2)")
    p.add_argument("--device", default="auto", help="training device: auto, cpu or cuda "
                   "(with --executor slurm, auto means cuda when tasks get GPUs)")
    p.add_argument("--profile-devices", default=None,
                   help="comma-separated devices to profile on (default: cpu, plus cuda when present)")
    p.add_argument("--no-profile", action="store_true", help="train and evaluate only")
    p.add_argument("--no-report", action="store_true", help="do not regenerate reports/ at the end")
    p.add_argument("--epochs", type=positive_int, default=None, help="override every recipe's maximum epochs (smoke runs)")
    p.add_argument("--limit-train", type=positive_int, default=None, help="first N training images only (smoke runs)")
    p.add_argument("--dry-run", action="store_true",
                   help="list the jobs and whether they are done (with slurm: also the sbatch script), run nothing")
    p.add_argument("--status", action="store_true",
                   help="list the jobs as pending, submitted, running, finished or failed, with log paths")
    e = p.add_argument_group("execution (docs/CLUSTER.md)")
    e.add_argument("--executor", choices=("local", "slurm"), default="local",
                   help="local: on this machine; slurm: one Slurm job array through submitit (default: local)")
    e.add_argument("--jobs", type=positive_int, default=None,
                   help="local: trainings at once per GPU, or on CPU (default: 4 per GPU, 1 on CPU; "
                        "1 on CPU runs in this process)")
    e.add_argument("--retries", type=_non_negative, default=2,
                   help="attempts after a failure or pre-emption, resuming from the last checkpoint (default: 2)")
    e.add_argument("--time", type=_slurm_option("time"), default=None, help="time limit per job in minutes "
                   "(slurm default 120; local: none)")
    s = p.add_argument_group("slurm (defaults < --slurm-config < these options)")
    s.add_argument("--slurm-config", default=None, help="TOML or JSON file with partition, account, gpus_per_task, "
                   "cpus_per_task, mem, time, array_parallelism, additional_parameters")
    s.add_argument("--partition", type=_slurm_option("partition"), default=None)
    s.add_argument("--account", type=_slurm_option("account"), default=None)
    s.add_argument("--gpus-per-task", type=_slurm_option("gpus_per_task"), default=None, help="default 1")
    s.add_argument("--cpus-per-task", type=_slurm_option("cpus_per_task"), default=None, help="default 8")
    s.add_argument("--mem", type=_slurm_option("mem"), default=None, help="memory per task, e.g. 32G (default)")
    s.add_argument("--array-parallelism", type=_slurm_option("array_parallelism"), default=None,
                   help="tasks of the array running at once (default 16)")
    s.add_argument("--sbatch", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="extra sbatch flag, e.g. --sbatch qos=high --sbatch constraint=a100 (repeatable)")
    p.set_defaults(func=cmd_run)


def _slurm_params(args: argparse.Namespace) -> dict:
    from bloodbench.sweep.executors import load_slurm_config, slurm_parameters

    config = load_slurm_config(args.slurm_config) if args.slurm_config else {}
    return slurm_parameters(config, {"partition": args.partition, "account": args.account,
                                     "gpus_per_task": args.gpus_per_task, "cpus_per_task": args.cpus_per_task,
                                     "mem": args.mem, "time": args.time, "array_parallelism": args.array_parallelism,
                                     "additional_parameters": dict(args.sbatch)})


def cmd_run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from bloodbench.formatting import md_table
    from bloodbench.sweep import run

    models = run.resolve_models(comma_list(args.models))
    if not args.seeds:
        raise BloodbenchError("--seeds is empty: give at least one seed, e.g. --seeds 0,1,2")
    params = _slurm_params(args) if args.executor == "slurm" else None
    device = args.device
    if params is not None and device == "auto":  # decided by the tasks' allocation, not by the login node
        device = "cuda" if params.get("gpus_per_task") else "cpu"
    devices = comma_list(args.profile_devices) or (["cpu", "cuda"] if device == "cuda" else run.default_devices())
    if params is None and not args.status:  # jobs that run here need the device here: no GPU is one line, now
        from bloodbench.runtime.envinfo import resolve_device

        for dev in dict.fromkeys([device, *([] if args.no_profile else devices)]):
            resolve_device(dev)
    overrides = {k: v for k, v in (("epochs", args.epochs), ("limit_train", args.limit_train)) if v is not None}
    jobs = run.plan(models, args.seeds, args.dataset, args.size, args.results, devices, device,
                    train_options=overrides, profile=not args.no_profile)
    if args.status:
        return _print_status(jobs, args.results)
    past = run.past_job_seconds(args.results)  # read once: the estimates here and the run's progress bar
    epochs = run.epoch_times(args.results)
    todo = [j for j in jobs if not j.done]
    estimates = dict(zip(map(id, todo), run.estimate_seconds(todo, past, epochs)))

    def estimate(j) -> str:
        if j.done:
            return ""
        measured = epochs.estimate(j) if j.kind == "train" else None
        how = measured[1] if measured else "past job times"
        return f"{run.about(estimates[id(j)])} ({how})"

    from bloodbench.store.results import ResultsStore

    store = ResultsStore(args.results)

    def why(j) -> str:
        return "" if j.done else (j.note or run.pending_reason(store, j, args.dataset, args.size))

    print(md_table([[j.kind, j.model, j.seed, j.device, "done" if j.done else "pending", why(j), estimate(j)]
                    for j in jobs], ["job", "model", "seed", "device", "state", "why pending", "estimate"]))
    pending = len(todo)
    eta = sum(estimates.values())
    print(f"{pending} of {len(jobs)} jobs pending" + (f": {run.about(eta)} of this machine, one after another "
                                                      f"(measured epoch times x epochs per run)" if pending else ""))
    from bloodbench.store.results import ResultsStore
    from bloodbench.sweep.jobs import Context

    store = ResultsStore(args.results)
    root = store.root.resolve()
    data_dir = os.path.abspath(args.data_dir) if args.data_dir else None
    ctx = Context(args.dataset, args.size, str(root), data_dir, args.verify)
    if pending and not args.dry_run:
        store.ensure_writable()
    if params is not None:
        return _slurm(jobs, ctx, params, args)
    from bloodbench.sweep import executors

    gpus = executors.visible_gpus()
    in_process = args.jobs in (None, 1) and not gpus  # one after another, as before --jobs existed
    if args.dry_run and pending:
        if in_process:
            print("would run them one after another in this process")
        else:
            slots, threads = executors.local_slots(gpus, args.jobs, executors.cpu_cores())
            where = f"GPUs {','.join(map(str, gpus))}" if gpus else "CPU"
            print(f"would train {len(slots)} at once on {where}, {threads} torch thread(s) each, "
                  f"then profile one at a time")
    if args.dry_run or not pending:
        return 0

    executor: run.Executor = (run.InProcess(args.retries, past=past) if in_process
                              else executors.Local(args.jobs, args.retries, args.time, past=past))
    log = executor.run(jobs, ctx)
    ran = [j for j in log["jobs"] if not j.get("failed")]
    print(f"finished {len(ran)} jobs in {log['wall_seconds']:.0f}s")
    elsewhere = [j for j in ran if j["status"].startswith("running elsewhere")]
    if elsewhere:
        print(f"{len(elsewhere)} job(s) are running in another worker; `bloodbench run --status` shows them")
    put_off = [j for j in ran if j.get("deferred") or j["status"].startswith("noisy")]
    if put_off:
        print(f"{len(put_off)} profile(s) to redo on a quieter machine (busy or noisy now); they stay pending: "
              f"run the same command again later")
    if not args.no_report:
        from bloodbench.report import write_report

        written = write_report(args.results)
        print(f"report: {len(written)} files regenerated under reports/")
    failed = [j for j in log["jobs"] if j.get("failed")]
    if failed:
        from bloodbench.sweep.claims import list_failures

        failures = list_failures(root)

        def what(j) -> str:
            f = failures.get(j.get("run_id")) or {}
            how = (f"not retried, another attempt would meet it again: {f.get('error')}"
                   if f.get("retryable") is False else f"after {f.get('attempts', args.retries + 1)} attempts")
            return (f"{j['kind']} {j['model']}" + (f" seed {j['seed']}" if j["seed"] is not None else "")
                    + f" ({how}" + (f"; log: {j['log']}" if j.get("log") else "") + ")")

        err = BloodbenchError(f"{len(failed)} of {len(log['jobs'])} jobs failed: {'; '.join(map(what, failed))}; "
                              f"details under {root / 'failures'}; fix what the error says, or rerun the same command "
                              f"to retry them")
        err.exit_code = 1
        raise err
    return 0


def _slurm(jobs, ctx, params: dict, args: argparse.Namespace) -> int:
    from bloodbench.formatting import md_table
    from bloodbench.sweep.executors import Slurm

    submitted = Slurm(params, args.retries, dry_run=args.dry_run).run(jobs, ctx)["jobs"]
    if submitted:
        print(md_table([[e["job"], e["job_id"], e["log"]] for e in submitted], ["job", "slurm job", "log"]))
        print(f"submitted {len(submitted)} tasks; `bloodbench run --status` (same options) follows them")
    return 0


def _print_status(jobs, results: str | None) -> int:
    from bloodbench.formatting import md_table
    from bloodbench.sweep.status import job_states

    rows = job_states(jobs, results)
    print(md_table([[r["job"], r["state"], r["where"], r["log"], r["detail"]] for r in rows],
                   ["job", "state", "where", "log", "detail"]))
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    print(", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    return 0
