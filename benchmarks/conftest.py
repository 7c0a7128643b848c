"""pytest-benchmark suite settings: quick on CPU by default, ``--bb-full`` for GPU runs.

Run with an explicit path (pyproject's testpaths only names tests/)::

    pytest benchmarks/ --benchmark-json out.json                 # quick: 28 px, few rounds, 1 CPU thread
    pytest benchmarks/ --bb-full --bb-device cuda --benchmark-json gpu.json

Each benchmark fills its ``extra_info`` through the ``record_info`` fixture, which refuses an
entry missing a key of its kind (``KIND_KEYS`` in bloodbench/store/benchjson.py): inference and train_step entries carry
``EXTRA_INFO_KEYS``, the shape the leaderboard ingests, so it cannot drift silently.
"""

from __future__ import annotations

import platform
import warnings
from dataclasses import dataclass

import pytest
import torch

from bloodbench.data import SIZES
from bloodbench.errors import BloodbenchError
from bloodbench.models import list_models
from bloodbench.runtime.envinfo import git_commit, resolve_device
from bloodbench.runtime.precision import PRECISIONS, check_precision
from bloodbench.store.benchjson import EXTRA_INFO_KEYS, KIND_KEYS, MACHINE_KEYS, extra_info_problem  # noqa: F401


def check_extra_info(info: dict) -> dict:
    """``info`` if it has every key of its kind; a missing key fails the benchmark, not the ingest later."""
    problem = extra_info_problem(info)
    if problem:
        raise ValueError(f"{problem} (see KIND_KEYS in bloodbench/store/benchjson.py)")
    return info


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("bloodbench", "bloodbench benchmark suite")
    g.addoption("--bb-full", action="store_true",
                help="full sweep: sizes 28/64/128/224, inference at batch 1 and 64, train batch 128, more rounds")
    g.addoption("--bb-device", default="auto", help="auto, cpu or cuda (default: auto)")
    g.addoption("--bb-size", type=int, action="append", default=None, choices=SIZES,
                help="image size(s) to run (repeatable; default 28, or all with --bb-full)")
    g.addoption("--bb-precision", default="fp32", choices=PRECISIONS, help="autocast precision (default fp32)")
    g.addoption("--bb-models", default=None, help="comma-separated subset of registry models (default: all)")
    g.addoption("--bb-threads", type=int, default=None,
                help="CPU threads for torch (default: 1 in the quick CPU mode, else torch's own)")


@dataclass(frozen=True)
class Plan:
    """How much to run: rounds are budgeted by time so heavy models do not dominate on CPU."""

    device: torch.device
    precision: str
    full: bool
    sizes: tuple[int, ...]
    infer_batches: tuple[int, ...]
    train_batch: int
    infer_budget_s: float
    train_budget_s: float
    min_rounds: int
    max_rounds: int
    warmup_rounds: int

    def rounds(self, call_s: float, kind: str) -> int:
        budget = self.infer_budget_s if kind == "inference" else self.train_budget_s
        lo = self.min_rounds if kind == "inference" else max(3, self.min_rounds // 2)
        return int(min(self.max_rounds, max(lo, budget / max(call_s, 1e-6))))


def _plan(config: pytest.Config) -> Plan:
    precision = config.getoption("--bb-precision")
    try:
        device = resolve_device(config.getoption("--bb-device"))
        check_precision(precision, device)
    except BloodbenchError as exc:
        raise pytest.UsageError(str(exc)) from None
    full = config.getoption("--bb-full")
    sizes = tuple(config.getoption("--bb-size") or (SIZES if full else (28,)))
    if full:
        return Plan(device, precision, True, sizes, (1, 64), 128, 5.0, 10.0, 20, 500, 10)
    return Plan(device, precision, False, sizes, (1,), 32, 0.5, 1.5, 5, 30, 1)


def pytest_configure(config: pytest.Config) -> None:
    """Fix the thread count once for the session; it is recorded in machine_info.

    The quick CPU mode defaults to one thread: on a small shared machine, OpenMP threads
    spin-wait against other processes and multi-threaded timings swing 10-100x.
    """
    threads = config.getoption("--bb-threads", default=None)
    if threads is None and not config.getoption("--bb-full", default=False):
        try:
            quick_cpu = resolve_device(config.getoption("--bb-device", default="auto")).type == "cpu"
        except BloodbenchError:
            quick_cpu = False  # reported as a usage error at collection
        threads = 1 if quick_cpu else None
    if threads:
        torch.set_num_threads(threads)
    warnings.filterwarnings("ignore", category=FutureWarning, module="torch.jit")


def _selected_models(config: pytest.Config) -> list[str]:
    names = list_models()
    wanted = config.getoption("--bb-models")
    if wanted:
        subset = [n.strip() for n in wanted.split(",") if n.strip()]
        unknown = sorted(set(subset) - set(names))
        if unknown:
            raise pytest.UsageError(f"--bb-models: unknown model(s) {', '.join(unknown)}")
        names = [n for n in names if n in subset]
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    plan = _plan(metafunc.config)
    if "model_name" in metafunc.fixturenames:
        metafunc.parametrize("model_name", _selected_models(metafunc.config))
    if "size" in metafunc.fixturenames:
        metafunc.parametrize("size", plan.sizes, ids=[f"{s}px" for s in plan.sizes])
    if "infer_batch" in metafunc.fixturenames:
        metafunc.parametrize("infer_batch", plan.infer_batches, ids=[f"bs{b}" for b in plan.infer_batches])


@pytest.fixture
def record_info(benchmark):
    """``record_info(**info)``: check ``info`` against its kind's keys, then store it as extra_info."""
    def fill(**info) -> None:
        benchmark.extra_info.update(check_extra_info(info))

    return fill


@pytest.fixture(scope="session")
def plan(request: pytest.FixtureRequest) -> Plan:
    return _plan(request.config)


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """GPU, CUDA, cuDNN and torch versions and our commit: pytest-benchmark only records the CPU."""
    cuda = torch.cuda.is_available()
    machine_info["torch"] = torch.__version__
    machine_info["torch_threads"] = torch.get_num_threads()
    machine_info["cuda"] = torch.version.cuda if cuda else None
    machine_info["cudnn"] = torch.backends.cudnn.version() if cuda else None
    machine_info["python_implementation_version"] = platform.python_version()
    if cuda:
        props = torch.cuda.get_device_properties(0)
        machine_info["gpu"] = {"name": props.name, "count": torch.cuda.device_count(),
                               "capability": f"{props.major}.{props.minor}",
                               "memory_gb": round(props.total_memory / 2**30, 1)}
        machine_info["gpu_name"] = props.name
    else:
        machine_info["gpu"] = None
        machine_info["gpu_name"] = None
    machine_info["bb_device"] = config.getoption("--bb-device")
    machine_info["bb_full"] = bool(config.getoption("--bb-full"))
    machine_info["git_commit"] = git_commit()
    assert set(MACHINE_KEYS) <= set(machine_info)  # the marks the leaderboard ingests by
