"""Evaluation: the domain classifier (feature network), its torch-fidelity extractor, and FID/IS/KID."""

from pipeline.evaluation.classifier import (
    DomainClassifier,
    fit_classifier,
    load_evaluator,
    save_evaluator,
    weights_hash,
)
from pipeline.evaluation.extractor import EXTRACTOR_NAME, DomainFeatureExtractor, register_domain_extractor
from pipeline.evaluation.metrics import compute_metrics, frechet_distance

__all__ = [
    "EXTRACTOR_NAME",
    "DomainClassifier",
    "DomainFeatureExtractor",
    "compute_metrics",
    "fit_classifier",
    "frechet_distance",
    "load_evaluator",
    "register_domain_extractor",
    "save_evaluator",
    "weights_hash",
]
