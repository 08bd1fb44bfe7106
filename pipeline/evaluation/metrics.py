"""FID, IS, KID and precision/recall of generated images in one feature space, with torch-fidelity's metric math.

Features are extracted once per image set (:class:`~pipeline.evaluation.features.Features`) and every metric is
computed from them with torch-fidelity's functions, so the per-cell extras (FID over noise draws, class coverage)
reuse the same features instead of running the network again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch_fidelity
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric

from pipeline.config import EvaluateConfig
from pipeline.errors import InputError
from pipeline.evaluation.features import FeatureDict

METRIC_KEYS = ("fid", "isc_mean", "isc_std", "kid_mean", "kid_std", "precision", "recall", "f_score")


NO_CLASSES = ("the evaluator has no classes (a contrastive encoder): IS and class coverage need a classifier's "
              "logits")


def not_applicable(keys: tuple[str, ...], reason: str) -> dict[str, Any]:
    """``{key: None, key_reason: reason}`` for metrics that do not apply: never a number that looks meaningful."""
    return {**dict.fromkeys(keys), **{f"{key}_reason": reason for key in keys}}


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between two Gaussians (torch-fidelity's implementation, usable on small inputs)."""
    stats = [{"mu": np.asarray(mu, dtype=np.float64), "sigma": np.asarray(sigma, dtype=np.float64)}
             for mu, sigma in ((mu1, sigma1), (mu2, sigma2))]
    return float(fid_statistics_to_metric(*stats, verbose=False)[torch_fidelity.KEY_METRIC_FID])


def fid_statistics(features: torch.Tensor) -> dict[str, np.ndarray]:
    """torch-fidelity's FID statistics (mean, covariance) of (N, D) features."""
    return fid_features_to_statistics(features.float().cpu())


def fid_from_statistics(generated: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
    """torch-fidelity's Fréchet distance of two statistics dicts."""
    return float(fid_statistics_to_metric(generated, reference, verbose=False)[torch_fidelity.KEY_METRIC_FID])


def check_counts(n_generated: int, n_reference: int, cfg: EvaluateConfig) -> None:
    """InputError when there are too few images for the configured metrics."""
    if min(n_generated, n_reference) < 2:
        raise InputError(f"need at least 2 generated and 2 reference images, got {n_generated} and {n_reference}")
    if n_generated < cfg.isc_splits:
        raise InputError(f"evaluate.isc_splits ({cfg.isc_splits}) is larger than the {n_generated} generated images")
    if min(n_generated, n_reference, cfg.prc_samples or n_generated) <= cfg.prc_neighborhood:
        raise InputError(f"evaluate.prc_neighborhood ({cfg.prc_neighborhood}) needs more than that many generated "
                         f"and reference images, got {n_generated} and {n_reference}")


def score_features(
    generated: FeatureDict, reference: FeatureDict, layers: dict[str, str], cfg: EvaluateConfig
) -> dict[str, Any]:
    """FID, IS (mean/std over splits), KID (mean/std over subsets) and precision/recall/F-score.

    ``layers`` maps each metric (fid, isc, kid, prc) to the feature layer it uses; without an ``isc`` layer (an
    evaluator without classes) IS is null with an ``isc_mean_reason``. ``kid_subset_size`` in the result is the
    configured size capped at the smaller set.
    """
    n_gen, n_ref = len(generated[layers["fid"]]), len(reference[layers["fid"]])
    check_counts(n_gen, n_ref, cfg)
    kid_subset_size = min(cfg.kid_subset_size, n_gen, n_ref)
    fid = fid_from_statistics(fid_statistics(generated[layers["fid"]]), fid_statistics(reference[layers["fid"]]))
    isc = isc_features_to_metric(generated[layers["isc"]], splits=cfg.isc_splits) if "isc" in layers else None
    kid = kid_features_to_metric(generated[layers["kid"]], reference[layers["kid"]], kid_subsets=cfg.kid_subsets,
                                 kid_subset_size=kid_subset_size, verbose=False)
    prc_gen, prc_ref = equal_subsets(generated[layers["prc"]], reference[layers["prc"]], cfg.prc_samples)
    prc = prc_features_to_metric(prc_gen, prc_ref, prc_neighborhood=cfg.prc_neighborhood, save_cpu_ram=True,
                                 verbose=False)
    return {
        "fid": fid,
        **(not_applicable(("isc_mean", "isc_std"), NO_CLASSES) if isc is None else {
            "isc_mean": float(isc[torch_fidelity.KEY_METRIC_ISC_MEAN]),
            "isc_std": float(isc[torch_fidelity.KEY_METRIC_ISC_STD]),
        }),
        "kid_mean": float(kid[torch_fidelity.KEY_METRIC_KID_MEAN]),
        "kid_std": float(kid[torch_fidelity.KEY_METRIC_KID_STD]),
        "precision": float(prc[torch_fidelity.KEY_METRIC_PRECISION]),
        "recall": float(prc[torch_fidelity.KEY_METRIC_RECALL]),
        "f_score": float(prc[torch_fidelity.KEY_METRIC_F_SCORE]),
        "num_samples": int(n_gen),
        "num_reference": int(n_ref),
        "kid_subset_size": int(kid_subset_size),
        "prc_samples": int(len(prc_gen)),
    }


def equal_subsets(generated: torch.Tensor, reference: torch.Tensor, limit: int | None,
                  seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed random subsets of (N, D) and (M, D) features of one size: min(N, M, limit)."""
    size = min(len(generated), len(reference), limit or len(generated))
    noise = torch.Generator().manual_seed(seed)
    return tuple(x if len(x) == size else x[torch.randperm(len(x), generator=noise)[:size]]
                 for x in (generated, reference))
