"""Our counts of five torchvision ImageNet models at 224 px against torchvision's published metadata.

``python -m bloodbench.profile.torchvision_check`` prints the markdown table of docs/PROFILING.md.

What the published fields mean (``get_model_weights(name).DEFAULT.meta``):

* ``num_params``: exact parameter count; ours must equal it.
* ``_ops``: labelled "GFLOPS" by torchvision but it is **GMACs** of conv + linear layers only,
  rounded to 3 decimals. fvcore's total also counts batch-norm (2 per element with affine),
  adaptive average pooling and upsampling, so it is higher by up to ~5% on BN-heavy small
  models; its conv + linear part must match ``_ops`` up to the rounding.
* ``_file_size``: labelled "MB" but it is **MiB** (bytes / 2^20) of the ``.pth`` file: e.g.
  resnet18's float32 parameters alone are 46.76 MB (1e6 bytes) but ``_file_size`` is 44.661.
  Our ``model_size_mb`` (state_dict tensors, MiB) is a little lower: the file adds pickle/zip
  framing per tensor, which weighs more on models with many small tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

from bloodbench.formatting import md_table
from bloodbench.profile.counting import count_params, fvcore_macs
from bloodbench.profile.memory import model_size_mib

TORCHVISION_MODELS = ("resnet18", "vgg16", "densenet121", "efficientnet_b0", "mobilenet_v3_small")
INPUT_SHAPE = (1, 3, 224, 224)
#: fvcore total may exceed ``_ops`` by this much (batch-norm, pooling, upsampling counted too).
TOTAL_MACS_TOLERANCE = 0.05
#: state_dict MiB may fall below ``_file_size`` by this much (file framing); measured 0.0-0.8%.
FILE_SIZE_TOLERANCE = 0.02


@dataclass(frozen=True)
class Comparison:
    """One model's published figures next to ours, in the units torchvision really uses."""

    model: str
    published_params: int
    params: int
    published_gmacs: float
    dense_gmacs: float
    total_gmacs: float
    published_file_mib: float
    state_dict_mib: float

    @property
    def macs_excess(self) -> float:
        """fvcore total relative to ``_ops`` (positive: layers torchvision does not count)."""
        return self.total_gmacs / self.published_gmacs - 1

    @property
    def size_gap(self) -> float:
        """state_dict MiB relative to the published file size (negative: file framing)."""
        return self.state_dict_mib / self.published_file_mib - 1


def compare(name: str) -> Comparison:
    """Count ``name`` (random weights: counts do not depend on values) and pair it with its metadata."""
    import torchvision

    meta = torchvision.models.get_model_weights(name).DEFAULT.meta
    model = torchvision.models.get_model(name, weights=None).eval()
    mc = fvcore_macs(model, INPUT_SHAPE)
    dense = mc.by_operator.get("conv", 0) + mc.by_operator.get("linear", 0)
    return Comparison(name, int(meta["num_params"]), count_params(model), float(meta["_ops"]), dense / 1e9,
                      mc.total / 1e9, float(meta["_file_size"]), model_size_mib(model))


def markdown(rows: list[Comparison]) -> str:
    """The comparison as a GitHub markdown table."""
    headers = ["model", "params (published)", "params (ours)", "GMACs `_ops`", "GMACs conv+linear (ours)",
               "GMACs fvcore total (ours)", "total vs `_ops`", "file MiB `_file_size`", "state_dict MiB (ours)",
               "size vs file"]
    body = [[r.model, f"{r.published_params:,}", f"{r.params:,}", f"{r.published_gmacs:.3f}", f"{r.dense_gmacs:.3f}",
             f"{r.total_gmacs:.3f}", f"{r.macs_excess:+.1%}", f"{r.published_file_mib:.3f}",
             f"{r.state_dict_mib:.3f}", f"{r.size_gap:+.1%}"] for r in rows]
    return md_table(body, headers)


def main() -> None:
    import torch

    from bloodbench.runtime.envinfo import package_version

    torch.set_num_threads(1)
    print(markdown([compare(name) for name in TORCHVISION_MODELS]))
    print(f"\nInput {INPUT_SHAPE}; torch {torch.__version__}, torchvision {package_version('torchvision')}, "
          f"fvcore {package_version('fvcore')}.")


if __name__ == "__main__":
    main()
