"""Moved to :mod:`bloodbench.config` (the leaderboard needs it without the trainer); kept for old imports."""

from bloodbench.config import (  # noqa: F401
    CLASS_WEIGHTING, CLI_FIELDS, MONITORS, NOT_HASHED, OPTIMIZERS, PRECISIONS, SCHEDULES, TrainConfig, device_defaults,
    recipe_cli_args, recipe_hash,
)
