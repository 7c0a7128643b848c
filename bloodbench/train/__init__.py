"""Training to convergence, evaluation, checkpoints."""

from bloodbench.config import TrainConfig
from bloodbench.train.trainer import Trainer, TrainingDiverged, predict, train

__all__ = ["TrainConfig", "Trainer", "TrainingDiverged", "predict", "train"]
