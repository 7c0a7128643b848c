"""The settings objects of the two measuring stages, each the source of its records' run ids.

``TrainConfig``: global defaults < the model's registry recipe < explicit options.
``ProfileConfig``: what identifies a profile (the hardware included).

Below train/, profile/ and the leaderboard: all need what a run was made with (``recipe_hash``,
the run ids), and the leaderboard must not import the trainer for it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Sequence

import torch

from bloodbench.choices import (
    CLASS_WEIGHTING,
    DEFAULT_BATCH_SIZES,
    DEFAULT_ROUND_S,
    DEFAULT_ROUNDS,
    DEFAULT_WARMUP_S,
    MONITORS,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    SIZES,
)
from bloodbench.errors import BloodbenchError
from bloodbench.models import get_model_info
from bloodbench.runtime.envinfo import device_kind, device_name, resolve_device
from bloodbench.store.results import config_hash

# Options that change where or how fast a run goes, not what it learns: left out of the hash
# so the same run started on another machine is recognised as the same run.
NOT_HASHED = ("device", "channels_last", "compile", "eval_batch_size")
# Hashed fields that `bloodbench train` has an option for (--batch-size for batch_size, ...).
CLI_FIELDS = ("epochs", "patience", "monitor", "batch_size", "lr", "weight_decay", "optimizer", "schedule",
              "label_smoothing", "class_weighting", "augment", "grad_clip", "limit_train", "precision")


def recipe_hash(config: dict[str, Any]) -> str:
    """What a run learned with, seed aside: runs that share it are seeds of one recipe.

    Fields missing from an older record take today's defaults, so adding an option does not
    split old runs from new ones that leave it at its default.
    """
    values = {}
    for f in fields(TrainConfig):
        if f.name in NOT_HASHED or f.name == "seed":
            continue
        default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        values[f.name] = config.get(f.name, default)
    return config_hash(values)


def device_defaults(device: str, precision: str) -> dict[str, Any]:
    """What a device cannot do of the recipe: a bf16 recipe runs fp16 autocast on a GPU without bf16.

    Otherwise the recipe's precision is the same on CPU and GPU, so a CPU seed and a GPU seed of one
    recipe share its hash and its leaderboard row.
    """
    if device_kind(device) != "cuda" or precision != "bf16":
        return {}
    # Planned on a host without CUDA (a Slurm login node) for GPU workers: assume bf16, as on every
    # data-centre GPU since the A100; a worker on an older GPU records under its own (fp16) run id.
    bf16 = torch.cuda.is_bf16_supported() if torch.cuda.is_available() else True
    return {} if bf16 else {"precision": "fp16"}


@dataclass
class TrainConfig:
    model: str
    dataset: str = "bloodmnist"
    size: int = 28
    seed: int = 0
    # Convergence recipe (issue 19): LR x0.3 after patience // 3 flat epochs, stop after
    # ``patience``; the epoch budget only caps a run that keeps improving.
    epochs: int = 60
    patience: int = 10
    min_delta: float = 1e-4
    monitor: str = "val_acc"
    batch_size: int = 128
    eval_batch_size: int = 512
    optimizer: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 5e-4
    momentum: float = 0.9
    schedule: str = "plateau"
    warmup_epochs: int = 1
    label_smoothing: float = 0.0
    class_weighting: str = "none"
    augment: bool = True
    color_jitter: float = 0.1
    grad_clip: float | None = 5.0
    # fp32 + channels_last: on this project's Xeon (avx512_bf16, no AMX) bf16 autocast slows the training
    # step of 10 of 12 models (0.68-0.90x) and channels_last speeds up 9 (1.11-1.76x), measured quietly in
    # reports/benchmarks/train_settings_cpu.json. bf16 did not hold validation accuracy either: baseline_cnn's
    # bf16 plateau recipe reached 97.35 % mean best val over seeds 0-2, its fp32 twin 97.70 % (higher in 3 of 3
    # seeds), so baseline_cnn moved to fp32. resnet18 keeps the bf16 recipe it converged with on the H200.
    # On the AMD EPYC (avx512_bf16) of reports/benchmarks/train_settings_cpu_amd-epyc.json bf16 + channels_last
    # is 1.40-3.26x for 11 of 13 models, but precision is recipe, not speed: one recipe per model on every
    # machine, and the accuracy loss above is the same arithmetic there, so fp32 stays. densenet121 is the
    # exception: its fp32 seeds are too long for a CPU session (its recipe says why).
    precision: str = "fp32"
    channels_last: bool = True
    compile: bool = False
    device: str = "auto"
    limit_train: int | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, model: str, **overrides: Any) -> "TrainConfig":
        """Defaults, then the registry recipe (less what the device cannot do), then non-None ``overrides``."""
        info = get_model_info(model)
        names = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: v for k, v in info.recipe.items() if k in names}
        values.update(device_defaults(overrides.get("device") or cls.device, values.get("precision", cls.precision)))
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - names
        if unknown:
            raise BloodbenchError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        cfg = cls(model=model, **{k: v for k, v in values.items() if k != "model"})
        cfg.validate()
        return cfg

    def validate(self) -> None:
        def bad(msg: str) -> None:
            raise BloodbenchError(msg)

        if self.size not in SIZES:
            bad(f"--size {self.size} is not available: choose one of {', '.join(map(str, SIZES))}")
        if self.batch_size < 1:
            bad(f"--batch-size must be at least 1 (got {self.batch_size})")
        if self.epochs < 1:
            bad(f"--epochs must be at least 1 (got {self.epochs})")
        if self.patience < 1:
            bad(f"--patience must be at least 1 (got {self.patience})")
        if not self.lr > 0:
            bad(f"--lr must be positive (got {self.lr})")
        if not 0 <= self.label_smoothing < 1:
            bad(f"--label-smoothing must be in [0, 1) (got {self.label_smoothing})")
        for name, value, allowed in (("optimizer", self.optimizer, OPTIMIZERS), ("schedule", self.schedule, SCHEDULES),
                                     ("precision", self.precision, PRECISIONS),
                                     ("class-weighting", self.class_weighting, CLASS_WEIGHTING),
                                     ("monitor", self.monitor, MONITORS)):
            if value not in allowed:
                bad(f"--{name} {value!r} is not one of {', '.join(allowed)}")
        if not self.weight_decay >= 0:
            bad(f"--weight-decay must be >= 0 (got {self.weight_decay})")
        if self.grad_clip is not None and not self.grad_clip >= 0:
            bad(f"--grad-clip must be >= 0 or off (got {self.grad_clip})")
        if self.limit_train is not None and self.limit_train < 1:
            bad(f"--limit-train must be at least 1 (got {self.limit_train})")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def hash(self) -> str:
        return config_hash({k: v for k, v in self.as_dict().items() if k not in NOT_HASHED})

    @property
    def run_id(self) -> str:
        return f"{self.model}-{self.dataset}-{self.size}-s{self.seed}-{self.hash()}"


def recipe_cli_args(config: dict[str, Any]) -> tuple[list[str], list[str]]:
    """`bloodbench train` options that rebuild a record's ``config`` (same hash, same run id)
    from today's defaults and the model's recipe, and the differing fields no option sets.

    Only what differs is listed, so the command stays short; dataset, size and seed are left
    to the caller. A field missing from an older record counts as today's default, as in
    :func:`recipe_hash`.
    """
    base = TrainConfig.build(config["model"], dataset=config.get("dataset", "bloodmnist"),
                             size=config.get("size", 28)).as_dict()
    args: list[str] = []
    unsettable: list[str] = []
    for name, default in base.items():
        if name in NOT_HASHED or name in ("model", "dataset", "size", "seed"):
            continue
        value = config.get(name, default)
        if value == default:
            continue
        flag = "--" + name.replace("_", "-")
        if name in CLI_FIELDS and isinstance(value, bool):
            args.append(flag if value else "--no-" + flag[2:])  # BooleanOptionalAction
        elif name in CLI_FIELDS and value is not None:
            args += [flag, str(value)]
        else:
            unsettable.append(f"{name}={value!r}")
    return args, unsettable


@dataclass(frozen=True)
class ProfileConfig:
    """The options that identify a profile; :meth:`as_dict` is the record's ``config`` and is
    hashed into its run id (``<model>-<dataset>-<size>-<device>-<precision>-<hash>``).

    ``device_name`` is part of it because a profile is a property of the hardware: the same
    options on another GPU/CPU are another measurement, not a duplicate to overwrite. So is
    ``cuda_graphs``: the launch-free figure is a setting of its own beside the eager one.
    Build one with :meth:`build` (resolves the device, its name, default batch sizes, threads);
    read one back from a record with :meth:`from_dict`.
    """

    dataset: str = "bloodmnist"
    size: int = 28
    device: str = "cpu"  # the device kind: cpu or cuda
    device_name: str = ""
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    batch_size: int = 1  # of the latency figure
    batch_sizes: tuple[int, ...] = ()  # of the throughput sweep, sorted
    warmup: int = 10
    iters: int = 20
    threads: int | None = None  # CPU threads (None on CUDA)
    min_time_s: float = 0.25
    rounds: int = DEFAULT_ROUNDS
    warmup_s: float = DEFAULT_WARMUP_S
    cuda_graphs: bool = False
    tf32: bool = False
    round_s: float = DEFAULT_ROUND_S
    # Fields an older record's config lacks (written before they existed): left out of as_dict,
    # so that config still hashes to the run id it was written under.
    absent: frozenset[str] = field(default=frozenset(), repr=False)

    @classmethod
    def build(cls, dataset: str = "bloodmnist", size: int = 28, device: str | torch.device = "cpu",
              precision: str = "fp32", channels_last: bool = False, compile: bool = False, batch_size: int = 1,
              batch_sizes: Sequence[int] | None = None, warmup: int = 10, iters: int = 20,
              threads: int | None = None, min_time_s: float = 0.25, rounds: int = DEFAULT_ROUNDS,
              warmup_s: float = DEFAULT_WARMUP_S, cuda_graphs: bool = False, tf32: bool = False,
              round_s: float = DEFAULT_ROUND_S) -> "ProfileConfig":
        """The setting as measured here: ``device`` resolved (``auto``), its name, the default
        batch sizes of its kind, and on CPU the threads (torch's current count when None)."""
        dev = device if isinstance(device, torch.device) else resolve_device(str(device))
        cpu = dev.type != "cuda"
        if batch_sizes is None:
            batch_sizes = DEFAULT_BATCH_SIZES["cpu" if cpu else "cuda"]
        nthreads = (threads or torch.get_num_threads()) if cpu else None
        return cls(dataset=dataset, size=int(size), device=dev.type, device_name=device_name(dev, nthreads),
                   precision=precision, channels_last=bool(channels_last), compile=bool(compile),
                   batch_size=int(batch_size), batch_sizes=tuple(sorted(set(int(b) for b in batch_sizes))),
                   warmup=int(warmup), iters=int(iters), threads=nthreads, min_time_s=float(min_time_s),
                   rounds=int(rounds), warmup_s=float(warmup_s), cuda_graphs=bool(cuda_graphs), tf32=bool(tf32),
                   round_s=float(round_s))

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> "ProfileConfig":
        """A record's ``config`` as it was written (``ValueError`` on a field this version does not know)."""
        names = {f.name for f in fields(cls)} - {"absent"}
        unknown = set(config) - names
        if unknown:
            raise ValueError(f"unknown profile setting(s): {', '.join(sorted(unknown))}")
        values = {k: tuple(v) if k == "batch_sizes" else v for k, v in config.items()}
        return cls(**values, absent=frozenset(names - set(config)))

    def as_dict(self) -> dict[str, Any]:
        """The record's ``config``: what the run id hashes."""
        return {f.name: list(v) if f.name == "batch_sizes" else v
                for f in fields(self) if f.name != "absent" and f.name not in self.absent
                for v in (getattr(self, f.name),)}

    def hash(self) -> str:
        return config_hash(self.as_dict())

    def run_id(self, model: str) -> str:
        return f"{model}-{self.dataset}-{self.size}-{self.device}-{self.precision}-{self.hash()}"
