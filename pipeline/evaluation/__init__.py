"""Evaluation: the domain classifier, feature spaces, FID/IS/KID/PRC, uncertainty, mode coverage, curves."""

from pipeline.evaluation.classifier import (
    DomainClassifier,
    fit_classifier,
    load_evaluator,
    save_evaluator,
    weights_hash,
)
from pipeline.evaluation.extractor import EXTRACTOR_NAME, DomainFeatureExtractor, register_domain_extractor
from pipeline.evaluation.features import FEATURE_SPACES, Features, FeatureSpace
from pipeline.evaluation.metrics import frechet_distance, score_features

__all__ = [
    "EXTRACTOR_NAME",
    "FEATURE_SPACES",
    "DomainClassifier",
    "DomainFeatureExtractor",
    "FeatureSpace",
    "Features",
    "fit_classifier",
    "frechet_distance",
    "load_evaluator",
    "register_domain_extractor",
    "save_evaluator",
    "score_features",
    "weights_hash",
]
