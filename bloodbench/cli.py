"""``bloodbench`` command line: one sub-command module per stage of the pipeline.

Each module in :mod:`bloodbench.commands` has ``register(subparsers)``. User errors
(:class:`BloodbenchError`, bad options) print one line and exit non-zero, no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from bloodbench._version import __version__
from bloodbench.errors import BloodbenchError, Stopped, sigterm_stops

# Order is the order shown in --help: the pipeline, data -> ... -> report.
COMMAND_MODULES = ("data", "models", "train", "evaluate", "profile", "run", "oneshot", "results", "leaderboard",
                   "report", "explain", "weights", "predict", "export")


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad option as one line plus a hint, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="bloodbench", description="Accuracy-vs-cost benchmarking of blood-cell image "
                           "classifiers on MedMNIST: data -> models -> train -> profile -> leaderboard / report.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import MODULE, which registers models of its own with register_model (repeatable; "
                             "also $BLOODBENCH_PLUGINS, comma-separated, and installed packages' entry points "
                             "in the group bloodbench.models)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"bloodbench.commands.{name}").register(sub)
    return parser


def load_plugins(modules: list[str]) -> None:
    """Plug-in models join the registry before any command reads it or a record of theirs; the registry
    (and torch) is imported only when there is a plug-in to load, so a plain command stays fast."""
    from importlib.metadata import entry_points

    from bloodbench.choices import PLUGIN_GROUP, PLUGINS_ENV
    from bloodbench.commands.common import comma_list

    if not (modules or os.environ.get(PLUGINS_ENV) or entry_points(group=PLUGIN_GROUP)):
        return
    from bloodbench.models.plugins import load_plugins as load

    load(modules)
    if modules:  # a sweep's worker processes load them too
        os.environ[PLUGINS_ENV] = ",".join(dict.fromkeys(comma_list(os.environ.get(PLUGINS_ENV)) + modules))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        load_plugins(args.plugin)
        with sigterm_stops():
            rc = args.func(args)
    except BloodbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        how = "stopped by SIGTERM" if isinstance(exc, Stopped) else "interrupted"
        print(f"error: {how}; finished work is saved, run the same command again to resume", file=sys.stderr)
        return getattr(exc, "exit_code", 130)
    except BrokenPipeError:  # `bloodbench leaderboard | head`: the reader left, that is not our error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:  # a write outside the atomic helper on a full disk: the same one line
        from bloodbench.store.fsutil import no_space

        full = no_space(exc)
        if full is None:
            raise
        print(f"error: {full}", file=sys.stderr)
        return full.exit_code
    return int(rc or 0)


if __name__ == "__main__":
    raise SystemExit(main())
