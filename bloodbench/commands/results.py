"""``bloodbench results import``: merge results made elsewhere (a GPU tar, a contributor's folder) into the store."""

from __future__ import annotations

import argparse

from bloodbench.commands.common import add_results_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("results", help="merge results from another machine or a contributor into the store")
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    actions.required = True
    imp = actions.add_parser("import", help="check and merge a results tar (.tar, .tgz, .tar.gz) or folder",
                             description="Check every record in PATH (schema, env, run_id against its config, "
                                         "prediction files) and copy in what is new; refused records are listed "
                                         "and nothing of them is written. Exit 0: nothing refused; 1: something "
                                         "refused; 2: PATH unusable.")
    imp.add_argument("path", metavar="PATH", help="a tar of a results folder (e.g. from `tar czf results.tgz "
                                                  "reports/results`) or the folder itself")
    add_results_option(imp)
    imp.add_argument("--dry-run", action="store_true", help="check and report, write nothing")
    imp.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    from bloodbench.remote.importer import import_results, render

    report = import_results(args.path, args.results, dry_run=args.dry_run)
    print(render(report), end="")
    return 1 if report.count("refused") else 0
