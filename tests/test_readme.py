"""Every example of the README's "Python API" and "Your own model (plug-ins)" sections runs as written,
on the real data, into a results folder of its own."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from bloodbench.choices import PLUGIN_GROUP

SECTIONS = ("Python API", "Your own model (plug-ins)")


def section_blocks(title: str) -> list[tuple[str, str]]:
    """(language, code) of each fenced block in the README section ``## title``."""
    text = (REPO / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```(\w+)\n(.*?)```", text[start:end if end > 0 else None], flags=re.S)


@pytest.fixture
def sandbox(tmp_path, real_data_dir) -> tuple[Path, dict[str, str]]:
    """A working folder and an environment: its own results, the real data, this checkout's bloodbench."""
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "BLOODBENCH_RESULTS": str(tmp_path / "results"), "BLOODBENCH_DATA_DIR": str(real_data_dir),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), "MPLBACKEND": "Agg",
           "OMP_NUM_THREADS": "1"}
    env.pop("BLOODBENCH_PLUGINS", None)
    return work, env


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(argv)}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_each_section_has_examples():
    assert [lang for lang, _ in section_blocks(SECTIONS[0])] == ["python"]
    assert [lang for lang, _ in section_blocks(SECTIONS[1])] == ["python", "bash", "toml"]


@pytest.mark.slow
def test_the_python_api_example_runs(sandbox):
    work, env = sandbox
    (code,) = [c for _, c in section_blocks("Python API")]
    out = run([sys.executable, "-c", code], work, env)
    results = Path(env["BLOODBENCH_RESULTS"])
    (record,) = [json.loads(p.read_text()) for p in results.glob("train/*/record.json")]
    assert record["model"] == "baseline_cnn" and f"{record['run_id']} {record['test']['acc']}" in out
    assert len(list(results.glob("profile/*.json"))) == 1
    lines = out.rstrip().splitlines()
    assert re.search(r"^\d+ +baseline_cnn ", out, flags=re.M)  # the leaderboard's row, printed
    assert re.fullmatch(r"\(2, \d+\)", lines[-1])  # load_results: the train and the profile record


@pytest.mark.slow
def test_the_plugin_example_runs(sandbox):
    work, env = sandbox
    module, commands, toml = [c for _, c in section_blocks("Your own model (plug-ins)")]
    name = module.splitlines()[0].removeprefix("# ").strip()
    (work / name).write_text(module)
    outputs = []
    for line in commands.splitlines():
        argv = shlex.split(line, comments=True)
        assert argv[0] == "bloodbench"
        outputs.append(run([sys.executable, "-m", "bloodbench", *argv[1:]], work, env))
    results = Path(env["BLOODBENCH_RESULTS"])
    (record,) = [json.loads(p.read_text()) for p in results.glob("train/*/record.json")]
    assert record["model"] == "my_net" and record["model_info"]["plugin"] == "my_models"
    board = outputs[-1]
    assert re.search(r"^\| my_net\S* ", board, flags=re.M) and "my_net (my_models)" in board
    # the entry point names the same module under the group the registry reads
    entry = tomllib.loads(toml)["project"]["entry-points"][PLUGIN_GROUP]
    assert entry == {"my_models": name.removesuffix(".py")}
