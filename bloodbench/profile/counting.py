"""Cost counting: MACs, FLOPs, params, activations; memory is in memory.py.

Units: fvcore counts one fused multiply-add as one "flop", i.e. one **MAC**; we report
``flops = 2 * macs`` everywhere. torch's ``FlopCounterMode`` counts real FLOPs (2 per MAC)
for matmul/conv only, so it is an independent cross-check of the dominant terms: fvcore also
counts batch-norm, pooling and upsampling, which is why the two differ by a few percent on
models with many normalisation layers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from bloodbench.errors import BloodbenchError
from bloodbench.models import count_params
from bloodbench.profile.common import eval_mode, quiet_fvcore, zeros_input
from bloodbench.profile.memory import model_size_mib, peak_forward_memory

#: Relative MAC disagreement (fvcore vs FlopCounterMode/2) above which a cost report is flagged.
DISAGREEMENT_THRESHOLD = 0.10


# -- MACs -----------------------------------------------------------------------------------
@dataclass
class MacCount:
    """fvcore's count of one forward pass: total, per module, per operator, unsupported ops."""

    total: int
    by_module: dict[str, int]
    by_operator: dict[str, int]
    unsupported_ops: dict[str, int]

    def top_modules(self, k: int = 10) -> list[dict[str, Any]]:
        """The ``k`` most expensive *innermost* modules (parents would double-count children)."""
        nonzero = {m: c for m, c in self.by_module.items() if c and m}
        leaves = [m for m in nonzero if not any(o.startswith(m + ".") for o in nonzero)]
        leaves.sort(key=lambda m: -nonzero[m])
        return [{"module": m, "macs": int(nonzero[m])} for m in leaves[:k]]


def fvcore_macs(model: nn.Module, input_shape: tuple[int, ...], device: torch.device | str | None = None) -> MacCount:
    """Run fvcore's ``FlopCountAnalysis`` quietly and keep everything it knows."""
    with quiet_fvcore(), eval_mode(model):
        from fvcore.nn import FlopCountAnalysis

        x = zeros_input(model, input_shape, device)
        analysis = FlopCountAnalysis(model, x)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        try:
            total = int(analysis.total())
        except Exception as exc:  # jit tracing fails on data-dependent control flow
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BloodbenchError(f"cannot count MACs of {type(model).__name__}: fvcore's jit trace failed "
                                  f"({first})") from exc
        return MacCount(
            total=total,
            by_module={k: int(v) for k, v in analysis.by_module().items()},
            by_operator={k: int(v) for k, v in analysis.by_operator().items()},
            unsupported_ops={k: int(v) for k, v in sorted(analysis.unsupported_ops().items())},
        )


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass on a zero tensor of ``input_shape`` (N, C, H, W)."""
    return fvcore_macs(model, input_shape).total


def flopcounter_flops(model: nn.Module, input_shape: tuple[int, ...], device: torch.device | str | None = None) -> int:
    """FLOPs by torch's ``FlopCounterMode`` (2 per MAC; matmul/conv/attention only)."""
    from torch.utils.flop_counter import FlopCounterMode

    with eval_mode(model), torch.no_grad():
        x = zeros_input(model, input_shape, device)
        counter = FlopCounterMode(display=False)
        with counter:
            model(x)
    return int(counter.get_total_flops())


def count_activations(model: nn.Module, input_shape: tuple[int, ...], device: torch.device | str | None = None) -> int:
    """Output elements of conv/matmul/norm layers (fvcore): a proxy for activation memory traffic."""
    with quiet_fvcore(), eval_mode(model):
        from fvcore.nn import ActivationCountAnalysis

        analysis = ActivationCountAnalysis(model, zeros_input(model, input_shape, device))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return int(analysis.total())


@dataclass
class CostBreakdown:
    """Every count for one model and input shape, with units in the field names."""

    input_shape: tuple[int, ...]
    macs: int
    flops: int
    macs_flopcounter: int
    macs_disagreement: float
    disagreement_flagged: bool
    params: int
    trainable_params: int
    model_size_mb: float
    activations: int
    unsupported_ops: dict[str, int]
    top_modules: list[dict[str, Any]]
    by_module: dict[str, int] = field(repr=False)
    by_operator: dict[str, int] = field(default_factory=dict)
    peak_memory_mb: float | None = None
    peak_memory_method: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One paragraph for humans; unsupported operators are listed here, once."""
        lines = [f"{self.macs / 1e6:.2f} M MACs ({self.flops / 1e6:.2f} M FLOPs) for input {self.input_shape}, "
                 f"{self.params / 1e6:.3f} M params, {self.model_size_mb:.2f} MiB weights"]
        if self.disagreement_flagged:
            lines.append(f"warning: fvcore and FlopCounterMode disagree by {self.macs_disagreement:.1%} "
                         f"({self.macs} vs {self.macs_flopcounter} MACs)")
        if self.unsupported_ops:
            lines.append(unsupported_ops_note(self.unsupported_ops))
        return "\n".join(lines)


def unsupported_ops_note(ops: dict[str, int]) -> str:
    """Name the operators fvcore skipped, with call counts: they add 0 MACs to the total.

    Only the names are known here, not what the ops cost, so the note claims nothing more.
    """
    listed = ", ".join(f"{k} x{v}" for k, v in ops.items())
    return f"not counted by fvcore (0 MACs assumed): {listed}"


def relative_disagreement(a: float, b: float) -> float:
    """|a - b| relative to the larger of the two (0 when both are 0)."""
    hi = max(abs(a), abs(b))
    return abs(a - b) / hi if hi else 0.0


def cost_breakdown(model: nn.Module, input_shape: tuple[int, ...], memory: bool = True, top_k: int = 10,
                   threshold: float = DISAGREEMENT_THRESHOLD) -> CostBreakdown:
    """All cost counts of ``model`` on ``input_shape`` (on the model's device).

    MACs are of the whole input shape: pass batch 1 for the per-image figure.
    """
    mc = fvcore_macs(model, input_shape)
    fc_macs = flopcounter_flops(model, input_shape) // 2
    dis = relative_disagreement(mc.total, fc_macs)
    peak, method = peak_forward_memory(model, input_shape) if memory else (None, None)
    return CostBreakdown(
        input_shape=tuple(input_shape),
        macs=mc.total,
        flops=2 * mc.total,
        macs_flopcounter=fc_macs,
        macs_disagreement=dis,
        disagreement_flagged=dis > threshold,
        params=count_params(model),
        trainable_params=count_params(model, trainable_only=True),
        model_size_mb=model_size_mib(model),
        activations=count_activations(model, input_shape),
        unsupported_ops=dict(Counter(mc.unsupported_ops)),
        top_modules=mc.top_modules(top_k),
        by_module=mc.by_module,
        by_operator=mc.by_operator,
        peak_memory_mb=peak,
        peak_memory_method=method,
    )
