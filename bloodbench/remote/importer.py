"""``bloodbench results import``: merge another results store (a tar or a folder) into this one.

What comes in is checked as strictly as a record written here: its kind's schema
(:func:`bloodbench.store.results.record_problem`), an ``env`` block that says where it ran, a run_id
that its config hashes to, and prediction files that load and match the record. What fails
is refused with one line and nothing of it is written; what passes is copied with the
store's atomic writes, artifacts first and the record last, so a crash never leaves a record
without its files. A run_id already here is a duplicate (the same record) or a conflict (a
different one: the local record is kept unless it is unfinished and the incoming one
finished). A training cut off before its record (``last.pt`` only) is copied in when it is
ahead of any local one, so ``bloodbench run`` resumes it.
"""

from __future__ import annotations

import contextlib
import os
import tarfile
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator

from bloodbench.errors import BloodbenchError
from bloodbench.store.fsutil import atomic_write_bytes
from bloodbench.store.predictions import LEGACY_KEYS, PREDICTION_FILES, load_predictions, plain_name
from bloodbench.store.results import ResultsStore, config_hash, read_json, record_problem
from bloodbench.store.verdicts import profile_choice

STATUSES = ("imported", "duplicate", "conflict", "refused")
#: Summary rows, in order: records, cut-off trainings, sweep time logs, tar members refused on sight.
KINDS = ("train", "profile", "checkpoint", "run log", "archive")
#: What a record's ``env`` must say: on what, with which torch, from which code.
ENV_KEYS = ("device_name", "torch", "git_commit")
#: ``artifacts`` keys naming prediction files (checkpoints are git-ignored, so optional).
PREDICTION_KEYS = (*PREDICTION_FILES, *LEGACY_KEYS.values())
TAR_SUFFIXES = (".tar", ".tgz", ".tar.gz")
HOW_TO_TAR = "`tar czf results.tgz reports/results` on the machine that ran it"
#: tarfile's own member check (Python >= 3.10.12 / 3.11.4); before it, member_problem is the whole check.
DATA_FILTER = hasattr(tarfile, "data_filter")
FILTER_ERRORS = (tarfile.FilterError,) if DATA_FILTER else ()
#: How deep under PATH the results root (the folder holding train/ or profile/) is looked for.
MAX_DEPTH = 6


@dataclass
class Item:
    """One thing found in the incoming store, what is done with it, and the files that go in."""

    kind: str
    name: str
    status: str
    detail: str = ""
    copies: list[tuple[Path, Path]] = field(default_factory=list)  # (source, destination), record last

    def line(self) -> str:
        return f"{self.status} {self.name}: {self.detail}" if self.status == "refused" else \
            f"{self.status} {self.kind} {self.name}: {self.detail}"


@dataclass
class ImportReport:
    source: Path
    root: Path
    items: list[Item]
    dry_run: bool

    def count(self, status: str) -> int:
        return sum(item.status == status for item in self.items)


# -- the incoming folder -------------------------------------------------------------------
def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a tar member may not be extracted (it would land outside the folder, or is not a plain file)."""
    path = PurePosixPath(member.name)
    if path.is_absolute():
        return "it is an absolute path"
    if ".." in path.parts:
        return "it is a path leaving the archive ('..')"
    if member.issym() or member.islnk():
        return "it is a link"
    if not (member.isfile() or member.isdir()):
        return "it is not a plain file (device, fifo)"
    return None


def extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> str | None:
    """Extract one plain file into ``dest``, or say why not (the folders come as its parents)."""
    problem = member_problem(member)
    if problem or member.isdir():
        return problem
    try:
        if DATA_FILTER:
            tar.extract(member, dest, filter="data")
        else:
            tar.extract(member, dest, set_attrs=False)
    except FILTER_ERRORS as exc:
        return f"refused by tarfile's data filter ({exc})"
    return None


def extract_tar(path: Path, dest: Path) -> list[Item]:
    """Extract the safe members of ``path`` into ``dest``; the unsafe ones, refused."""
    refused = []
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                problem = extract_member(tar, member, dest)
                if problem:
                    refused.append(Item("archive", f"{path}:{member.name}", "refused", problem))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BloodbenchError(f"{path} is not a readable tar ({str(exc).splitlines()[0] if str(exc) else exc}): "
                              f"make it again with {HOW_TO_TAR}") from None
    return refused


@contextlib.contextmanager
def unpacked(path: Path) -> Iterator[tuple[Path, Callable[[Path], str], list[Item]]]:
    """``(folder, label, refused members)``: a folder as it is, a tar extracted into a temp folder.

    ``label`` names an incoming file as the user knows it (``results.tgz:train/<id>/record.json``).
    """
    if not path.exists():
        raise BloodbenchError(f"{path} does not exist: give a results tar (made with {HOW_TO_TAR}) "
                              f"or a results folder")
    if path.is_dir():
        yield path, str, []
        return
    if not (path.name.endswith(TAR_SUFFIXES) or tarfile.is_tarfile(path)):
        raise BloodbenchError(f"{path} is neither a tar ({', '.join(TAR_SUFFIXES)}) nor a folder: give a results "
                              f"tar (made with {HOW_TO_TAR}) or a results folder")
    with tempfile.TemporaryDirectory(prefix="bloodbench-import-") as tmp:
        top = Path(tmp)
        refused = extract_tar(path, top)
        yield top, lambda p: f"{path}:{p.relative_to(top).as_posix()}", refused


def holds_runs(folder: Path) -> bool:
    """Whether ``folder`` is a store root: records or checkpoints under ``train/``, records under ``profile/``
    (a folder that merely has subfolders of those names, like the bloodbench package, is not)."""
    return any(next(folder.glob(pattern), None) for pattern in
               ("train/*/record.json", "train/*/last.pt", "profile/*.json"))


def find_store_root(top: Path, shown: Path) -> Path:
    """The shallowest folder under ``top`` that holds runs (:func:`holds_runs`): the store's root."""
    level = [top]
    for _ in range(MAX_DEPTH + 1):
        hits = [d for d in level if holds_runs(d)]
        if len(hits) > 1:
            names = ", ".join(str(h.relative_to(top)) for h in hits)
            raise BloodbenchError(f"{shown} holds several results stores ({names}): import them one at a time")
        if hits:
            return hits[0]
        level = sorted(c for d in level for c in d.iterdir() if c.is_dir() and not c.is_symlink())
    raise BloodbenchError(f"no results store in {shown}: expected train/<run_id>/record.json or "
                          f"profile/<run_id>.json (e.g. under reports/results/); make the tar with {HOW_TO_TAR}")


# -- checks ----------------------------------------------------------------------------------
def env_problem(rec: dict) -> str | None:
    env = rec.get("env")
    if not isinstance(env, dict):
        return "it has no env block (device, torch, git commit)"
    missing = [key for key in ENV_KEYS if not env.get(key)]
    return f"its env has no {', '.join(missing)}" if missing else None


def train_id_problem(run_id: str, fields: dict, config: dict) -> str | None:
    """Why ``run_id`` is not the one ``config`` makes (``<model>-<dataset>-<size>-s<seed>-<hash>``)."""
    from bloodbench.config import NOT_HASHED

    for key in ("model", "dataset", "size", "seed"):
        if key in config and config[key] != fields.get(key):
            return f"its config says {key} {config[key]!r}, the record {fields.get(key)!r}"
    want = config_hash({k: v for k, v in config.items() if k not in NOT_HASHED})
    prefix = f"{fields.get('model')}-{fields.get('dataset')}-{fields.get('size')}-s{fields.get('seed')}-"
    if not run_id.startswith(prefix):
        return f"its run_id does not name its model, dataset, size and seed ({prefix}{want} expected)"
    if run_id != prefix + want:
        return f"its config hashes to {want}, not to its run_id's {run_id[len(prefix):]} (config edited?)"
    return None


def profile_id_problem(rec: dict) -> str | None:
    """Why a profile record's run_id is not the one its config makes (``ProfileConfig.run_id``)."""
    from bloodbench.config import ProfileConfig

    config = rec["config"]
    for key in ("dataset", "size", "device", "precision"):
        if key not in config:
            return f"its config has no {key!r}"
        if rec.get(key) is not None and config[key] != rec[key]:
            return f"its config says {key} {config[key]!r}, the record {rec[key]!r}"
    try:
        want = ProfileConfig.from_dict(config).run_id(rec["model"])
    except (TypeError, ValueError) as exc:
        return f"its config is not a profile setting ({exc})"
    return None if rec["run_id"] == want else f"its run_id is not the one its config makes ({want})"


def config_problem(rec: dict, kind: str) -> str | None:
    """The run_id and ``config_hash`` against the record's ``config``."""
    config = rec.get("config")
    if not isinstance(config, dict):
        return "it has no config to check its run_id against"
    problem = train_id_problem(rec["run_id"], rec, config) if kind == "train" else profile_id_problem(rec)
    want = rec["run_id"].rsplit("-", 1)[-1]  # the config's hash, once the run_id checks out
    if not problem and rec.get("config_hash") != want:
        problem = f"its config_hash {rec.get('config_hash')!r} is not its config's ({want})"
    return problem


def predictions_problem(run_dir: Path, rec: dict) -> str | None:
    """Every prediction file ``artifacts`` names is beside the record, loads, and fits the record."""
    for key, name in (rec.get("artifacts") or {}).items():
        if not plain_name(name):
            return f"its artifact {key} {name!r} is not a file name beside the record"
        if key not in PREDICTION_KEYS:
            continue
        path = run_dir / name
        if path.is_symlink() or not path.is_file():
            return f"its {key} file {name} is {'a link' if path.is_symlink() else 'missing'}"
        try:
            y_true, y_score = load_predictions(path, fix="export it again from the machine that made it")
        except BloodbenchError as exc:
            return f"its {key} file {str(exc).replace(str(path), name)}"
        classes, split = rec.get("num_classes"), "val" if key.startswith("val") else "test"
        n = (rec.get(split) or {}).get("n")
        if classes is not None and y_score.shape[1] != classes:
            return f"its {key} file {name} has {y_score.shape[1]} classes, the record {classes}"
        if n is not None and len(y_true) != n:
            return f"its {key} file {name} has {len(y_true)} rows, its {split} split n = {n}"
    return None


def record_check(path: Path, rec: Any, kind: str) -> str | None:
    """Everything that makes an incoming record importable, or the first thing that does not."""
    if path.is_symlink():
        return "it is a link"
    problem = record_problem(rec, kind) or env_problem(rec) or config_problem(rec, kind)
    if problem:
        return problem
    where = path.parent.name if kind == "train" else path.stem
    if where != rec["run_id"]:
        return f"its run_id is {rec['run_id']}, but it lies under the name {where}"
    return predictions_problem(path.parent, rec) if kind == "train" else None


# -- decisions ------------------------------------------------------------------------------
def differing_keys(a: dict, b: dict, limit: int = 4) -> str:
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(keys[:limit]) + (", ..." if len(keys) > limit else "")


def settle(kind: str, run_id: str, incoming: dict, local: Any, copies: list[tuple[Path, Path]]) -> Item:
    """New, duplicate or conflict: what becomes of an incoming record given the local one (or None)."""
    if local is None:
        return Item(kind, run_id, "imported", copies=copies)
    if local == incoming:
        return Item(kind, run_id, "duplicate")
    broken = record_problem(local, kind)
    if broken:
        return Item(kind, run_id, "conflict", f"replaced the local record ({broken}) with the incoming one", copies)
    if kind == "train" and local.get("status") != "finished" and incoming.get("status") == "finished":
        return Item(kind, run_id, "conflict", f"replaced the local record (status {local.get('status')!r}) "
                                              f"with the incoming finished one", copies)
    if kind == "profile":  # the store's own rule: quiet over noisy, then the rounds that agree better
        take, why = profile_choice(incoming, local, tie="spread")
        if take is not None:
            return Item(kind, run_id, "conflict", why, copies if take else [])
    return Item(kind, run_id, "conflict", f"kept the local record; the incoming one differs in "
                                          f"{differing_keys(local, incoming)}")


def plan_record(path: Path, kind: str, store: ResultsStore, label: Callable[[Path], str]) -> Item:
    rec = read_json(path)
    problem = record_check(path, rec, kind)
    if problem:
        return Item(kind, label(path), "refused", problem)
    run_id = rec["run_id"]
    dest = store.record_path(kind, run_id)
    copies = []
    if kind == "train":  # artifacts first (predictions, checkpoints where they travelled), the record last
        names = dict.fromkeys(n for n in (rec.get("artifacts") or {}).values())
        copies = [(path.parent / n, dest.parent / n) for n in names if (path.parent / n).is_file()]
    local = read_json(dest) if dest.is_file() else None
    return settle(kind, run_id, rec, local, [*copies, (path, dest)])


def checkpoint_epoch(path: Path) -> tuple[dict | None, str | None]:
    """``(checkpoint, None)`` or ``(None, why it cannot be read)``; tensors only, no code (weights_only)."""
    import torch

    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for torn, foreign or unsafe files
        return None, f"{path.name} is unreadable ({type(exc).__name__})"
    if not isinstance(ck, dict) or not isinstance(ck.get("epoch"), int):
        return None, f"{path.name} has no 'epoch': not a bloodbench training checkpoint"
    return ck, None


def plan_checkpoint(run_dir: Path, store: ResultsStore, label: Callable[[Path], str]) -> Item:
    """A training cut off before its record: its checkpoints go in when they are ahead of the local ones."""
    run_id, last = run_dir.name, run_dir / "last.pt"
    if last.is_symlink() or not last.is_file():
        return Item("checkpoint", label(run_dir), "refused", "no record.json and no last.pt: nothing to resume from")
    ck, problem = checkpoint_epoch(last)
    if ck is not None and isinstance(ck.get("config"), dict):
        problem = train_id_problem(run_id, ck["config"], ck["config"])
    if problem:
        return Item("checkpoint", label(last), "refused", problem)
    if store.record_path("train", run_id).is_file():
        return Item("checkpoint", run_id, "duplicate")  # the local store has the run's outcome already
    local = store.run_dir(run_id) / "last.pt"
    if local.is_file():
        local_ck, _ = checkpoint_epoch(local)
        local_epoch = local_ck["epoch"] if local_ck else -1
        if local.read_bytes() == last.read_bytes():
            return Item("checkpoint", run_id, "duplicate")
        if local_epoch >= ck["epoch"]:
            return Item("checkpoint", run_id, "conflict", f"kept the local last.pt ({local_epoch + 1} epochs done; "
                                                          f"the incoming one {ck['epoch'] + 1})")
    best = run_dir / "best.pt"
    copies = [(best, store.run_dir(run_id) / "best.pt")] if best.is_file() and not best.is_symlink() else []
    return Item("checkpoint", run_id, "imported", copies=[*copies, (last, local)])


def plan_run_log(path: Path, store: ResultsStore, label: Callable[[Path], str]) -> Item:
    """A sweep's time log (runs/*.json): copied when new."""
    log = read_json(path)
    if path.is_symlink() or not isinstance(log, dict):
        return Item("run log", label(path), "refused", str(log) if isinstance(log, str) else "not a JSON object")
    dest = store.root / "runs" / path.name
    if not dest.is_file():
        return Item("run log", path.name, "imported", copies=[(path, dest)])
    if read_json(dest) == log:
        return Item("run log", path.name, "duplicate")
    return Item("run log", path.name, "conflict", "kept the local file of that name")


def plan(root: Path, store: ResultsStore, label: Callable[[Path], str]) -> list[Item]:
    """What to do with everything in the incoming store at ``root``; nothing is written."""
    items = []
    for run_dir in sorted(p for p in (root / "train").glob("*") if p.is_dir() and not p.is_symlink()):
        if (run_dir / "record.json").exists():
            items.append(plan_record(run_dir / "record.json", "train", store, label))
        elif (run_dir / "last.pt").exists() or (run_dir / "best.pt").exists():
            items.append(plan_checkpoint(run_dir, store, label))
    items += [plan_record(p, "profile", store, label) for p in sorted((root / "profile").glob("*.json"))]
    items += [plan_run_log(p, store, label) for p in sorted((root / "runs").glob("*.json"))]
    return items


def apply(items: list[Item]) -> None:
    """Copy each item's files, in order (the record last), with the store's atomic writes."""
    for item in items:
        for src, dest in item.copies:
            atomic_write_bytes(dest, src.read_bytes())


def import_results(path: str | os.PathLike, results: str | os.PathLike | None = None,
                   dry_run: bool = False) -> ImportReport:
    """Check everything in the store at ``path`` (tar or folder) and, unless ``dry_run``, merge it in."""
    path = Path(path).expanduser()
    store = ResultsStore(results)
    with unpacked(path) as (top, label, refused):
        root = find_store_root(top, path)
        if not dry_run:
            store.ensure_writable()  # an unusable store is one line before the checks, not after
        items = [*refused, *plan(root, store, label)]
        if not dry_run:
            apply([item for item in items if item.status != "refused"])
    return ImportReport(path, store.root, items, dry_run)


def render(report: ImportReport) -> str:
    """The summary table (per kind: imported / duplicate / conflict / refused), then one line per
    conflict and refusal."""
    from bloodbench.formatting import md_table

    counts = Counter((item.kind, item.status) for item in report.items)
    kinds = [k for k in KINDS if k in ("train", "profile") or any(kk == k for kk, _ in counts)]
    table = md_table([[k, *(counts[k, s] for s in STATUSES)] for k in kinds], ["kind", *STATUSES], numeric_from=1)
    head = (f"dry run: nothing written; importing {report.source} into {report.root} would give:"
            if report.dry_run else f"imported {report.source} into {report.root}:")
    lines = [item.line() for status in ("conflict", "refused") for item in report.items if item.status == status]
    return "\n".join([head, "", table, *([""] + lines if lines else [])]) + "\n"
