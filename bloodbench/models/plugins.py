"""Plug-in models: a registry model that lives outside bloodbench.

Three ways in, all ending in a module that calls :func:`~bloodbench.models.register_model`:

- an installed package's entry point in the group ``bloodbench.models`` (``pyproject.toml``:
  ``[project.entry-points."bloodbench.models"] my_net = "my_pkg.models"``); the value is a module,
  or a ``module:function`` called once loaded;
- ``bloodbench --plugin my_module`` (repeatable), for a quick script; the current folder is searched too;
- ``$BLOODBENCH_PLUGINS``: comma-separated modules, as ``--plugin`` (the CLI puts its ``--plugin``
  modules there, so the workers of a sweep load them as well).

Each model a plug-in registers is marked with its origin (``ModelInfo.plugin``: the distribution,
else the module), which its records keep and ``models``, the leaderboard and the report show. A
plug-in that fails to import, or registers a name already taken (a built-in model, say), is
refused as a whole: the registry is left as it was, so the built-in models keep working. A module
named by ``--plugin`` gives one ``error:`` line; an installed entry point or ``$BLOODBENCH_PLUGINS``
one ``warning:`` line, since every command would otherwise fail on it.

The registry loads the plug-ins on its first use (``list_models``, ``get_model_info``), so the
Python API and a sweep's worker processes see them without asking; the CLI loads them at start-up.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import Iterable

from bloodbench.choices import PLUGIN_GROUP, PLUGINS_ENV
from bloodbench.errors import BloodbenchError, warn
from bloodbench.models import _api


@dataclass(frozen=True)
class Plugin:
    """One loaded plug-in: what named it (module or entry point), its origin, the models it added."""

    source: str
    origin: str
    models: tuple[str, ...]


_LOADED: dict[str, Plugin] = {}
_FAILED: dict[str, str] = {}
_STATE = {"started": False}


def env_modules() -> list[str]:
    """The modules ``$BLOODBENCH_PLUGINS`` names, in order."""
    return [m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",") if m.strip()]


def entry_points() -> list[metadata.EntryPoint]:
    """The installed packages' entry points in the group ``bloodbench.models``, by name."""
    return sorted(metadata.entry_points(group=PLUGIN_GROUP), key=lambda ep: (ep.name, ep.value))


def _add_cwd_to_path() -> None:
    """``--plugin my_module`` finds ``./my_module.py`` as ``python -m`` would (the console script does not)."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)


def _refuse(source: str, error: Exception, before: set[str]) -> BloodbenchError:
    """Undo what a failed plug-in registered, and the one line that says why it was refused."""
    _api.unregister(_api.registered_names() - before)
    if isinstance(error, _api.DuplicateModelError):
        owner = _api.registered(error.name)
        whose = f"plug-in {owner.plugin}'s" if owner is not None and owner.plugin else "a built-in"
        message = (f"plug-in {source} refused: it registers {error.name!r}, the name of {whose} model; "
                   f"register it under another name")
    else:
        message = f"plug-in {source} failed to load: {type(error).__name__}: {error}"
    _FAILED[source] = message
    return BloodbenchError(message)


def _load(source: str, origin: str, load) -> Plugin:
    """Run ``load()`` (an import); mark the models it registered with ``origin``, or undo them all."""
    if source in _LOADED:
        return _LOADED[source]
    before = _api.registered_names()
    try:
        load()
    except Exception as exc:  # noqa: BLE001 - any failure of foreign code refuses the plug-in, in one line
        raise _refuse(source, exc, before) from None
    added = tuple(sorted(_api.registered_names() - before))
    for name in added:
        _api.mark_plugin(name, origin)
    _FAILED.pop(source, None)
    _LOADED[source] = plugin = Plugin(source, origin, added)
    return plugin


def load_module(module: str) -> Plugin:
    """Import ``module`` as a plug-in (``--plugin``): its models are marked with the module's name."""
    def load() -> None:
        _add_cwd_to_path()
        try:
            importlib.import_module(module)
        except BaseException:
            sys.modules.pop(module, None)  # a retry imports it again
            raise

    return _load(module, module, load)


def load_entry_point(ep: metadata.EntryPoint) -> Plugin:
    """Load one entry point of the group: a module, or a ``module:function`` that is then called."""
    dist = getattr(ep, "dist", None)
    origin = dist.name if dist is not None and getattr(dist, "name", None) else ep.value.split(":")[0]

    def load() -> None:
        obj = ep.load()
        if ":" in ep.value and callable(obj):
            obj()

    return _load(f"{ep.name} ({ep.value})", origin, load)


def load_plugins(modules: Iterable[str] = (), *, strict: bool = True) -> list[Plugin]:
    """Load the entry points, ``$BLOODBENCH_PLUGINS`` and ``modules`` (once each).

    ``modules`` (``--plugin``) that fail raise :class:`BloodbenchError` when ``strict``; the others
    only warn, and the registry goes on without them.
    """
    _STATE["started"] = True
    loaded = []
    for ep in entry_points():
        try:
            loaded.append(load_entry_point(ep))
        except BloodbenchError as exc:
            warn(f"{exc}; the other models are unaffected")
    for module in env_modules():
        try:
            loaded.append(load_module(module))
        except BloodbenchError as exc:
            warn(f"{exc} (from ${PLUGINS_ENV}); the other models are unaffected")
    for module in modules:
        try:
            loaded.append(load_module(module))
        except BloodbenchError as exc:
            if strict:
                raise
            warn(str(exc))
    return loaded


def ensure_loaded() -> None:
    """Load the plug-ins once, on the registry's first use (the Python API, a sweep's worker)."""
    if not _STATE["started"]:
        load_plugins()


def loaded_plugins() -> list[Plugin]:
    return list(_LOADED.values())


def failed_hint() -> str:
    """What an unknown model's error adds when a plug-in failed: it may have been that model's."""
    return "".join(f" ({message})" for message in _FAILED.values())


_api.install_plugin_hooks(ensure_loaded, failed_hint)
