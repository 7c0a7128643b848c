"""The committed results and report: every figure traceable to a record, the report up to date."""

from __future__ import annotations

import math

import pytest

from bloodbench.config import NOT_HASHED, ProfileConfig, TrainConfig, recipe_hash
from bloodbench.leaderboard import load_leaderboard
from bloodbench.report import write_report
from bloodbench.store.results import REPO_RESULTS, ResultsStore, config_hash
from bloodbench.store.schema import is_finished

PROVENANCE = ("model", "config", "config_hash", "dataset", "size", "env", "created_at")
ENV = ("device_name", "torch", "cuda", "git_commit", "python")


@pytest.fixture(scope="module")
def published():
    if not REPO_RESULTS.is_dir():
        pytest.fail(f"the committed results {REPO_RESULTS} are missing from this checkout")
    store = ResultsStore(REPO_RESULTS)
    return store.records("train"), store.records("profile")


def test_every_committed_record_carries_its_provenance(published):
    train, profile = published
    assert train and profile
    for rec in train + profile:
        missing = [k for k in PROVENANCE if k not in rec] + [f"env.{k}" for k in ENV if k not in rec["env"]]
        assert not missing, f"{rec['run_id']} lacks {missing}"
        assert rec["env"]["git_commit"] and rec["env"]["device_name"]
    for rec in train:
        assert isinstance(rec["seed"], int) and rec["config"]["seed"] == rec["seed"]
        assert rec["status"] in ("finished", "diverged") and rec["stop_reason"]


def test_every_committed_run_id_is_the_one_its_config_makes(published):
    """Run ids and recipe hashes come from the settings objects: a sweep in progress resumes across
    a change of the code only while these stay as they were written."""
    train, profile = published
    for rec in train:
        cfg = TrainConfig(**rec["config"])
        assert cfg.run_id == rec["run_id"] and cfg.hash() == rec["config_hash"]
        assert recipe_hash(rec["config"]) == config_hash(
            {k: v for k, v in rec["config"].items() if k not in NOT_HASHED and k != "seed"})
    for rec in profile:
        cfg = ProfileConfig.from_dict(rec["config"])
        assert cfg.as_dict() == rec["config"]
        assert cfg.run_id(rec["model"]) == rec["run_id"] and cfg.hash() == rec["config_hash"]


def test_published_readme_matches_the_records(published, tmp_path):
    """reports/README.md's leaderboard is what `bloodbench report` makes of the committed records."""
    write_report(REPO_RESULTS, tmp_path)
    committed = (REPO_RESULTS.parent / "README.md").read_text()

    def leaderboard(text: str) -> str:
        return text.split("## Leaderboard", 1)[1].split("\n## ", 1)[0]

    assert leaderboard((tmp_path / "README.md").read_text()) == leaderboard(committed), \
        "reports/ is stale: run `bloodbench report` and commit it"
    board = load_leaderboard(REPO_RESULTS)
    trained = [r for r in board.to_records() if r["seeds"] and r["kind"] == "model"]
    assert trained
    recipes: dict[tuple, list[float]] = {}  # the finished seeds of each recipe, as the records say
    for rec in published[0]:
        if is_finished(rec) and not rec.get("learned_nothing"):
            key = (rec["model"], rec["dataset"], rec["size"], recipe_hash(rec["config"]))
            recipes.setdefault(key, []).append(rec["test"]["acc"])
    for row in trained:  # each model row is the mean test accuracy of one recipe's seeds
        means = [(len(accs), sum(accs) / len(accs)) for (m, d, s, _), accs in recipes.items()
                 if (m, d, s) == (row["model"], row["dataset"], row["size"])]
        assert any(n == row["seeds"] and math.isclose(mean, row["acc_mean"], rel_tol=1e-9) for n, mean in means), \
            f"{row['model']}: {row['seeds']} seeds at {row['acc_mean']} is no recipe's mean ({means})"
