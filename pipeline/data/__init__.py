"""Datasets: sources in a registry → validated, resized uint8 arrays in ``data/prepared/`` → tensors.

``prepare_dataset(cfg.data)`` is the ``prepare`` stage; ``load_prepared("train")`` is what every later stage
reads. Every problem with the source files raises :class:`pipeline.errors.DataError` naming the file.
"""

from pipeline.data.base import RAW_DIR, DatasetSource, RawDataset
from pipeline.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from pipeline.data.prepared import ARRAY_FILES, fingerprint, load_meta, load_prepared, prepare_dataset, verify_prepared
from pipeline.data.sources import DATASETS, FASHION_MNIST_CLASSES, SYSTEM_DIRS, get_source
from pipeline.data.transforms import convert_channels, resize_square, subsample

__all__ = [
    "ARRAY_FILES",
    "DATASETS",
    "FASHION_MNIST_CLASSES",
    "IMAGES_MAGIC",
    "LABELS_MAGIC",
    "RAW_DIR",
    "SYSTEM_DIRS",
    "DatasetSource",
    "RawDataset",
    "convert_channels",
    "fingerprint",
    "get_source",
    "load_meta",
    "load_prepared",
    "prepare_dataset",
    "read_idx",
    "resize_square",
    "subsample",
    "verify_prepared",
]
