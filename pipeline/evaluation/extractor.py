"""The domain classifier as a torch-fidelity feature extractor named ``domain-classifier``.

torch-fidelity builds it per ``calculate_metrics`` call as ``cls(name, features_list, **kwargs)`` and reads
the classifier from ``feature_extractor_weights_path`` (``models/evaluator.pt``). It feeds uint8 B×3×H×W
batches; the extractor maps them back to the classifier's channels and resolution.

Features: ``feat`` (penultimate layer; FID, KID, PRC), ``logits`` (the classifier's own logits; IS) and
``logits_unbiased`` (logits without the head's bias, as Inception's IS layer is named; not a default).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

from pipeline.evaluation.classifier import load_evaluator, to_unit_range

EXTRACTOR_NAME = "domain-classifier"
FEATURES = ("feat", "logits", "logits_unbiased")
DEFAULT_LAYERS = {"fid": "feat", "kid": "feat", "prc": "feat", "isc": "logits"}


def to_classifier_input(x: torch.Tensor, *, channels: int, resolution: int) -> torch.Tensor:
    """uint8 (B, 3, H, W) from torch-fidelity → float (B, channels, resolution, resolution) in [-1, 1]."""
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected uint8 B×3×H×W images, got {x.dtype} with shape {tuple(x.shape)}")
    if channels == 1:
        # Grey images arrive repeated to 3 channels; their mean is exactly the grey value (3a / 3 == a in float).
        x = x.float().mean(dim=1, keepdim=True)  # (B, 1, H, W)
    if x.shape[-2:] != (resolution, resolution):
        x = F.interpolate(x.float(), size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
    return to_unit_range(x)  # float in [0, 255] or uint8 → [-1, 1]


class DomainFeatureExtractor(FeatureExtractorBase):
    """Penultimate features and logits of the trained :class:`~pipeline.evaluation.classifier.DomainClassifier`."""

    def __init__(
        self, name: str, features_list: list[str], feature_extractor_weights_path: str | None = None, **kwargs: Any
    ):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise ValueError(f"the '{name}' feature extractor needs feature_extractor_weights_path (models/evaluator.pt)")
        self.classifier, self.info = load_evaluator(feature_extractor_weights_path)
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return FEATURES

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        if metric not in DEFAULT_LAYERS:
            raise ValueError(f"no default feature layer for metric '{metric}' (known: {', '.join(DEFAULT_LAYERS)})")
        return DEFAULT_LAYERS[metric]

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> torch.Tensor:
        return (torch.rand([1, 3, 32, 32]) * 255).to(torch.uint8)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        model = self.classifier
        x = to_classifier_input(x, channels=model.channels, resolution=model.resolution)
        feat = model.features(x)  # (B, feature_dim)
        computed: dict[str, torch.Tensor] = {"feat": feat}
        if "logits" in self.features_list:
            computed["logits"] = model.head(feat)  # (B, num_classes)
        if "logits_unbiased" in self.features_list:
            computed["logits_unbiased"] = feat @ model.head.weight.T  # (B, num_classes), no bias
        return tuple(computed[name] for name in self.features_list)


def register_domain_extractor() -> str:
    """Register :class:`DomainFeatureExtractor` with torch-fidelity once per process; returns its name."""
    registered = FEATURE_EXTRACTORS_REGISTRY.get(EXTRACTOR_NAME)
    if registered is None:
        register_feature_extractor(EXTRACTOR_NAME, DomainFeatureExtractor)
    elif registered.__qualname__ != DomainFeatureExtractor.__qualname__ or registered.__module__ != __name__:
        raise RuntimeError(f"torch-fidelity already has a different feature extractor named '{EXTRACTOR_NAME}'")
    return EXTRACTOR_NAME
