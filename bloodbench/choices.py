"""Option choices the CLI needs to build its parser, kept free of heavy imports.

``bloodbench --help`` builds every sub-command's parser; importing torch (or pandas,
sklearn) just to list ``--size`` choices would cost seconds. The modules that use these
values import them from here, so each is defined once.
"""

SIZES = (28, 64, 128, 224)
PRECISIONS = ("fp32", "bf16", "fp16")
OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "onecycle", "plateau", "none")
CLASS_WEIGHTING = ("none", "loss", "sampler")
MONITORS = ("val_acc", "val_loss", "val_auc")
LEADERBOARD_FORMATS = ("markdown", "csv", "json")
# ``leaderboard --columns``: short name -> the markdown headers it shows ("latency" is the eager p50, "graphs"
# the CUDA-graphs one where there is one). A terminal gets TERMINAL_COLUMNS; files, pipes and the report all.
SHOWN_COLUMNS = {
    "seeds": ("seeds",), "acc": ("test acc (%)",), "f1": ("F1 macro",), "auc": ("AUC",), "params": ("params (M)",),
    "macs": ("MACs (M)",), "flops": ("FLOPs (M) = 2×MACs",),
    "latency": ("p50 latency (ms)", "p50 latency, eager (ms)"), "graphs": ("p50 latency, CUDA graphs (ms)",),
    "p99": ("p99 latency (ms)",), "throughput": ("throughput (img/s)",), "memory": ("peak mem (MiB)",),
    "train_throughput": ("train (img/s)",), "train_time": ("train time (s)",), "epochs": ("epochs",),
    "stop": ("stop",), "pareto": ("Pareto MACs", "Pareto latency"),
}
TERMINAL_COLUMNS = ("seeds", "acc", "macs", "latency", "pareto")
DEFAULT_ROUNDS = 5        # profile: latency rounds; p50 = median of the rounds' p50s
DEFAULT_WARMUP_S = 1.0    # profile: untimed warm-up seconds, at least
DEFAULT_ROUND_S = 0.2     # profile: seconds per latency round, at least (a 1 ms model gets ~200 calls a round)
DEFAULT_BATCH_SIZES = {"cpu": (1, 2, 4, 8, 16, 32, 64),  # profile: the throughput sweep of each device kind
                       "cuda": (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)}
PLUGIN_GROUP = "bloodbench.models"  # the entry-point group of plug-in models (bloodbench/models/plugins.py)
PLUGINS_ENV = "BLOODBENCH_PLUGINS"  # comma-separated plug-in modules, as `bloodbench --plugin`
