"""The fitted evaluators as feature extractors: ``domain-classifier`` and ``domain-contrastive``.

They follow torch-fidelity's extractor interface (``features_list``, a tuple of (B, D) features per call,
``get_default_feature_layer_for_metric``) without importing it: torch-fidelity imports torchvision, whose ``ops``
import ``torch._dynamo`` (3 s on 2 cores, in every evaluate process). They read the evaluator from
``models/evaluator.pt`` and take uint8 B×3×H×W batches as torch-fidelity's extractors do, mapping them back to the
evaluator's channels and resolution.

Classifier features: ``feat`` (penultimate layer; FID, KID, PRC), ``logits`` (the classifier's own logits; IS) and
``logits_unbiased`` (logits without the head's bias, as Inception's IS layer is named; not a default).
Contrastive features: ``feat`` (the embedding; FID, KID, PRC) only — it has no classes, so no IS.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from pipeline.evaluation.classifier import to_unit_range
from pipeline.evaluation.evaluator import load_evaluator

EXTRACTOR_NAME = "domain-classifier"
CONTRASTIVE_NAME = "domain-contrastive"
FEATURES = ("feat", "logits", "logits_unbiased")
DEFAULT_LAYERS = {"fid": "feat", "kid": "feat", "prc": "feat", "isc": "logits"}
EMBEDDING_LAYERS = {"fid": "feat", "kid": "feat", "prc": "feat"}


def to_classifier_input(x: torch.Tensor, *, channels: int, resolution: int) -> torch.Tensor:
    """uint8 (B, 3, H, W), grey repeated to 3 channels as torch-fidelity feeds its extractors → float
    (B, channels, resolution, resolution) in [-1, 1]."""
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected uint8 B×3×H×W images, got {x.dtype} with shape {tuple(x.shape)}")
    if channels == 1:
        # Grey images arrive repeated to 3 channels; their mean is exactly the grey value (3a / 3 == a in float).
        x = x.float().mean(dim=1, keepdim=True)  # (B, 1, H, W)
    if x.shape[-2:] != (resolution, resolution):
        x = F.interpolate(x.float(), size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
    return to_unit_range(x)  # float in [0, 255] or uint8 → [-1, 1]


class DomainFeatureExtractor(nn.Module):
    """Penultimate features and logits of the trained :class:`~pipeline.evaluation.classifier.DomainClassifier`."""

    kind = "classifier"
    features_provided: tuple[str, ...] = FEATURES
    default_layers: dict[str, str] = DEFAULT_LAYERS

    def __init__(self, weights: str | Path, features_list: list[str]):
        super().__init__()
        unknown = sorted(set(features_list) - set(self.features_provided))
        if unknown:
            raise ValueError(f"the {self.kind} evaluator provides {', '.join(self.features_provided)}, not "
                             f"{', '.join(unknown)}")
        self.features_list = list(features_list)
        self.classifier, self.info = load_evaluator(weights)
        if self.info["kind"] != self.kind:
            raise ValueError(f"{weights} holds a {self.info['kind']} evaluator, not a {self.kind}")
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def get_default_feature_layer_for_metric(cls, metric: str) -> str:
        if metric not in cls.default_layers:
            raise ValueError(f"no default feature layer for metric '{metric}' (known: {', '.join(cls.default_layers)})")
        return cls.default_layers[metric]

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
