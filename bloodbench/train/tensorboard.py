"""``bloodbench train --tensorboard DIR``: the per-epoch history as TensorBoard scalars.

An ``on_epoch_end`` callback, so the training loop knows nothing of TensorBoard and the
scalars are exactly the record's history rows. torch's SummaryWriter is imported only here.
"""

from __future__ import annotations

from pathlib import Path

from bloodbench.store.fsutil import output_dir

# history key -> TensorBoard tag (grouped as train/, val/, opt/ in the UI)
TAGS = {"train_loss": "train/loss", "train_acc": "train/acc", "val_loss": "val/loss", "val_acc": "val/acc",
        "val_auc": "val/auc", "val_f1_macro": "val/f1_macro", "lr": "opt/lr", "epoch_seconds": "time/epoch_seconds"}


class TensorBoardLogger:
    """Writes one event file per run under ``log_dir/run_id``; call it as ``on_epoch_end(epoch, row)``."""

    def __init__(self, log_dir: str | Path, run_id: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.path = output_dir(Path(log_dir) / run_id)
        self.writer = SummaryWriter(log_dir=str(self.path))

    def __call__(self, epoch: int, row: dict) -> None:
        for key, tag in TAGS.items():
            if row.get(key) is not None:
                self.writer.add_scalar(tag, float(row[key]), global_step=epoch)
        self.writer.flush()  # an interrupted run keeps the epochs it finished

    def close(self) -> None:
        self.writer.close()
