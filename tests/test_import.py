"""`bloodbench results import`: results from another machine (a GPU one-shot tar, a contributor's folder)
are checked and merged; what fails is refused with one line and nothing of it is written."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli
from records_factory import profile_record, train_record, write_store

from bloodbench.config import TrainConfig
from bloodbench.store.predictions import save_predictions
from bloodbench.store.results import ResultsStore


def real_train_record(seed: int, acc: float, **options) -> dict:
    """A factory record whose config, config_hash and run_id are the ones the trainer would write."""
    cfg = TrainConfig.build("baseline_cnn", seed=seed, **options)
    rec = train_record("baseline_cnn", seed, acc)
    rec.update(run_id=cfg.run_id, config=cfg.as_dict(), config_hash=cfg.hash())
    return rec


def add_run(root: Path, rec: dict) -> Path:
    """Write ``rec`` and its test predictions (n rows of the record's test split) into the store at ``root``."""
    rec["artifacts"] = {**rec["artifacts"], "predictions": "test_predictions.npz"}
    store = write_store(root, [rec])
    n, k = rec["test"]["n"], rec["num_classes"]
    rng = np.random.default_rng(rec["seed"])
    save_predictions(store.run_dir(rec["run_id"]) / "test_predictions.npz", np.arange(n) % k,
                     rng.dirichlet(np.ones(k), size=n))
    return store.run_dir(rec["run_id"])


def make_tgz(src: Path, dest: Path, prefix: str = "reports/results") -> Path:
    """Like the GPU one-shot's `tar czf results.tgz reports/results`: members under ``prefix``."""
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(src, arcname=prefix)
    return dest


def counts(out: str, kind: str) -> list[int]:
    """(imported, duplicate, conflict, refused) from the summary table's row for ``kind``."""
    row = next(line for line in out.splitlines() if line.startswith(f"| {kind} "))
    return [int(c) for c in row.strip("|").split("|")[1:]]


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()} \
        if root.exists() else {}


@pytest.fixture
def incoming(tmp_path) -> Path:
    """A contributor's store: two training runs with predictions, one profile, one sweep log."""
    src = tmp_path / "incoming"
    add_run(src, real_train_record(0, 0.95))
    add_run(src, real_train_record(1, 0.96))
    write_store(src, [profile_record("baseline_cnn", device="cuda", macs=10_000_000, p50=0.4, throughput=9000)])
    (src / "runs").mkdir()
    (src / "runs" / "run-2025-01-12T080000Z-gpu-1.json").write_text(json.dumps({"jobs": [], "env": {}}))
    return src


def test_a_tgz_with_new_records_merges_and_a_second_import_is_all_duplicates(incoming, tmp_path, capsys):
    tgz = make_tgz(incoming, tmp_path / "results.tgz")
    dest = tmp_path / "local"
    rc, out, err = run_cli(capsys, "results", "import", tgz, "--results", dest)
    assert rc == 0 and err == ""
    assert counts(out, "train") == [2, 0, 0, 0] and counts(out, "profile") == [1, 0, 0, 0]
    assert counts(out, "run log") == [1, 0, 0, 0]
    assert files(dest) == files(incoming)  # records, predictions and the log, byte for byte
    store = ResultsStore(dest)
    assert sorted(r["seed"] for r in store.records("train")) == [0, 1] and len(store.records("profile")) == 1

    before = {p: p.stat().st_mtime_ns for p in dest.rglob("*") if p.is_file()}
    rc, out, _ = run_cli(capsys, "results", "import", tgz, "--results", dest)
    assert rc == 0 and counts(out, "train") == [0, 2, 0, 0] and counts(out, "profile") == [0, 1, 0, 0]
    assert counts(out, "run log") == [0, 1, 0, 0]
    assert {p: p.stat().st_mtime_ns for p in dest.rglob("*") if p.is_file()} == before  # nothing rewritten


def test_a_conflicting_record_is_reported_and_the_local_one_kept(tmp_path, capsys):
    local_rec, theirs = real_train_record(0, 0.95), real_train_record(0, 0.97)
    run_id = local_rec["run_id"]
    local_dir = add_run(tmp_path / "local", local_rec)
    add_run(tmp_path / "incoming", theirs)
    kept = files(local_dir)
    rc, out, _ = run_cli(capsys, "results", "import", tmp_path / "incoming", "--results", tmp_path / "local")
    assert rc == 0 and counts(out, "train") == [0, 0, 1, 0]
    assert f"conflict train {run_id}: kept the local record; the incoming one differs in " in out
    assert files(local_dir) == kept
    assert ResultsStore(tmp_path / "local").get("train", run_id)["test"]["acc"] == 0.95


def test_an_unfinished_local_record_gives_way_to_a_finished_incoming_one(tmp_path, capsys):
    diverged = dict(real_train_record(0, 0.95), status="diverged", stop_reason="diverged", test=None)
    write_store(tmp_path / "local", [diverged])
    add_run(tmp_path / "incoming", real_train_record(0, 0.97))
    rc, out, _ = run_cli(capsys, "results", "import", tmp_path / "incoming", "--results", tmp_path / "local")
    assert rc == 0 and "replaced the local record (status 'diverged') with the incoming finished one" in out
    rec = ResultsStore(tmp_path / "local").get("train", diverged["run_id"])
    assert rec["status"] == "finished" and rec["test"]["acc"] == 0.97
    assert (tmp_path / "local" / "train" / diverged["run_id"] / "test_predictions.npz").is_file()


def _edit_config(rec):
    rec["config"]["lr"] = 0.5  # a different recipe under the old run_id


def _swap_seed(rec):
    rec["seed"] = 7


def _drop_git_commit(rec):
    del rec["env"]["git_commit"]


def _wrong_config_hash(rec):
    rec["config_hash"] = "0123456789"


def _not_finished_right(rec):
    del rec["test"]["acc"]


@pytest.mark.parametrize("edit, why", [
    (_edit_config, "its config hashes to "),
    (_swap_seed, "its config says seed 1, the record 7"),
    (_drop_git_commit, "its env has no git_commit"),
    (_wrong_config_hash, "its config_hash '0123456789' is not its config's"),
    (_not_finished_right, "status is 'finished' but it has no test accuracy"),
])
def test_a_record_that_does_not_check_out_is_refused_and_not_written(tmp_path, capsys, edit, why):
    good, bad = real_train_record(0, 0.95), real_train_record(1, 0.96)
    add_run(tmp_path / "incoming", good)
    edit(bad)
    bad_dir = add_run(tmp_path / "incoming", bad)
    rc, out, _ = run_cli(capsys, "results", "import", tmp_path / "incoming", "--results", tmp_path / "local")
    assert rc == 1 and counts(out, "train") == [1, 0, 0, 1]
    refused = [line for line in out.splitlines() if line.startswith("refused ")]
    assert len(refused) == 1 and refused[0].startswith(f"refused {bad_dir / 'record.json'}: {why}")
    assert [p.name for p in (tmp_path / "local" / "train").iterdir()] == [good["run_id"]]  # nothing of it


def test_a_profile_record_whose_run_id_is_not_its_configs_is_refused(tmp_path, capsys):
    rec = profile_record("baseline_cnn", device="cuda", macs=10_000_000, p50=0.4, throughput=9000)
    rec["config"]["precision"] = "bf16"  # measured another way than its run_id says
    rec["precision"] = "bf16"
    write_store(tmp_path / "incoming", [rec])
    rc, out, _ = run_cli(capsys, "results", "import", tmp_path / "incoming", "--results", tmp_path / "local")
    assert rc == 1 and counts(out, "profile") == [0, 0, 0, 1]
    assert "its run_id is not the one its config makes (baseline_cnn-bloodmnist-28-cuda-bf16-" in out
    assert not (tmp_path / "local" / "profile").exists()


@pytest.mark.parametrize("damage, why", [
    (lambda p: p.unlink(), "its predictions file test_predictions.npz is missing"),
    (lambda p: save_predictions(p, np.zeros(10), np.full((10, 8), 1 / 8)),
     "its predictions file test_predictions.npz has 10 rows, its test split n = 1711"),
    (lambda p: save_predictions(p, np.zeros(1711), np.full((1711, 3), 1 / 3)),
     "its predictions file test_predictions.npz has 3 classes, the record 8"),
    (lambda p: p.write_bytes(b"torn"), "its predictions file test_predictions.npz is unreadable"),
])
def test_a_run_with_a_missing_or_wrong_prediction_file_is_refused(tmp_path, capsys, damage, why):
    rec = real_train_record(0, 0.95)
    run_dir = add_run(tmp_path / "incoming", rec)
    damage(run_dir / "test_predictions.npz")
    rc, out, _ = run_cli(capsys, "results", "import", tmp_path / "incoming", "--results", tmp_path / "local")
    assert rc == 1 and f"refused {run_dir / 'record.json'}: {why}" in out
    assert files(tmp_path / "local") == {}


def test_unsafe_tar_members_are_refused_and_the_rest_imported(incoming, tmp_path, capsys):
    tgz = make_tgz(incoming, tmp_path / "results.tgz", prefix="results")
    with tarfile.open(tmp_path / "evil.tar", "w") as tar:
        with tarfile.open(tgz) as src:
            for m in src:
                tar.addfile(m, src.extractfile(m) if m.isfile() else None)
        for name in ("../evil.json", "/tmp/bloodbench-evil.json", "results/profile/../../../evil2.json"):
            data = b'{"evil": true}'
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("results/profile/passwd.json")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    rc, out, _ = run_cli(capsys, "results", "import", tmp_path / "evil.tar", "--results", tmp_path / "local")
    assert rc == 1 and counts(out, "archive") == [0, 0, 0, 4]
    assert f"refused {tmp_path / 'evil.tar'}:../evil.json: it is a path leaving the archive ('..')" in out
    assert f"refused {tmp_path / 'evil.tar'}:/tmp/bloodbench-evil.json: it is an absolute path" in out
    assert f"refused {tmp_path / 'evil.tar'}:results/profile/passwd.json: it is a link" in out
    assert not (tmp_path / "evil.json").exists() and not Path("/tmp/bloodbench-evil.json").exists()
    assert counts(out, "train") == [2, 0, 0, 0] and counts(out, "profile") == [1, 0, 0, 0]
    assert files(tmp_path / "local") == files(incoming)


def test_a_folder_with_the_store_nested_inside_is_imported(incoming, tmp_path, capsys):
    contributor = tmp_path / "contrib"
    (contributor / "reports").mkdir(parents=True)
    incoming.rename(contributor / "reports" / "results")
    (contributor / "bloodbench" / "train").mkdir(parents=True)  # a package folder named train/ is not a store
    rc, out, _ = run_cli(capsys, "results", "import", contributor, "--results", tmp_path / "local")
    assert rc == 0 and out.startswith(f"imported {contributor} into {tmp_path / 'local'}:")
    assert counts(out, "train") == [2, 0, 0, 0]
    assert files(tmp_path / "local") == files(contributor / "reports" / "results")


def test_dry_run_checks_and_reports_but_writes_nothing(incoming, tmp_path, capsys):
    bad = real_train_record(2, 0.9)
    bad["config"]["lr"] = 0.5
    add_run(incoming, bad)
    rc, out, _ = run_cli(capsys, "results", "import", make_tgz(incoming, tmp_path / "r.tgz"), "--results",
                         tmp_path / "local", "--dry-run")
    assert rc == 1 and out.startswith("dry run: nothing written")
    assert counts(out, "train") == [2, 0, 0, 1] and counts(out, "profile") == [1, 0, 0, 0]
    assert not (tmp_path / "local").exists()


def checkpoint(path: Path, epoch: int, config: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": epoch, "config": config, "model_state": {"w": torch.zeros(2)}}, path)


def test_a_cut_off_training_is_imported_only_when_ahead_of_the_local_one(tmp_path, capsys):
    cfg = TrainConfig.build("baseline_cnn", seed=0)
    theirs = tmp_path / "incoming" / "train" / cfg.run_id
    checkpoint(theirs / "last.pt", 5, cfg.as_dict())
    checkpoint(theirs / "best.pt", 4, cfg.as_dict())
    local = ResultsStore(tmp_path / "local").run_dir(cfg.run_id)
    checkpoint(local / "last.pt", 7, cfg.as_dict())  # the local one is further along: kept
    rc, out, _ = run_cli(capsys, "results", "import", tmp_path / "incoming", "--results", tmp_path / "local")
    assert rc == 0 and f"conflict checkpoint {cfg.run_id}: kept the local last.pt (8 epochs done; the incoming one 6)" \
        in out
    assert torch.load(local / "last.pt", weights_only=True)["epoch"] == 7 and not (local / "best.pt").exists()

    checkpoint(local / "last.pt", 2, cfg.as_dict())  # behind: the incoming one goes in, so `run` resumes it
    rc, out, _ = run_cli(capsys, "results", "import", tmp_path / "incoming", "--results", tmp_path / "local")
    assert rc == 0 and counts(out, "checkpoint") == [1, 0, 0, 0]
    assert (local / "last.pt").read_bytes() == (theirs / "last.pt").read_bytes()
    assert (local / "best.pt").read_bytes() == (theirs / "best.pt").read_bytes()


def test_a_checkpoint_under_another_runs_name_is_refused(tmp_path, capsys):
    cfg, other = TrainConfig.build("baseline_cnn", seed=0), TrainConfig.build("baseline_cnn", seed=1)
    checkpoint(tmp_path / "incoming" / "train" / other.run_id / "last.pt", 3, cfg.as_dict())
    rc, out, _ = run_cli(capsys, "results", "import", tmp_path / "incoming", "--results", tmp_path / "local")
    assert rc == 1 and "its run_id does not name its model, dataset, size and seed" in out
    assert files(tmp_path / "local") == {}


def written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make, why", [
    (lambda d: d / "missing.tgz", "{path} does not exist: give a results tar"),
    (lambda d: written(d / "notes.txt", b"hi"), "{path} is neither a tar"),
    (lambda d: written(d / "torn.tgz", b"\x1f\x8b\x08junk"), "{path} is not a readable tar"),
    (lambda d: make_tgz(Path(__file__).parent.parent / "docs", d / "docs.tgz", "docs"),
     "no results store in {path}: expected train/<run_id>/record.json"),
])
def test_bad_input_is_one_error_line_and_exit_2(tmp_path, capsys, make, why):
    path = make(tmp_path)
    rc, out, err = run_cli(capsys, "results", "import", path, "--results", tmp_path / "local")
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("error: " + why.format(path=path)) and "tar czf results.tgz reports/results" in err
    assert not (tmp_path / "local").exists()  # not even created

