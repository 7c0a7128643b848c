"""scripts/gpu_travel.sh: what it takes out of the work tree before a device call, and that git gives it back."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_travel.sh"
TAKEN = ["reports/README.md", "reports/explain/m/gradcam.png", "reports/plots/acc.png", "reports/models/m.md",
         "bloodbench/models/published/m.safetensors", "reports/results/train/m-s0/test_predictions.npz"]
KEPT = ["bloodbench/cli.py", "bloodbench/models/published/manifest.json", "reports/results/train/m-s0/record.json",
        "reports/results/profile/m.json", "reports/benchmarks/train_settings_cpu.json", "docs/GPU_RUN.md"]

pytestmark = pytest.mark.skipif(shutil.which("git") is None or shutil.which("bash") is None,
                                reason="needs git and bash")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def _travel(repo: Path, action: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "scripts/gpu_travel.sh", action], cwd=repo, capture_output=True, text=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A committed tree laid out like the project's, each file with its own path as content."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(SCRIPT, tmp_path / "scripts" / "gpu_travel.sh")
    for rel in TAKEN + KEPT:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel * 100)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tree")
    return tmp_path


def test_trim_takes_out_what_the_oneshot_never_reads_and_restore_puts_it_back(repo):
    trimmed = _travel(repo, "trim")
    assert trimmed.returncode == 0, trimmed.stderr
    assert f"took out {len(TAKEN)} tracked files" in trimmed.stdout
    assert "travels: 0.0 MiB of the device's 64 MiB" in trimmed.stdout
    assert [rel for rel in TAKEN if (repo / rel).exists()] == []
    assert [rel for rel in KEPT if not (repo / rel).exists()] == []  # records, code, manifest: the run reads them

    restored = _travel(repo, "restore")
    assert restored.returncode == 0 and "0 tracked files still missing" in restored.stdout
    assert all((repo / rel).read_text() == rel * 100 for rel in TAKEN + KEPT)
    assert _git(repo, "status", "--porcelain") == ""


def test_trim_refuses_a_tree_with_uncommitted_changes_and_takes_nothing(repo):
    (repo / "bloodbench/cli.py").write_text("edited")
    refused = _travel(repo, "trim")
    assert refused.returncode == 2
    assert refused.stderr.strip() == ("error: the work tree has uncommitted changes: commit them first "
                                      "(restore puts back what git has)")
    assert all((repo / rel).exists() for rel in TAKEN)


def test_size_counts_untracked_files_and_says_when_over_the_limit(repo):
    (repo / "big.bin").write_bytes(b"\0" * (65 * 1024 * 1024))  # untracked, not ignored: it travels too
    over = _travel(repo, "size")
    assert over.returncode == 1
    assert "travels: 65.0 MiB of the device's 64 MiB" in over.stdout
    assert "run `bash scripts/gpu_travel.sh trim`" in over.stderr
    (repo / ".git/info/exclude").write_text("/big.bin\n")  # ignored and not carried: it stays home
    assert _travel(repo, "size").returncode == 0


def test_an_unknown_action_prints_the_usage(repo):
    wrong = _travel(repo, "shrink")
    assert wrong.returncode == 2 and wrong.stderr.strip() == "usage: bash scripts/gpu_travel.sh size|trim|restore"
