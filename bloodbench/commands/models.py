"""``bloodbench models``: the registry with params and MACs at 28 px / 3 channels / 8 classes."""

from __future__ import annotations

import argparse
import sys

from bloodbench.commands.common import add_format_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list registered models with family, params and MACs")
    add_format_option(p)
    p.add_argument("--family", default=None, help="only this family")
    p.set_defaults(func=cmd_models)


def compute_model_rows(size: int = 28, in_channels: int = 3, num_classes: int = 8,
                       plugins: bool = False) -> list[dict]:
    """Build and count every built-in model, or every plug-in one (fvcore traces each one: seconds)."""
    from bloodbench.models import count_params, create_model, get_model_info, list_models
    from bloodbench.profile import count_macs

    rows = []
    for name in list_models():
        info = get_model_info(name)
        if (info.plugin is not None) != plugins:
            continue
        model = create_model(name, in_channels=in_channels, num_classes=num_classes)
        macs = count_macs(model, (1, in_channels, size, size))
        rows.append({"name": name, "family": info.family, "params": count_params(model), "macs": macs,
                     "flops": 2 * macs, "description": info.description, "origin": info.origin,
                     "plugin": info.plugin, "recipe": dict(info.recipe)})
    return rows


def model_rows(family: str | None = None, size: int = 28, in_channels: int = 3, num_classes: int = 8) -> list[dict]:
    """The registry's rows, from the user cache when neither the models nor torch changed."""
    from bloodbench.store.cache import cached, registry_key

    rows = cached(registry_key(size, in_channels, num_classes),
                  lambda: compute_model_rows(size, in_channels, num_classes))
    from bloodbench.models import get_model_info

    # the recipe is read from the registry each time: a recipe edit does not change the counts cached
    rows = [{**r, "plugin": None, "recipe": dict(get_model_info(r["name"]).recipe)} for r in rows]
    # Plug-ins were loaded with the registry (at CLI start-up), if there are any: their rows are
    # counted every time, not cached, since their source lies outside the cache key.
    plugins = sys.modules.get("bloodbench.models.plugins")
    if plugins is not None and plugins.loaded_plugins():
        rows += compute_model_rows(size, in_channels, num_classes, plugins=True)
    return [r for r in rows if family is None or r["family"] == family]


def cmd_models(args: argparse.Namespace) -> int:
    from bloodbench.formatting import md_table

    rows = model_rows(args.family)
    if args.format == "json":
        from bloodbench.store.fsutil import strict_json

        print(strict_json(rows, indent=1))
        return 0
    table = [[r["name"], r["family"], f"{r['params'] / 1e6:.2f}", f"{r['macs'] / 1e6:.1f}",
              " ".join(f"{k}={v}" for k, v in r["recipe"].items()), r["description"]] for r in rows]
    headers = ["model", "family", "params (M)", "MACs (M)", "recipe (beyond the defaults)", "description"]
    if any(r["plugin"] for r in rows):  # where each model comes from, once plug-ins add some
        table = [t + [f"plug-in: {r['plugin']}" if r["plugin"] else "built-in"] for t, r in zip(table, rows)]
        headers.append("source")
    print(md_table(table, headers))
    print("\nMACs: multiply-accumulates per image at 28x28x3, 8 classes (fvcore); FLOPs = 2 x MACs. Recipe: what a "
          "model's training changes from the defaults (`bloodbench train --help`; bloodbench/config.py TrainConfig).")
    return 0
