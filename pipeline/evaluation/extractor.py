"""The fitted evaluators as torch-fidelity feature extractors: ``domain-classifier`` and ``domain-contrastive``.

torch-fidelity builds one per ``calculate_metrics`` call as ``cls(name, features_list, **kwargs)`` and it reads
the evaluator from ``feature_extractor_weights_path`` (``models/evaluator.pt``). It feeds uint8 B×3×H×W
batches; the extractor maps them back to the evaluator's channels and resolution.

Classifier features: ``feat`` (penultimate layer; FID, KID, PRC), ``logits`` (the classifier's own logits; IS) and
``logits_unbiased`` (logits without the head's bias, as Inception's IS layer is named; not a default).
Contrastive features: ``feat`` (the embedding; FID, KID, PRC) only — it has no classes, so no IS.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

from pipeline.evaluation.classifier import to_unit_range
from pipeline.evaluation.evaluator import load_evaluator

EXTRACTOR_NAME = "domain-classifier"
CONTRASTIVE_NAME = "domain-contrastive"
FEATURES = ("feat", "logits", "logits_unbiased")
DEFAULT_LAYERS = {"fid": "feat", "kid": "feat", "prc": "feat", "isc": "logits"}
EMBEDDING_LAYERS = {"fid": "feat", "kid": "feat", "prc": "feat"}


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

    kind = "classifier"
    features_provided: tuple[str, ...] = FEATURES
    default_layers: dict[str, str] = DEFAULT_LAYERS

    def __init__(
        self, name: str, features_list: list[str], feature_extractor_weights_path: str | None = None, **kwargs: Any
    ):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise ValueError(f"the '{name}' feature extractor needs feature_extractor_weights_path (models/evaluator.pt)")
        self.classifier, self.info = load_evaluator(feature_extractor_weights_path)
        if self.info["kind"] != self.kind:
            raise ValueError(f"{feature_extractor_weights_path} holds a {self.info['kind']} evaluator, the '{name}' "
                             f"feature extractor reads a {self.kind}")
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def get_provided_features_list(cls) -> tuple[str, ...]:
        return cls.features_provided

    @classmethod
    def get_default_feature_layer_for_metric(cls, metric: str) -> str:
        if metric not in cls.default_layers:
            raise ValueError(f"no default feature layer for metric '{metric}' (known: {', '.join(cls.default_layers)})")
        return cls.default_layers[metric]

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


class ContrastiveFeatureExtractor(DomainFeatureExtractor):
    """The embedding of the trained :class:`~pipeline.evaluation.contrastive.ContrastiveEncoder`: no logits."""

    kind = "contrastive"
    features_provided = ("feat",)
    default_layers = EMBEDDING_LAYERS


def _register(name: str, cls: type) -> str:
    registered = FEATURE_EXTRACTORS_REGISTRY.get(name)
    if registered is None:
        register_feature_extractor(name, cls)
    elif registered.__qualname__ != cls.__qualname__ or registered.__module__ != __name__:
        raise RuntimeError(f"torch-fidelity already has a different feature extractor named '{name}'")
    return name


def register_domain_extractor() -> str:
    """Register :class:`DomainFeatureExtractor` with torch-fidelity once per process; returns its name."""
    return _register(EXTRACTOR_NAME, DomainFeatureExtractor)


def register_contrastive_extractor() -> str:
    """Register :class:`ContrastiveFeatureExtractor` with torch-fidelity once per process; returns its name."""
    return _register(CONTRASTIVE_NAME, ContrastiveFeatureExtractor)
