"""Data: MedMNIST files -> uint8 tensors -> batches on the training device."""

from bloodbench.data.batches import Normalizer, TensorBatches, augment_batch, class_weights, epoch_generator
from bloodbench.data.medmnist_data import (
    DATA_DIR_ENV,
    SIZES,
    SPLITS,
    DatasetInfo,
    MedMNISTData,
    Split,
    available_flags,
    file_md5,
    dataset_info,
    download,
    load_dataset,
    resolve_data_dir,
    verify_md5,
)

__all__ = [
    "DATA_DIR_ENV", "SIZES", "SPLITS", "DatasetInfo", "MedMNISTData", "Split", "Normalizer", "TensorBatches",
    "augment_batch", "available_flags", "class_weights", "dataset_info", "download", "epoch_generator", "file_md5",
    "load_dataset", "resolve_data_dir", "verify_md5",
]
