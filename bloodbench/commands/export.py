"""``bloodbench export MODEL --format onnx|torchscript --out PATH``: a trained model as one file,
checked against PyTorch on real test images, its batch-1 CPU latency beside the eager one."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bloodbench.choices import DEFAULT_ROUND_S, DEFAULT_ROUNDS, DEFAULT_WARMUP_S
from bloodbench.commands.common import add_weights_options, positive_int, trained_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="a trained model as ONNX or TorchScript, checked against PyTorch",
                       description="Export a trained model with its preprocessing: input 'images' (float32 "
                                   "N×C×H×W in [0, 1], i.e. uint8 / 255), output 'probabilities'. The outputs are "
                                   "checked against PyTorch's on real test images (ONNX through onnxruntime, where "
                                   "installed), and the batch-1 CPU latency of the file and of the eager model is "
                                   "written to PATH.json beside it.")
    p.add_argument("model")
    add_weights_options(p)
    p.add_argument("--format", choices=("onnx", "torchscript"), required=True)
    p.add_argument("--out", required=True, metavar="PATH", help="the file to write (.onnx / .pt)")
    p.add_argument("--data-dir", default=None,
                   help="folder with the MedMNIST .npz files (default: $BLOODBENCH_DATA_DIR, then ~/.medmnist)")
    p.add_argument("--check-images", type=positive_int, default=512,
                   help="test images the outputs are compared on (default: 512)")
    p.add_argument("--no-latency", dest="latency", action="store_false", help="skip the latency measurement")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads for the latency (default: torch's)")
    p.add_argument("--rounds", type=positive_int, default=DEFAULT_ROUNDS,
                   help=f"latency rounds (default: {DEFAULT_ROUNDS})")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from bloodbench.data import load_dataset
    from bloodbench.errors import BloodbenchError, warn
    from bloodbench.profile.export import (TOLERANCE, Deployed, batch1_latency, export_file, load_exported,
                                           max_difference)
    from bloodbench.runtime.envinfo import environment
    from bloodbench.store.fsutil import atomic_write_text, output_dir

    out = Path(args.out)
    output_dir(out.parent)
    trained = trained_from_args(args)
    meta = trained.weights.meta
    dataset, size = meta.get("dataset") or args.dataset, int(trained.size or args.size)
    test = load_dataset(dataset, size, args.data_dir, splits=("test",))["test"]
    images01 = test.images[:args.check_images].float().div_(255)
    deployed = Deployed(trained.model.float(), trained.norm.mean, trained.norm.std).eval()
    n_bytes = export_file(deployed, args.format, out, images01[:2])
    exported = load_exported(out, args.format)
    doc = {"model": args.model, "weights": trained.source, "run_id": meta.get("run_id"), "format": args.format,
           "file": out.name, "bytes": n_bytes, "input": {"name": "images", "shape": ["batch", *images01.shape[1:]],
                                                          "dtype": "float32", "range": "[0, 1] (uint8 / 255)"},
           "output": "probabilities", "precision": "fp32"}
    if exported is None:
        warn("onnxruntime is not installed: the ONNX file's outputs were not checked (pip install onnxruntime)")
        doc["check"] = None
    else:
        diff = max_difference(deployed, exported, images01)
        doc["check"] = {"images": len(images01), "split": "test", "max_abs_diff": diff, "tolerance": TOLERANCE}
        if not diff <= TOLERANCE:
            out.unlink(missing_ok=True)
            raise BloodbenchError(f"the {args.format} export differs from PyTorch by {diff:.2e} (> {TOLERANCE:g}) "
                                  f"on {len(images01)} test images: not written")
    if args.latency and exported is not None:
        doc["latency_batch1_cpu"] = batch1_latency(deployed, exported, tuple(images01.shape[1:]), args.threads,
                                                   args.rounds, DEFAULT_WARMUP_S, DEFAULT_ROUND_S)
        doc["env"] = {k: v for k, v in environment(torch.device("cpu")).items()
                      if k in ("cpu_name", "cpu_threads", "torch", "platform", "git_commit")}
    sidecar = out.with_name(out.name + ".json")
    atomic_write_text(sidecar, json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out} ({args.format}, {n_bytes / 1e6:.2f} MB) from {trained.source}")
    check = doc["check"]
    if check:
        print(f"outputs match PyTorch on {check['images']} test images: max |diff| {check['max_abs_diff']:.1e}")
    lat = doc.get("latency_batch1_cpu")
    if lat:
        exp, eager = lat["exported"], lat["eager"]
        noisy = "; noisy: the rounds disagree, the machine is busy" if exp["noisy"] or eager["noisy"] else ""
        print(f"batch-1 CPU latency p50: exported {exp['p50_ms']:.3f} ms, eager {eager['p50_ms']:.3f} ms "
              f"({exp['threads']} threads{noisy})")
    print(f"wrote {sidecar}")
    return 0
