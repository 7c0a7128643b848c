"""The Python API: what ``import bloodbench`` gives, each function the twin of a CLI command.

```python
import bloodbench
bloodbench.list_models()                             # bloodbench models
net = bloodbench.get_model("resnet18")               # an nn.Module, 3 channels, 8 classes
bloodbench.train("baseline_cnn", seed=0)             # bloodbench train  -> the train record (dict)
bloodbench.profile("baseline_cnn")                   # bloodbench profile -> the profile record (dict)
bloodbench.profile(net)                              # an nn.Module of your own: counts and latency only
bloodbench.leaderboard()                             # bloodbench leaderboard -> DataFrame, the CLI's rows
bloodbench.load_results("reports/results")           # every record as a flat DataFrame
```

Heavy modules (torch, pandas) are imported inside the functions: ``import bloodbench`` stays
light, and loads this module only when one of its names is used (``bloodbench/__init__.py``).
Plug-in models (``bloodbench/models/plugins.py``) join the registry on its first use here.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

from bloodbench.errors import BloodbenchError

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

PathLike = str | os.PathLike


def list_models(family: str | None = None) -> list[str]:
    """Registered model names (built-in and plug-in), sorted; optionally only one family."""
    from bloodbench.models import list_models as registry_names

    return registry_names(family)


def get_model(name: str, weights: str | None = None, **kwargs: Any) -> "nn.Module":
    """A registry model, built for ``in_channels`` (default 3) and ``num_classes`` (default 8).

    ``weights``: ``"published"`` (the weights published with bloodbench, sha256-checked), a
    ``.safetensors`` file or a run's ``best.pt``; None builds freshly initialised weights. Other
    keywords go to the builder.
    """
    from bloodbench import models

    return models.get_model(name, weights=weights, **kwargs)


def register_model(*args: Any, **kwargs: Any):
    """The registry's decorator (:func:`bloodbench.models.register_model`), for a plug-in's models."""
    from bloodbench.models import register_model as register

    return register(*args, **kwargs)


def load_results(path: PathLike | None = None, kind: str | None = None) -> "pd.DataFrame":
    """Every valid record of a results folder (default: ``$BLOODBENCH_RESULTS``, else ``reports/results``)
    as one flat DataFrame, nested fields as ``a.b`` columns; ``kind``: only ``train`` or ``profile``."""
    from bloodbench.store.results import load_results as load, resolve_results_dir

    root = resolve_results_dir(path)
    if not root.is_dir():
        raise BloodbenchError(f"results directory {root} does not exist: check the path")
    if kind not in (None, "train", "profile"):
        raise BloodbenchError(f"kind must be 'train' or 'profile' (got {kind!r})")
    return load(root, kind)


def leaderboard(results: PathLike | None = None, *, dataset: str | None = None, size: int | None = None,
                models: Sequence[str] | None = None, device: str | None = None, precision: str | None = None,
                sort: str | None = "acc", benchmark_json: Sequence[PathLike] = ()) -> "pd.DataFrame":
    """The leaderboard as a DataFrame: the rows and columns of ``bloodbench leaderboard --format csv|json``,
    with the same options (``models``: a list of names)."""
    from bloodbench.leaderboard import load_leaderboard

    board = load_leaderboard(results, benchmark_json=list(benchmark_json), device=device, precision=precision,
                             dataset=dataset, size=size, models=list(models) if models else None, sort=sort)
    return board.to_frame()


def profile(model_or_name: "str | nn.Module", *, dataset: str = "bloodmnist", size: int = 28,
            device: str = "cpu", results: PathLike | None = None, save: bool = True,
            **settings: Any) -> dict[str, Any]:
    """Profile a registry model as ``bloodbench profile NAME`` does: the profile record, written to the
    results store unless ``save=False``. ``settings``: those of :meth:`bloodbench.config.ProfileConfig.build`
    (``precision``, ``batch_size``, ``batch_sizes``, ``rounds``, ``threads``, ...).

    Given an ``nn.Module`` instead (one of your own, not registered), its counts (params, MACs, FLOPs,
    weights' size) and batch-``batch_size`` latency for a ``dataset`` image at ``size`` px; nothing is
    written, since a record needs a registry name (register it as a plug-in to put it on the leaderboard).
    """
    from bloodbench.config import ProfileConfig

    config = ProfileConfig.build(dataset=dataset, size=size, device=device, **settings)
    if isinstance(model_or_name, str):
        from bloodbench.profile import profile_model

        return profile_model(model_or_name, config, results=results, save=save)
    return _profile_module(model_or_name, config)


def _profile_module(model: "nn.Module", c: Any) -> dict[str, Any]:
    """Counts and latency of a module in the setting ``c`` (a ProfileConfig), as a profile record has them."""
    from torch import nn

    from bloodbench.data import dataset_info
    from bloodbench.profile import cost_breakdown, measure_latency
    from bloodbench.profile.timing import prepare_model

    if not isinstance(model, nn.Module):
        raise BloodbenchError(f"profile() takes a registry name or an nn.Module, not {type(model).__name__}")
    ds = dataset_info(c.dataset, c.size)
    shape = (1, ds.n_channels, c.size, c.size)
    costs = cost_breakdown(model.eval(), shape, memory=False)
    prepared = prepare_model(model, c.device, c.channels_last, c.compile)
    latency = measure_latency(prepared, (c.batch_size, *shape[1:]), c.device, c.precision, c.warmup, c.iters,
                              c.channels_last, c.compile, c.threads, rounds=c.rounds, warmup_s=c.warmup_s,
                              cuda_graphs=c.cuda_graphs, round_s=c.round_s)
    keep = ("params", "trainable_params", "model_size_mb", "macs", "flops", "unsupported_ops", "top_modules")
    return {"model": type(model).__name__, "dataset": c.dataset, "size": c.size, "device": c.device,
            "device_name": c.device_name, "precision": c.precision, **{k: getattr(costs, k) for k in keep},
            "latency": latency.as_dict()}


def train(name: str, *, results: PathLike | None = None, data_dir: PathLike | None = None, force: bool = False,
          progress: bool = False, verify: bool = True, **options: Any) -> dict[str, Any]:
    """Train as ``bloodbench train NAME`` does and return the train record; a finished run is returned,
    not retrained, unless ``force``. ``options``: the recipe (``seed``, ``epochs``, ``lr``, ``batch_size``,
    ``limit_train``, ``device``, ...; unset ones come from the model's registry recipe)."""
    from bloodbench.train import train as fit

    return fit(name, results=None if results is None else str(results),
               data_dir=None if data_dir is None else str(data_dir), force=force, progress=progress,
               verify=verify, **options)
