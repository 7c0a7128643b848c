"""Option choices the CLI needs to build its parser, kept free of heavy imports.

``bloodbench --help`` builds every sub-command's parser; importing torch (or pandas,
sklearn) just to list ``--size`` choices would cost seconds. The modules that use these
values import them from here, so each is defined once. The Slurm options' checks live here too, so
that a flag and a ``--slurm-config`` value meet one rule.
"""

import re

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


# -- Slurm options: one check for a --slurm-config file's values and for the flags ---------------------

#: Integer options and their least value.
SLURM_INTS = {"gpus_per_task": 0, "cpus_per_task": 1, "time": 1, "array_parallelism": 1}
#: Text options: a name (partition, account) or a size such as 32G (mem); no spaces, no control characters.
SLURM_TEXTS = ("partition", "account", "mem")
_MEM = re.compile(r"\d+[KMGT]?", re.IGNORECASE)
_SBATCH_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _shown(value) -> str:
    return repr(value) if not isinstance(value, str) else repr(value)[:60]


def slurm_value(key: str, value):
    """``value`` of the Slurm option ``key``, checked as the flag and the config file both take it (text as
    given on the command line, or a TOML/JSON value); ValueError says what is wrong."""
    if key in SLURM_INTS:
        least = SLURM_INTS[key]
        wrong = ValueError(f"expected an integer >= {least}, got {_shown(value)}")
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise wrong
        try:
            number = int(value.strip()) if isinstance(value, str) else value
        except ValueError:
            raise wrong from None
        if number < least:
            raise wrong
        return number
    if key in SLURM_TEXTS:
        if key == "mem" and isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            value = str(value)  # MB, as sbatch reads a bare number
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"expected text, got {_shown(value)}")
        text = sbatch_text(value)
        if any(c.isspace() for c in text):
            raise ValueError(f"expected no spaces, got {_shown(value)}")
        if key == "mem" and not _MEM.fullmatch(text):
            raise ValueError(f"expected a size such as 32G or 16000 (MB), got {_shown(value)}")
        return text
    raise ValueError(f"unknown Slurm option {key!r}")


def sbatch_text(value) -> str:
    """A value that goes into an ``#SBATCH`` line: text or a number, without control characters (a newline
    would add a line of its own)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"expected text or an integer, got {_shown(value)}")
    text = str(value)
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError(f"control characters (newline, CR, NUL, ...) are not allowed, got {_shown(value)}")
    return text.strip()


def sbatch_flag(key, value) -> tuple[str, str]:
    """An extra sbatch flag (``--sbatch KEY=VALUE``, ``additional_parameters``): its name in submitit's
    spelling (``mail_type``) and its value, both checked."""
    name = sbatch_text(key).lstrip("-").replace("-", "_") if isinstance(key, str) else key
    if not isinstance(name, str) or not _SBATCH_KEY.fullmatch(name):
        raise ValueError(f"expected an sbatch flag name (letters, digits, - or _), got {_shown(key)}")
    return name, sbatch_text(value)
