"""Evaluation: the evaluators (domain classifier, contrastive encoder), feature spaces, FID/IS/KID/PRC, NDB,
uncertainty, mode coverage, curves and the feature-space check."""

from pipeline.evaluation.classifier import DomainClassifier, fit_classifier
from pipeline.evaluation.contrastive import ContrastiveEncoder, fit_contrastive
from pipeline.evaluation.evaluator import fit_evaluator, load_evaluator, save_evaluator, weights_hash
from pipeline.evaluation.extractor import EXTRACTOR_NAME, DomainFeatureExtractor
from pipeline.evaluation.features import FEATURE_SPACES, Features, FeatureSpace
from pipeline.evaluation.metrics import frechet_distance, score_features

__all__ = [
    "EXTRACTOR_NAME",
    "FEATURE_SPACES",
    "ContrastiveEncoder",
    "DomainClassifier",
    "DomainFeatureExtractor",
    "FeatureSpace",
    "Features",
    "fit_classifier",
    "fit_contrastive",
    "fit_evaluator",
    "frechet_distance",
    "load_evaluator",
    "save_evaluator",
    "score_features",
    "weights_hash",
]
