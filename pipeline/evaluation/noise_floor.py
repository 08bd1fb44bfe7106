"""The noise floor of FID: real test images against equally many real training images, in every feature space.

Two samples of the same distribution still score FID > 0 (finite-sample bias and noise); a variant's FID means
little until it is set against this floor. Each repeat takes a random train subset of the test split's size,
disjoint from the others when the train split is large enough; the result is the mean and spread over repeats.
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline import layout
from pipeline.config import EvaluateConfig
from pipeline.data import load_prepared
from pipeline.evaluation.cell import ReferenceSet
from pipeline.evaluation.metrics import fid_from_statistics, fid_statistics
from pipeline.records import FloorSpace, NoiseFloor, write_record

SUBSET_SEED = 7_000_003


def noise_floor(cfg: EvaluateConfig) -> NoiseFloor:
    """Real-vs-real FID per configured feature space: ``feature_spaces[extractor] = {fid_mean, fid_std, fid_values}``."""
    reference = ReferenceSet(cfg)
    train, _ = load_prepared("train")
    size = min(reference.images.shape[0], train.shape[0])
    generator = torch.Generator().manual_seed(SUBSET_SEED)
    repeats = cfg.noise_floor_repeats
    disjoint = repeats * size <= train.shape[0]
    if disjoint:  # independent samples of real data, as two real datasets would be
        order = torch.randperm(train.shape[0], generator=generator)
        subsets = [order[i * size : (i + 1) * size] for i in range(repeats)]
    else:  # too few training images: each repeat draws its own random subset
        subsets = [torch.randperm(train.shape[0], generator=generator)[:size] for _ in range(repeats)]
    spaces = {}
    for key in cfg.extractors:
        extractor, ref = reference.features(key)
        layer = extractor.layers["fid"]
        ref_stats = fid_statistics(ref[layer][:size])
        values = [fid_from_statistics(fid_statistics(extractor(train[index])[layer]), ref_stats) for index in subsets]
        spaces[extractor.space.extractor] = FloorSpace(
            fid_mean=float(np.mean(values)),
            fid_std=float(np.std(values, ddof=1)) if len(values) > 1 else None,
            fid_values=[float(v) for v in values],
        )
    return NoiseFloor(reference="test", subset_split="train", num_samples=int(size), repeats=repeats,
                      disjoint_subsets=disjoint, data_fingerprint=reference.meta["fingerprint"], feature_spaces=spaces)


def write_noise_floor(cfg: EvaluateConfig) -> NoiseFloor:
    """Compute the noise floor and write ``metrics/noise-floor.json`` atomically."""
    result = noise_floor(cfg)
    write_record(layout.NOISE_FLOOR_PATH, result)
    return result
