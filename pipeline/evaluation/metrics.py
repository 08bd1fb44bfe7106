"""FID, IS, KID and precision/recall of generated images in one feature space, with torch-fidelity's metric math.

Features are extracted once per image set (:class:`~pipeline.evaluation.features.Features`) and every metric is
computed from them, so the per-cell extras (FID over noise draws, class coverage) reuse the same features instead of
running the network again. The maths is torch-fidelity's (``fid_statistics_to_metric``, ``isc_features_to_metric``,
``kid_features_to_metric``, ``prc_features_to_metric``: same estimators, kernel, defaults and random streams; the
tests check each against torch-fidelity's function) written here because importing torch-fidelity imports torchvision
and, through its ``ops``, ``torch._dynamo``: 3 s of every evaluate process on 2 cores.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pipeline.config import EvaluateConfig
from pipeline.errors import InputError
from pipeline.evaluation.features import FeatureDict

RNG_SEED = 2020  # torch-fidelity's default rng_seed: IS shuffles and KID draws its subsets from it
KID_DEGREE, KID_COEF0 = 3, 1  # torch-fidelity's polynomial kernel (x·y / D + 1)^3, as in Binkowski et al. 2018
METRIC_KEYS = ("fid", "isc_mean", "isc_std", "kid_mean", "kid_std", "precision", "recall", "f_score")


NO_CLASSES = ("the evaluator has no classes (a contrastive encoder): IS and class coverage need a classifier's "
              "logits")


def not_applicable(keys: tuple[str, ...], reason: str) -> dict[str, Any]:
    """``{key: None, key_reason: reason}`` for metrics that do not apply: never a number that looks meaningful."""
    return {**dict.fromkeys(keys), **{f"{key}_reason": reason for key in keys}}


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between two Gaussians: |μ1 − μ2|² + tr Σ1 + tr Σ2 − 2 tr √(Σ1 Σ2) (torch-fidelity's)."""
    mu1, mu2, sigma1, sigma2 = (np.asarray(x) for x in (mu1, mu2, sigma1, sigma2))
    diff = mu1 - mu2
    tr_covmean = np.sum(np.sqrt(np.linalg.eigvals(sigma1 @ sigma2).astype("complex128")).real)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def fid_statistics(features: torch.Tensor) -> dict[str, np.ndarray]:
    """FID statistics of (N, D) features: mean (D,) and covariance (D, D), as torch-fidelity computes them."""
    x = features.float().cpu().numpy()
    return {"mu": np.mean(x, axis=0), "sigma": np.cov(x, rowvar=False)}


def fid_from_statistics(generated: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
    """Fréchet distance of two statistics dicts."""
    return frechet_distance(generated["mu"], generated["sigma"], reference["mu"], reference["sigma"])


def inception_score(logits: torch.Tensor, splits: int) -> tuple[float, float]:
    """IS of (N, K) logits: mean and std over ``splits`` chunks of exp E[KL(p(y|x) ‖ p(y))], after a fixed shuffle."""
    n = logits.shape[0]
    x = logits[np.random.RandomState(RNG_SEED).permutation(n)].double()
    p, log_p = x.softmax(dim=1), x.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        chunk = slice(i * n // splits, (i + 1) * n // splits)
        q = p[chunk].mean(dim=0, keepdim=True)  # (1, K) marginal of the chunk
        scores.append((p[chunk] * (log_p[chunk] - q.log())).sum(dim=1).mean().exp().item())
    return float(np.mean(scores)), float(np.std(scores))


def kernel_inception_distance(generated: torch.Tensor, reference: torch.Tensor, *, subsets: int,
                              subset_size: int) -> tuple[float, float]:
    """KID: mean and std over ``subsets`` random subsets (no replacement) of the unbiased MMD² with the cubic kernel."""
    x, y = generated.cpu().numpy(), reference.cpu().numpy()
    rng = np.random.RandomState(RNG_SEED)
    mmds = np.zeros(subsets)
    for i in range(subsets):
        a = x[rng.choice(len(x), subset_size, replace=False)]
        b = y[rng.choice(len(y), subset_size, replace=False)]
        mmds[i] = _mmd2_unbiased(*(_poly_kernel(u, v) for u, v in ((a, a), (a, b), (b, b))))
    return float(np.mean(mmds)), float(np.std(mmds))


def _poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (np.matmul(x, y.T) * (1.0 / x.shape[1]) + KID_COEF0) ** KID_DEGREE  # (m, m)


def _mmd2_unbiased(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
    """Unbiased MMD² of (m, m) kernel matrices, summed in torch-fidelity's order (its float32 results exactly)."""
    m = k_xx.shape[0]
    within_x = (k_xx.sum(axis=1) - np.diagonal(k_xx)).sum()
    within_y = (k_yy.sum(axis=1) - np.diagonal(k_yy)).sum()
    return (within_x + within_y) / (m * (m - 1)) - 2 * k_xy.sum(axis=0).sum() / (m * m)


def precision_recall(generated: torch.Tensor, reference: torch.Tensor, *, neighborhood: int,
                     batch_size: int = 10_000) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): the share of generated samples inside some real
    sample's k-NN ball, and of real samples inside some generated sample's."""
    radii_gen, radii_ref = (_knn_radii(x, neighborhood, batch_size) for x in (generated, reference))
    recall = _inside_any_ball(reference, generated, radii_gen, batch_size)
    precision = _inside_any_ball(generated, reference, radii_ref, batch_size)
    return precision, recall


def _knn_radii(x: torch.Tensor, k: int, batch_size: int) -> torch.Tensor:
    """(N,) distance of each row of (N, D) ``x`` to its k-th nearest other row (itself is the 0th)."""
    return torch.cat([torch.cdist(part, x).kthvalue(k + 1).values for part in x.split(batch_size)])


def _inside_any_ball(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, batch_size: int) -> float:
    inside = [(torch.cdist(part, centres) <= radii).any(dim=1) for part in points.split(batch_size)]
    return torch.cat(inside).float().mean().item()


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
    isc = inception_score(generated[layers["isc"]], cfg.isc_splits) if "isc" in layers else None
    kid = kernel_inception_distance(generated[layers["kid"]], reference[layers["kid"]], subsets=cfg.kid_subsets,
                                    subset_size=kid_subset_size)
    prc_gen, prc_ref = equal_subsets(generated[layers["prc"]], reference[layers["prc"]], cfg.prc_samples)
    precision, recall = precision_recall(prc_gen, prc_ref, neighborhood=cfg.prc_neighborhood)
    return {
        "fid": fid,
        **(not_applicable(("isc_mean", "isc_std"), NO_CLASSES) if isc is None
           else dict(zip(("isc_mean", "isc_std"), isc, strict=True))),
        "kid_mean": kid[0],
        "kid_std": kid[1],
        "precision": precision,
        "recall": recall,
        "f_score": 2 * precision * recall / max(1e-5, precision + recall),  # torch-fidelity's guard
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
