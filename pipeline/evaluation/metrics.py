"""FID, IS and KID in the domain classifier's feature space, computed by torch-fidelity.

``compute_metrics`` scores generated images against reference images. The reference features and FID
statistics are cached in ``.cache/fid-stats/`` under a name built from everything they depend on: the
caller's reference key (dataset fingerprint and split), a digest of the reference pixels, the resolution,
the extractor and the evaluator's weights hash. torch-fidelity's own key would ignore the last three.
Generated images are never cached.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch_fidelity
from torch.utils.data import Dataset
from torch_fidelity.metric_fid import fid_statistics_to_metric

from pipeline import layout
from pipeline.config import EvaluateConfig
from pipeline.errors import InputError
from pipeline.evaluation.classifier import FIT_HINT, weights_hash
from pipeline.evaluation.extractor import register_domain_extractor


class ImageTensorDataset(Dataset):
    """uint8 (N, C, H, W) images as torch-fidelity wants them: one uint8 (3, H, W) tensor per item."""

    def __init__(self, images: torch.Tensor):
        check_images(images, "images")
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        image = self.images[index]  # (C, H, W)
        return image.expand(3, -1, -1) if image.shape[0] == 1 else image  # grey → (3, H, W) view


def check_images(images: torch.Tensor, what: str) -> None:
    """Raise ValueError unless ``images`` is a uint8 N×C×H×W tensor with 1 or 3 channels."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"{what}: expected a uint8 N×C×H×W tensor, got {getattr(images, 'dtype', type(images))}"
                         f" with shape {tuple(getattr(images, 'shape', ()))}")
    if images.shape[1] not in (1, 3):
        raise ValueError(f"{what}: expected 1 or 3 channels, got {images.shape[1]}")


def images_digest(images: torch.Tensor) -> str:
    """Hex SHA-256 of the images' shape and pixels (10k 32×32 grey images: ~20 ms)."""
    digest = hashlib.sha256(str(tuple(images.shape)).encode())
    digest.update(images.contiguous().numpy().tobytes())
    return digest.hexdigest()


def reference_cache_name(reference_key: str, reference: torch.Tensor, *, extractor: str, weights_sha256: str) -> str:
    """Cache entry name of the reference features: safe for a file name, one per (data, pixels, extractor, weights)."""
    resolution = f"{reference.shape[2]}x{reference.shape[3]}"
    raw = f"{reference_key}-{images_digest(reference)[:12]}-{resolution}-{extractor}-{weights_sha256[:16]}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between two Gaussians (torch-fidelity's implementation, usable on small inputs)."""
    stats = [{"mu": np.asarray(mu, dtype=np.float64), "sigma": np.asarray(sigma, dtype=np.float64)}
             for mu, sigma in ((mu1, sigma1), (mu2, sigma2))]
    return float(fid_statistics_to_metric(*stats, verbose=False)[torch_fidelity.KEY_METRIC_FID])


def compute_metrics(
    generated: torch.Tensor,
    reference: torch.Tensor,
    *,
    cfg: EvaluateConfig,
    weights_path: Path,
    reference_key: str,
    cache_dir: Path = layout.CACHE_DIR,
) -> dict[str, Any]:
    """FID, IS and KID of uint8 ``generated`` images against uint8 ``reference`` images.

    Returns ``fid``, ``isc_mean``, ``isc_std``, ``kid_mean``, ``kid_std`` (floats), ``num_samples``,
    ``num_reference``, ``kid_subset_size``, ``feature_extractor`` and ``evaluator_sha256``.
    Raises InputError when the evaluator is missing or too few images are given for the configured splits.
    """
    check_images(generated, "generated")
    check_images(reference, "reference")
    n_gen, n_ref = generated.shape[0], reference.shape[0]
    if min(n_gen, n_ref) < 2:
        raise InputError(f"need at least 2 generated and 2 reference images, got {n_gen} and {n_ref}")
    if n_gen < cfg.isc_splits:
        raise InputError(f"evaluate.isc_splits ({cfg.isc_splits}) is larger than the {n_gen} generated images")
    weights_path = Path(weights_path)
    extractor = register_domain_extractor()
    if not weights_path.is_file():
        raise InputError(f"{weights_path}: evaluator not found; {FIT_HINT}")
    weights_sha256 = weights_hash(weights_path)
    kid_subset_size = min(cfg.kid_subset_size, n_gen, n_ref)
    scores = torch_fidelity.calculate_metrics(
        input1=ImageTensorDataset(generated),
        input2=ImageTensorDataset(reference),
        input2_cache_name=reference_cache_name(reference_key, reference, extractor=extractor,
                                               weights_sha256=weights_sha256),
        fid=True,
        isc=True,
        kid=True,
        feature_extractor=extractor,
        feature_extractor_weights_path=str(weights_path),
        cache=True,
        cache_root=str(cache_dir),
        kid_subset_size=kid_subset_size,
        kid_subsets=cfg.kid_subsets,
        isc_splits=cfg.isc_splits,
        batch_size=cfg.batch_size,
        cuda=torch.cuda.is_available(),
        save_cpu_ram=True,  # no DataLoader worker processes: the images are already in memory
        samples_find_deep=False,
        verbose=False,
    )
    return {
        "fid": float(scores[torch_fidelity.KEY_METRIC_FID]),
        "isc_mean": float(scores[torch_fidelity.KEY_METRIC_ISC_MEAN]),
        "isc_std": float(scores[torch_fidelity.KEY_METRIC_ISC_STD]),
        "kid_mean": float(scores[torch_fidelity.KEY_METRIC_KID_MEAN]),
        "kid_std": float(scores[torch_fidelity.KEY_METRIC_KID_STD]),
        "num_samples": int(n_gen),
        "num_reference": int(n_ref),
        "kid_subset_size": int(kid_subset_size),
        "feature_extractor": extractor,
        "evaluator_sha256": weights_sha256,
    }
