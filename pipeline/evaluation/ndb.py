"""Mode coverage without labels: NDB, the number of statistically different bins (Richardson & Weiss, NeurIPS 2018).

The reference features are clustered by k-means into ``K`` bins; generated features are assigned to the nearest
centre. A bin is *different* when a two-sided two-proportion z-test rejects equal shares at level ``alpha``; NDB is
their number (``ndb``, and ``ndb_share`` = NDB / K). A generator that drops modes empties their bins and
over-fills the rest, so NDB grows with the share of modes dropped. ``ndb_js`` is the Jensen-Shannon divergence
(nats) of the two bin histograms. Features are standardised with the reference's mean and spread first, so no
feature dominates the distances.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.special import ndtr, rel_entr

NDB_KEYS = ("ndb", "ndb_share", "ndb_js", "ndb_bins", "ndb_alpha")
BIN_FIELDS = frozenset({"mean", "scale", "centres", "counts"})


@dataclass(frozen=True)
class Bins:
    """K-means bins of reference features: standardisation, centres (K, D) and reference counts (K,)."""

    mean: np.ndarray
    scale: np.ndarray
    centres: np.ndarray
    counts: np.ndarray

    def assign(self, features: torch.Tensor | np.ndarray) -> np.ndarray:
        """Index of the nearest centre for each of (N, D) features."""
        x = (np.asarray(features, dtype=np.float64) - self.mean) / self.scale  # (N, D)
        distances = (x**2).sum(1, keepdims=True) - 2 * x @ self.centres.T + (self.centres**2).sum(1)  # (N, K)
        return distances.argmin(axis=1)

    def to_dict(self) -> dict[str, torch.Tensor]:
        return {name: torch.from_numpy(np.asarray(getattr(self, name))) for name in BIN_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, torch.Tensor]) -> Bins:
        return cls(**{name: data[name].numpy() for name in BIN_FIELDS})


def fit_bins(reference: torch.Tensor, *, bins: int, seed: int = 0) -> Bins:
    """K-means (scikit-learn, k-means++ initialisation) of standardised reference features (N, D) into ``bins``."""
    x = reference.double().numpy()
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    k = min(bins, x.shape[0])
    from sklearn.cluster import KMeans  # 2 s to import; bins are fitted once per reference set and cached

    kmeans = KMeans(n_clusters=k, n_init=1, random_state=seed).fit((x - mean) / scale)
    return Bins(mean, scale, kmeans.cluster_centers_, np.bincount(kmeans.labels_, minlength=k))


def ndb(generated: torch.Tensor, bins: Bins, *, alpha: float) -> dict[str, Any]:
    """NDB of generated (N, D) features against the reference bins, with its share of bins and JS divergence."""
    k = len(bins.counts)
    gen_counts = np.bincount(bins.assign(generated), minlength=k)
    n_ref, n_gen = bins.counts.sum(), gen_counts.sum()
    p_ref, p_gen = bins.counts / n_ref, gen_counts / n_gen
    pooled = (bins.counts + gen_counts) / (n_ref + n_gen)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n_gen))
    z = np.divide(p_gen - p_ref, se, out=np.zeros(k), where=se > 0)
    different = int((2 * ndtr(-np.abs(z)) < alpha).sum())  # two-sided normal p-value
    return {
        "ndb": different,
        "ndb_share": different / k,
        "ndb_js": js_divergence(p_gen, p_ref),
        "ndb_bins": k,
        "ndb_alpha": alpha,
    }


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (nats) of two probability vectors (scipy's ``jensenshannon`` squared, without its
    0.5 s import of scipy.spatial)."""
    m = (p + q) / 2
    return float((rel_entr(p, m).sum() + rel_entr(q, m).sum()) / 2)
