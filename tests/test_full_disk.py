"""Issue 24 item 5: a full (or over-quota, or read-only) filesystem is one `error: no space left on <path>`
line, old files stay intact, `run` retries nothing a retry cannot fix, and an empty claim is stale.
The disk is made full by OSError(ENOSPC) from os.write / os.replace: no real full disk needed."""

from __future__ import annotations

import errno
import json
import os
import time

import pytest
from conftest import run_cli
from records_factory import profile_record, train_record, write_store
from submitit.core.utils import FailedJobError

from bloodbench.errors import BloodbenchError
from bloodbench.store import fsutil
from bloodbench.store.fsutil import NoSpace, atomic_write_bytes
from bloodbench.sweep import claims, executors, jobs, run

FULL = {errno.ENOSPC: "No space left on device", errno.EDQUOT: "Disk quota exceeded",
        errno.EROFS: "Read-only file system"}


def fill_disk(monkeypatch, call: str = "write", code: int = errno.ENOSPC) -> None:
    """From now on ``os.<call>`` fails as on a full filesystem."""
    def full(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, call, full)




def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert "Traceback" not in err and lines, err
    assert lines[-1].startswith("error: no space left on "), err
    assert sum(line.startswith("error:") for line in lines) == 1
    return lines[-1]


@pytest.mark.parametrize("code", sorted(FULL))
@pytest.mark.parametrize("call", ["write", "replace"])
def test_a_write_on_a_full_disk_is_one_error_and_the_old_file_stays(tmp_path, monkeypatch, call, code):
    target = tmp_path / "record.json"
    target.write_text("old")
    fill_disk(monkeypatch, call, code)
    with pytest.raises(NoSpace) as caught:
        atomic_write_bytes(target, b"new")
    assert str(caught.value).startswith(f"no space left on {tmp_path} ({FULL[code]}): free some space")
    assert isinstance(caught.value, BloodbenchError) and target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]  # no temp file left behind


@pytest.fixture
def store(tmp_path):
    recs = [train_record("m", s, acc) for s, acc in enumerate((0.9676, 0.9691, 0.9662))]
    recs.append(profile_record("m", device="cpu", macs=21_000_000, p50=22.0, throughput=126))
    write_store(tmp_path / "r", recs)
    return tmp_path / "r"


def test_leaderboard_output_on_a_full_disk(store, tmp_path, capsys, monkeypatch):
    board = tmp_path / "out" / "board.md"
    board.parent.mkdir()
    board.write_text("the old board\n")
    fill_disk(monkeypatch, "write")
    rc, out, err = run_cli(capsys, "leaderboard", "--results", store, "-o", board)
    assert rc == 2 and out == ""
    assert one_error_line(err).startswith(f"error: no space left on {board.parent} (No space left on device)")
    assert board.read_text() == "the old board\n"


def test_report_on_a_full_disk(store, tmp_path, capsys, monkeypatch):
    out_dir = tmp_path / "report"
    assert run_cli(capsys, "report", "--results", store, "--out", out_dir)[0] == 0
    (out_dir / "README.md").write_text("an older report\n")  # so that the report has something to rewrite
    before = {p: p.read_bytes() for p in out_dir.rglob("*") if p.is_file()}
    fill_disk(monkeypatch, "replace", errno.EDQUOT)
    rc, _, err = run_cli(capsys, "report", "--results", store, "--out", out_dir)
    assert rc == 2 and "(Disk quota exceeded)" in one_error_line(err)
    assert {p: p.read_bytes() for p in out_dir.rglob("*") if p.is_file()} == before


def test_train_on_a_full_disk(tmp_path, capsys, monkeypatch, real_data_dir):
    fill_disk(monkeypatch, "replace")
    rc, _, err = run_cli(capsys, "train", "baseline_cnn", "--epochs", "1", "--limit-train", "64", "--batch-size", "64",
                         "--quiet", "--results", tmp_path / "r", "--data-dir", real_data_dir)
    assert rc == 2
    one_error_line(err)
    assert not list((tmp_path / "r").rglob("record.json"))


def test_run_on_a_full_disk_stops_at_once_without_retries(tmp_path, capsys, monkeypatch, real_data_dir):
    fill_disk(monkeypatch, "replace")
    rc, out, err = run_cli(capsys, "run", "--models", "baseline_cnn", "--seeds", "0,1", "--epochs", "1",
                           "--limit-train", "64", "--no-profile", "--no-report", "--device", "cpu",
                           "--results", tmp_path / "r", "--data-dir", real_data_dir)
    assert rc == 2
    line = one_error_line(err)
    assert "rerun the same command to retry" not in line and "attempts" not in line
    attempts = [ln for ln in out.splitlines() + err.splitlines() if "attempt 1 of 3 failed" in ln]
    assert len(attempts) == 1 and "not retried" in attempts[0]  # seed 1 never started, nothing retried
    assert "attempt 2 of 3" not in out + err
    assert claims.list_claims(tmp_path / "r") == {}  # released on the way out


@pytest.mark.parametrize("exc, again", [
    (RuntimeError("node lost"), True),
    (OSError(errno.EIO, "Input/output error"), True),
    (OSError(errno.ENOSPC, "No space left on device"), False),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), False),
    (PermissionError(errno.EACCES, "Permission denied"), False),
    (BloodbenchError("unknown model"), False),
    (NoSpace("no space left on /x"), False),
])
def test_only_errors_a_retry_can_fix_are_retried(tmp_path, monkeypatch, capsys, exc, again):
    job = run.plan(["baseline_cnn"], [0], "bloodmnist", 28, str(tmp_path), [], "cpu", {}, profile=False)[0]
    calls = []

    def failing(job, ctx):
        calls.append(1)
        raise exc

    monkeypatch.setattr(jobs, "run_job", failing)
    assert jobs.retryable(exc) is again
    with pytest.raises(NoSpace if fsutil.no_space(exc) is not None else type(exc)):
        jobs.run_with_retries(job, jobs.Context("bloodmnist", 28, str(tmp_path)), retries=2)
    assert len(calls) == (3 if again else 1)
    failure = claims.list_failures(tmp_path)[job.run_id]
    assert failure["attempts"] == len(calls) and failure["retryable"] is again


def test_a_local_worker_on_a_full_disk_stops_the_sweep(tmp_path):
    class Failed:
        paths = type("P", (), {"stdout": tmp_path / "log.out"})()

        def result(self):
            raise FailedJobError("Job (task=0) failed during processing with trace:\n----\nTraceback ...\n"
                                 "bloodbench.store.fsutil.NoSpace: no space left on /r/train (No space left on "
                                 "device): free some space\n")

    job = run.Job("train", "baseline_cnn", 0, run_id="x")
    with pytest.raises(NoSpace, match=r"^no space left on /r/train \(No space left on device\): free some space$"):
        executors._collect(Failed(), job, 1, 2, tmp_path)


def test_an_oserror_outside_the_atomic_writer_is_one_line_too(monkeypatch, capsys):
    from bloodbench.commands import models

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/cache/costs.json")

    monkeypatch.setattr(models, "cmd_models", full)
    rc, _, err = run_cli(capsys, "models")
    assert rc == 2 and one_error_line(err).startswith("error: no space left on /data/cache/costs.json")
    assert fsutil.no_space(OSError(errno.EIO, "I/O")) is None


# -- claims -------------------------------------------------------------------------------------
def test_an_empty_or_unreadable_claim_is_stale_and_taken_over(tmp_path):
    root = tmp_path
    for run_id, content in (("empty", b""), ("binary", b"\x00\xff\xfe"), ("list", b"[1, 2]")):
        path = claims.claim_path(root, run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        fresh = claims.list_claims(root)[run_id]
        assert fresh["unreadable"] and fresh["stale"] is None  # may be being written this very moment
        old = time.time() - 2 * 86400
        os.utime(path, (old, old))  # left behind two days ago
        assert claims.list_claims(root)[run_id]["stale"].startswith("the claim file is empty or unreadable")
        claim = claims.acquire(root, run_id, heartbeat_s=None)
        assert isinstance(claim, claims.Claim) and claim.took_over.startswith(f"took over the stale claim on {run_id}")
        assert json.loads(path.read_text())["pid"] == os.getpid()
        claim.release()


def test_a_claim_that_cannot_be_written_leaves_no_empty_file(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(claims.json, "dump", full)
    with pytest.raises(NoSpace, match="^no space left on "):
        claims.acquire(tmp_path, "r1", heartbeat_s=None)
    assert not claims.claim_path(tmp_path, "r1").exists()
