"""One cell's FID over independent noise draws: the mean, a t-interval over draws, and FID∞.

One draw of N samples is one sample of a noisy statistic: an independent recomputation with 32 fresh draws put a
cell's single-draw FID below all of them. So a cell is scored on ``evaluate.noise_draws`` independent draws of
``num_samples`` each: its FID is their mean, its interval a t-interval over the draws (independent sets, so no
with-replacement bias as in a bootstrap, where duplicated samples inflate FID). FID is biased upwards in N
(Chong & Forsyth, CVPR 2020, "Effectively unbiased FID"): ``fid_infinity`` extrapolates each draw's FID on nested
subsets, linear in 1/n, to n → ∞, with the same t-interval over draws.

Distances use the identity tr√(Σg Σr) = Σ √λ(S Σg S) with S = Σr^½ computed once (the eigenvalues of Σg Σr
and S Σg S coincide), a symmetric eigen-solve per subset; a test checks it against torch-fidelity's FID.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.special import stdtrit

INFINITY_POINTS = 5  # subset sizes N/5, 2N/5, ..., N for the 1/n fit (Chong & Forsyth use 15 from 5k to 50k)


def _psd_sqrt(sigma: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(sigma)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


class FrechetToReference:
    """Fréchet distance of feature sets to fixed reference statistics (float64)."""

    def __init__(self, reference: dict[str, np.ndarray], device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.mu = torch.as_tensor(np.asarray(reference["mu"], dtype=np.float64), device=self.device)
        sigma = torch.as_tensor(np.asarray(reference["sigma"], dtype=np.float64), device=self.device)
        self.trace = float(torch.trace(sigma))
        self.sqrt = _psd_sqrt(sigma)  # (D, D)

    def __call__(self, features: torch.Tensor) -> float:
        """FID of (N, D) features to the reference."""
        x = features.to(self.device, torch.float64)
        mu = x.mean(dim=0)
        centred = x - mu
        sigma = centred.T @ centred / (x.shape[0] - 1)  # (D, D), as np.cov
        product = self.sqrt @ sigma @ self.sqrt
        tr_covmean = torch.linalg.eigvalsh((product + product.T) / 2).clamp(min=0).sqrt().sum()
        diff = mu - self.mu
        return float(diff @ diff + torch.trace(sigma) + self.trace - 2 * tr_covmean)


def fid_infinity(features: torch.Tensor, distance: FrechetToReference, *, generator: torch.Generator) -> float:
    """FID∞ of (N, D) features: FID of nested random subsets (no replacement) at N/5 ... N, fitted as a + b/n; a.

    Clamped at 0: the population FID cannot be negative, an extrapolation can.
    """
    n = features.shape[0]
    order = torch.randperm(n, generator=generator)
    sizes = np.unique(np.linspace(max(n // INFINITY_POINTS, 2), n, INFINITY_POINTS).astype(int))
    if len(sizes) < 2:
        return max(distance(features), 0.0)
    fids = [distance(features[order[:size]]) for size in sizes]
    _, intercept = np.polyfit(1.0 / sizes, fids, 1)
    return max(float(intercept), 0.0)


def t_interval(values: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    """Student-t interval of the mean of ``values`` clamped at 0 (FID ≥ 0); (None, None) for one value."""
    if len(values) < 2:
        return None, None
    if np.ptp(values) == 0:  # identical draws (a collapsed generator): no spread to scale
        return float(values[0]), float(values[0])
    # scipy.stats.t.interval's quantile from scipy.special (scipy.stats takes 0.9 s to import)
    half = stdtrit(len(values) - 1, (1 + confidence) / 2) * values.std(ddof=1) / np.sqrt(len(values))
    return max(float(values.mean() - half), 0.0), float(values.mean() + half)


def fid_over_draws(draws: Sequence[torch.Tensor], reference: dict[str, np.ndarray], *, confidence: float,
                   seed: int, device: torch.device | str = "cpu") -> dict[str, Any]:
    """FID of each of the independent (N, D) feature sets ``draws`` against fixed ``reference`` statistics.

    Returns ``fid`` (the mean over draws), ``fid_draws``, ``fid_draws_std``, the t-interval ``fid_ci_low`` /
    ``fid_ci_high`` (None with one draw), ``fid_ci_confidence``, ``fid_ci_method``, ``fid_infinity`` and its
    interval. The reference statistics are held fixed: the interval is the generated sets' sampling noise.
    Computed on ``device``; each draw is copied there once, not once per FID∞ subset.
    """
    distance = FrechetToReference(reference, device)
    generator = torch.Generator().manual_seed(seed)
    draws = [features.to(distance.device, torch.float64) for features in draws]
    fids = np.array([distance(features) for features in draws])
    infinities = np.array([fid_infinity(features, distance, generator=generator) for features in draws])
    low, high = t_interval(fids, confidence)
    inf_low, inf_high = t_interval(infinities, confidence)
    return {
        "fid": float(fids.mean()),
        "fid_draws": fids.tolist(),
        "fid_draws_std": float(fids.std(ddof=1)) if len(fids) > 1 else None,
        "fid_ci_low": low,
        "fid_ci_high": high,
        "fid_ci_confidence": confidence,
        "fid_ci_method": f"t-interval over {len(fids)} independent noise draws of {len(draws[0])} samples",
        "fid_infinity": float(infinities.mean()),
        "fid_infinity_ci_low": inf_low,
        "fid_infinity_ci_high": inf_high,
    }
