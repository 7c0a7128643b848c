"""The layering of docs/ARCHITECTURE.md, enforced: import-linter's layers contract in pyproject.toml."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def _layers() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    return next(c["layers"] for c in config["contracts"] if c["type"] == "layers")


def test_the_import_layers_hold():
    exe = Path(sys.executable).with_name("lint-imports")
    assert exe.is_file(), "import-linter is missing: pip install -e '.[test]'"
    proc = subprocess.run([str(exe), "--no-cache", "--config", str(REPO / "pyproject.toml")], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stdout[proc.stdout.find("Broken contracts"):][-4000:] or proc.stderr


def test_every_module_of_the_package_root_has_its_layer():
    """A module left out of the contract could import anything: each one is placed."""
    named = {m.strip() for layer in _layers() for m in layer.split("|")}
    package = REPO / "bloodbench"
    root = {f"bloodbench.{p.stem}" for p in package.iterdir()
            if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert not sorted(root - named), "add these to [tool.importlinter] layers in pyproject.toml"
