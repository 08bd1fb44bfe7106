"""The feature-space check: can a feature space see the defects it is meant to rank? (Heusel et al. 2017, Fig. 2.)

Real training images are disturbed at growing levels of Gaussian noise, Gaussian blur, salt-and-pepper noise and
mode dropping, and each disturbed set is scored by FID against the clean test split, in every configured feature
space. Level 0 is the undisturbed sample (the noise floor at this size). FID must rise with every level of every
disturbance; where it does not, that space cannot rank models by that defect, and the report says so.

Modes are the classes when the data have at least two, otherwise k-means clusters of the pixels (independent of
the feature space under test, so a degenerate space cannot define its own modes). Dropping a share of the modes
removes their images and draws the same number of images from the modes that remain.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.cluster import KMeans
from torchvision.transforms.v2 import functional as TF

from pipeline import layout
from pipeline.config import EvaluateConfig
from pipeline.data import load_prepared
from pipeline.evaluation.cell import ReferenceSet
from pipeline.evaluation.metrics import fid_from_statistics, fid_statistics
from pipeline.io import atomic_write_json

SEED = 9_000_011
PIXEL_MODES = 10  # k-means clusters standing in for modes when the data have no classes (or too few)
MIN_CLASS_MODES = 5  # classes as modes only when each mode-dropping level (a fifth more) drops one more class
KMEANS_FIT_IMAGES = 10_000

# disturb(uint8 images (N, C, R, R), level, generator) -> uint8 images of the same shape
DisturbFn = Callable[[torch.Tensor, float, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class Disturbance:
    """A defect applied at growing ``levels`` (in ``unit``)."""

    levels: tuple[float, ...]
    unit: str
    apply: DisturbFn | None  # None: mode dropping, which changes which images are drawn, not their pixels


def _noise(images: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    noise = torch.randn(images.shape, generator=generator) * sigma * 255
    return (images.float() + noise).round().clamp(0, 255).to(torch.uint8)


def _blur(images: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    side = images.shape[-1]
    kernel = min(2 * math.ceil(3 * sigma) + 1, 2 * side - 1)  # reflect padding needs half a kernel < the side
    return TF.gaussian_blur(images, kernel_size=[kernel, kernel], sigma=[sigma, sigma])


def _salt_and_pepper(images: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
    n, _, h, w = images.shape
    u = torch.rand((n, 1, h, w), generator=generator).expand_as(images)  # same pixels in every channel
    out = images.clone()
    out[u < share / 2] = 0
    out[(u >= share / 2) & (u < share)] = 255
    return out


DISTURBANCES: dict[str, Disturbance] = {
    "gaussian-noise": Disturbance((0.05, 0.1, 0.2, 0.4), "σ / intensity range", _noise),
    "gaussian-blur": Disturbance((0.5, 1.0, 1.5, 2.0), "σ in pixels", _blur),
    "salt-and-pepper": Disturbance((0.02, 0.05, 0.1, 0.2), "share of pixels", _salt_and_pepper),
    "mode-dropping": Disturbance((0.2, 0.4, 0.6, 0.8), "share of modes removed", None),
}


def pool_modes(images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> tuple[np.ndarray, str]:
    """The mode of every pool image and what modes are: the classes when there are at least
    :data:`MIN_CLASS_MODES`, else pixel k-means clusters (with 2 classes, dropping 40% or 80% of them is the same)."""
    if num_classes >= MIN_CLASS_MODES:
        return labels.numpy(), "classes"
    flat = images.reshape(images.shape[0], -1).float().numpy() / 255  # (N, C·R·R)
    rng = np.random.default_rng(SEED)
    fit = flat[rng.permutation(flat.shape[0])[:KMEANS_FIT_IMAGES]]
    kmeans = KMeans(n_clusters=min(PIXEL_MODES, fit.shape[0]), n_init=1, random_state=0).fit(fit)
    return kmeans.predict(flat), f"{kmeans.n_clusters} pixel k-means clusters"


def mode_dropped(modes: np.ndarray, share: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` pool indices drawn from the modes left after removing ``share`` of them (without replacement when
    enough images remain)."""
    names = rng.permutation(np.unique(modes))
    dropped = names[: min(int(round(share * len(names))), len(names) - 1)]  # one mode at least remains
    candidates = np.flatnonzero(~np.isin(modes, dropped))
    return rng.choice(candidates, size=size, replace=len(candidates) < size)


def _disturbed_sets(images: torch.Tensor, modes: np.ndarray, size: int) -> dict[str, list[torch.Tensor]]:
    """Per disturbance, the image sets of level 0 (the clean sample) and of each level, drawn reproducibly."""
    rng = np.random.default_rng(SEED)
    base_index = rng.choice(images.shape[0], size=size, replace=False)
    base = images[base_index]
    sets = {}
    for name, disturbance in DISTURBANCES.items():
        generator = torch.Generator().manual_seed(SEED)
        if disturbance.apply is None:
            levels = [images[mode_dropped(modes, share, size, rng)] for share in disturbance.levels]
        else:
            levels = [disturbance.apply(base, level, generator) for level in disturbance.levels]
        sets[name] = [base, *levels]
    return sets


def is_increasing(values: list[float]) -> bool:
    """Whether every value is larger than the one before."""
    return all(b > a for a, b in zip(values, values[1:], strict=False))


def feature_check(cfg: EvaluateConfig) -> dict[str, Any]:
    """FID of every disturbance level in every feature space; ``monotone`` per disturbance, space and overall."""
    reference = ReferenceSet(cfg)
    train, labels = load_prepared("train")
    size = min(cfg.feature_check_samples, train.shape[0])
    modes, mode_kind = pool_modes(train, labels, int(reference.meta["num_classes"]))
    sets = _disturbed_sets(train, modes, size)
    spaces = {}
    for key in cfg.extractors:
        extractor, ref = reference.features(key)
        layer = extractor.layers["fid"]
        ref_stats = fid_statistics(ref[layer])
        scores = {}
        for name, image_sets in sets.items():
            fids = [fid_from_statistics(fid_statistics(extractor(images)[layer]), ref_stats) for images in image_sets]
            scores[name] = {"levels": [0.0, *DISTURBANCES[name].levels], "unit": DISTURBANCES[name].unit,
                            "fid": fids, "monotone": is_increasing(fids)}
        spaces[extractor.space.extractor] = {"disturbances": scores,
                                             "monotone": all(s["monotone"] for s in scores.values())}
    return {"reference": "test", "disturbed_split": "train", "num_samples": int(size), "modes": mode_kind,
            "num_modes": int(len(np.unique(modes))), "data_fingerprint": reference.meta["fingerprint"],
            "feature_spaces": spaces, "monotone": all(s["monotone"] for s in spaces.values())}


def write_feature_check(cfg: EvaluateConfig) -> dict[str, Any]:
    """Run the check and write ``metrics/feature-check.json`` atomically."""
    result = feature_check(cfg)
    atomic_write_json(layout.FEATURE_CHECK_PATH, result)
    return result
