"""Training to convergence, evaluation, checkpoints."""

from bloodbench.config import TrainConfig
from bloodbench.train.predict import predict
from bloodbench.train.step import train_step
from bloodbench.train.trainer import Trainer, TrainingDiverged, train

__all__ = ["TrainConfig", "Trainer", "TrainingDiverged", "predict", "train", "train_step"]
