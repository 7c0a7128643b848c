"""bloodbench: accuracy-vs-cost benchmarking of blood-cell image classifiers.

The Python API (``bloodbench/api.py``): ``list_models``, ``get_model``, ``register_model``,
``load_results``, ``leaderboard``, ``profile``, ``train``. It is loaded on first use, so
``import bloodbench`` imports neither torch nor pandas.
"""

import sys
import types

from bloodbench._version import __version__

API = ("list_models", "get_model", "register_model", "load_results", "leaderboard", "profile", "train")
__all__ = [*API, "__version__"]


def __getattr__(name: str):
    if name in API:
        from bloodbench import api

        return getattr(api, name)
    raise AttributeError(f"module 'bloodbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *API})


class _Package(types.ModuleType):
    """``train``, ``profile`` and ``leaderboard`` name both a function of the API and a subpackage.
    Importing a subpackage sets it as an attribute of its parent; here that is skipped for these
    names, so ``bloodbench.train(...)`` stays the function, while ``from bloodbench.train import
    Trainer`` still reaches the subpackage (through ``sys.modules``)."""

    def __setattr__(self, name: str, value: object) -> None:
        if name in API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
