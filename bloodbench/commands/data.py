"""``bloodbench data info|download``."""

from __future__ import annotations

import argparse

from bloodbench.commands.common import add_data_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="inspect or download MedMNIST data")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", parser_class=type(p))
    dsub.required = True
    info = dsub.add_parser("info", help="splits, class names, per-class counts and md5 verdict")
    add_data_options(info)
    info.set_defaults(func=cmd_info)
    dl = dsub.add_parser("download", help="download the official file with medmnist's downloader")
    add_data_options(dl)
    dl.set_defaults(func=cmd_download)


def cmd_info(args: argparse.Namespace) -> int:
    from bloodbench import data
    from bloodbench.formatting import md_table

    ds = data.load_dataset(args.dataset, args.size, args.data_dir, verify=args.verify)
    info = ds.info
    print(f"{info.flag} {info.size}x{info.size}, {info.n_channels} channel(s), {info.n_classes} classes, "
          f"task {info.task}")
    print(f"file: {ds.path}  md5: {ds.md5_verdict}")
    counts = {s: ds[s].class_counts(info.n_classes).tolist() for s in data.SPLITS}
    rows = [[i, name] + [counts[s][i] for s in data.SPLITS] for i, name in enumerate(info.class_names)]
    rows.append(["", "total"] + [len(ds[s]) for s in data.SPLITS])
    print(md_table(rows, ["label", "class", *data.SPLITS], numeric_from=2))
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from bloodbench import data

    path = data.download(args.dataset, args.size, args.data_dir)
    print(f"downloaded {path}")
    return 0
