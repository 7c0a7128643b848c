"""Options shared by several sub-commands, defined once."""

from __future__ import annotations

import argparse

from bloodbench.data import SIZES


def add_dataset_options(p: argparse.ArgumentParser, size: bool = True) -> None:
    """Which dataset and size a command is about (no file access needed)."""
    p.add_argument("--dataset", default="bloodmnist", help="MedMNIST 2D flag (default: bloodmnist)")
    if size:
        p.add_argument("--size", type=int, default=28, choices=SIZES, help="image size in px (default: 28)")


def add_data_options(p: argparse.ArgumentParser, size: bool = True) -> None:
    add_dataset_options(p, size)
    p.add_argument("--data-dir", default=None,
                   help="folder with the MedMNIST .npz files (default: $BLOODBENCH_DATA_DIR, then ~/.medmnist)")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip the md5 check (for files you made yourself)")


def add_results_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", default=None,
                   help="results directory (default: $BLOODBENCH_RESULTS, then reports/results)")


def add_format_option(p: argparse.ArgumentParser, choices=("table", "json"), default: str = "table") -> None:
    p.add_argument("--format", choices=choices, default=default, help=f"output format (default: {default})")
