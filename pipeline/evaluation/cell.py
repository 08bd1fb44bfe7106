"""Evaluate one grid cell: sample from its trained generator, score it in every configured feature space, score its
training snapshots, write ``metrics/<cell>.json`` and log it all to the cell's MLflow run.

The first of ``evaluate.extractors`` is the headline feature space: its numbers are the file's top-level ``fid``,
``isc_mean``, ... and get NDB; its FID is averaged over ``evaluate.noise_draws`` independent noise draws with a
t-interval over them and FID∞ (:mod:`~pipeline.evaluation.uncertainty`); every other metric and every other space
is scored on the first draw. Every space's numbers are under ``feature_spaces``. Class
coverage and the FID-over-training curve always use the fitted evaluator (``domain``: cheap, and a classifier knows
the classes); with a contrastive evaluator, which has none, IS and class coverage are null with their reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pipeline import layout
from pipeline.config import EvaluateConfig, Params
from pipeline.data import load_meta, load_prepared
from pipeline.evaluation.curve import score_snapshots, time_to_within
from pipeline.evaluation.features import FeatureDict, Features, FeatureSpace, resolve_space
from pipeline.evaluation.metrics import METRIC_KEYS, NO_CLASSES, fid_statistics, not_applicable, score_features
from pipeline.evaluation.modes import class_coverage
from pipeline.evaluation.ndb import BIN_FIELDS, NDB_KEYS, Bins, fit_bins, ndb
from pipeline.evaluation.uncertainty import FrechetToReference, fid_over_draws
from pipeline.generators import load_generator
from pipeline.layout import Cell
from pipeline.models import ImageGenerator
from pipeline.records import CellMetrics, TrainSummary, read_record, write_record
from pipeline.tracking import CellRun, warn_undelivered
from pipeline.training.runtime import resolve_device

EVAL_SEED_OFFSET = 1_000_003  # evaluation noise is independent of the training noise of the same seed
CURVE_SEED_OFFSET = 2_000_003
CI_KEYS = ("fid_draws", "fid_draws_std", "fid_ci_low", "fid_ci_high", "fid_ci_confidence", "fid_ci_method",
           "fid_infinity", "fid_infinity_ci_low", "fid_infinity_ci_high")
COVERAGE_KEYS = ("num_classes", "classes_covered", "class_kl", "class_histogram", "real_class_share", "class_names")
CLASS_METRICS = ("classes_covered", "class_kl", "class_histogram")
CURVE_KEYS = ("fid_curve", "curve_feature_extractor", "curve_num_samples", "time_to_within_10pct",
              "steps_to_within_10pct")
SPACE_KEYS = (*METRIC_KEYS, "fid_ci_low", "fid_ci_high")
MIN_PER_BIN = 20  # NDB: at most one bin per this many reference images, so each bin's share can be tested


def read_train_summary(cell: Cell) -> TrainSummary:
    """The cell's ``train.json``; InputError naming it when the cell was not trained (or by an older version)."""
    hint = f"run `python -m stages train --variant {cell.variant} --seed {cell.seed}` first"
    return read_record(cell.train_summary, TrainSummary, hint=hint)


def build_features(key: str, cfg: EvaluateConfig, device: torch.device) -> Features:
    """The extractor of feature space ``key`` with its weights: the evaluator file, or the Inception weights."""
    space = resolve_space(key, layout.EVALUATOR_PATH)
    weights = layout.EVALUATOR_PATH if space.key == "domain" else cfg.inception_weights
    return Features(space, weights, batch_size=cfg.batch_size, device=device)


def headline_space(cfg: EvaluateConfig) -> FeatureSpace:
    """The first of ``evaluate.extractors``, resolved (``domain`` names the evaluator's own space)."""
    return resolve_space(cfg.extractors[0], layout.EVALUATOR_PATH)


class ReferenceSet:
    """The test split and, per feature space, its (cached) features; scored on ``device`` (the training device,
    ``train.device``: the GPU when there is one)."""

    def __init__(self, cfg: EvaluateConfig, device: str = "auto"):
        self.device = resolve_device(device)
        self.images, self.labels = load_prepared("test")
        self.meta = load_meta()
        self.key = f"{self.meta['fingerprint']}-test"
        self.cfg = cfg
        self.spaces: dict[str, tuple[Features, FeatureDict]] = {}
        self._bins: dict[str, Bins] = {}

    def features(self, key: str) -> tuple[Features, FeatureDict]:
        if key not in self.spaces:
            extractor = build_features(key, self.cfg, self.device)
            self.spaces[key] = extractor, extractor.reference(self.images, key=self.key, cache_dir=layout.CACHE_DIR)
        return self.spaces[key]

    def bins(self, key: str) -> Bins:
        """NDB's k-means bins of the reference features in space ``key``, cached beside the features (every cell
        is binned by the same centres)."""
        if key not in self._bins:
            extractor, ref = self.features(key)
            feats = ref[extractor.layers["fid"]]
            count = max(2, min(self.cfg.ndb_bins, feats.shape[0] // MIN_PER_BIN))
            self._bins[key] = Bins.from_dict(extractor.cached(
                self.images, key=f"{self.key}-ndb{count}", cache_dir=layout.CACHE_DIR,
                compute=lambda: fit_bins(feats, bins=count).to_dict(), required=BIN_FIELDS))
        return self._bins[key]


def sample_draws(generator: ImageGenerator, num_samples: int, *, draws: int, seed: int,
                 batch_size: int) -> list[torch.Tensor]:
    """``draws`` independent sets of ``num_samples`` uint8 images (N, C, R, R), one noise stream seeded by ``seed``."""
    noise = torch.Generator().manual_seed(seed + EVAL_SEED_OFFSET)
    return [generator.sample(num_samples, generator=noise, batch_size=batch_size) for _ in range(draws)]


def score_samples(draws: list[torch.Tensor], reference: ReferenceSet, cfg: EvaluateConfig,
                  seed: int) -> dict[str, Any]:
    """Every metric of generated uint8 image sets ``draws``: headline FID over all draws, the rest on the first."""
    fake = draws[0]
    result: dict[str, Any] = {"feature_spaces": {}}
    domain_logits = None
    for index, key in enumerate(cfg.extractors):
        extractor, ref = reference.features(key)
        gen = extractor(fake)
        scores = score_features(gen, ref, extractor.layers, cfg)
        if index == 0:
            layer = extractor.layers["fid"]
            features = [gen[layer], *(extractor(images)[layer] for images in draws[1:])]
            scores.update(fid_over_draws(features, fid_statistics(ref[layer]), confidence=cfg.confidence, seed=seed,
                                         device=reference.device))
            result.update(scores, **ndb(gen[layer], reference.bins(key), alpha=cfg.ndb_alpha))
        result["feature_spaces"][extractor.space.extractor] = {k: scores.get(k) for k in SPACE_KEYS}
        if key == "domain" and "isc" in extractor.layers:
            domain_logits = gen[extractor.layers["isc"]]
    domain, _ = reference.features("domain")
    if "isc" not in domain.layers:
        return {**result, "num_classes": None, **not_applicable(CLASS_METRICS, NO_CLASSES)}
    if domain_logits is None:
        domain_logits = domain(fake)[domain.layers["isc"]]
    result.update(class_coverage(domain_logits, reference.labels, min_share=cfg.coverage_min_share))
    result["class_names"] = reference.meta.get("class_names")
    return result


def score_curve(variant: str, seed: int, reference: ReferenceSet, cfg: EvaluateConfig) -> dict[str, Any]:
    """The FID-over-training curve of the cell's snapshots in the domain feature space."""
    domain, ref = reference.features("domain")
    distance = FrechetToReference(fid_statistics(ref[domain.layers["fid"]]), reference.device)
    points = score_snapshots(Cell(variant, seed).snapshots, domain, distance,
                             num_samples=cfg.curve_samples, seed=seed + CURVE_SEED_OFFSET, batch_size=cfg.batch_size,
                             device=reference.device)
    return {"fid_curve": points, "curve_feature_extractor": domain.space.extractor,
            "curve_num_samples": cfg.curve_samples, **time_to_within(points)}


def score_cell(variant: str, seed: int, *, ok: bool, cfg: EvaluateConfig, device: str = "auto") -> dict[str, Any]:
    """Every metric of a trained cell's samples and its FID curve; only the curve for a diverged/failed cell."""
    reference = ReferenceSet(cfg, device)
    result: dict[str, Any] = {}
    if ok:
        generator, _ = load_generator(Cell(variant, seed).generator, device=reference.device,
                                      channels_last=True)
        draws = sample_draws(generator, cfg.num_samples, draws=cfg.noise_draws, seed=seed, batch_size=cfg.batch_size)
        result.update(score_samples(draws, reference, cfg, seed))
    result.update(score_curve(variant, seed, reference, cfg))
    if not ok:
        result.update(time_to_within_10pct=None, steps_to_within_10pct=None)
    return result


def evaluate_cell(params: Params, variant: str, seed: int) -> CellMetrics:
    """Score one cell and write its metrics file; a diverged cell gets null metrics, its reason and its curve."""
    params.variant(variant)
    cfg, cell = params.evaluate, Cell(variant, seed)
    summary = read_train_summary(cell)
    headline = headline_space(cfg)
    result: dict[str, Any] = {
        "variant": variant, "seed": seed, "status": summary.status, "reason": summary.reason,
        "feature_extractor": headline.extractor, "num_samples": cfg.num_samples,
        **summary.model_dump(include={"steps", "train_seconds", "images_per_second", "num_parameters",
                                      "mlflow_run_id", "mlflow_model_uri", "mlflow_outbox"}),
        **dict.fromkeys((*METRIC_KEYS, *CI_KEYS, *COVERAGE_KEYS, *CURVE_KEYS, *NDB_KEYS, "feature_spaces")),
    }
    # attached first: its sender opens the MLflow store in the background while the cell is scored
    run = CellRun.attach(Path(result["mlflow_outbox"]) if result.get("mlflow_outbox") else None,
                         run_id=result["mlflow_run_id"], root=cell.outbox)
    try:
        result.update(score_cell(variant, seed, ok=summary.status == "ok", cfg=cfg, device=params.train.device))
    except BaseException:
        if run is not None:
            run.finish(None, wait=0)  # stop its sender; what it holds stays in the outbox
        raise
    if run is not None:
        log_to_mlflow(run, result)
        warn_undelivered(cell.name, run.finish(None, wait=params.tracking.delivery_timeout), run.outbox.folder)
        result.update(mlflow_run_id=run.run_id, mlflow_model_uri=run.model_uri, mlflow_outbox=str(run.outbox.folder))
    metrics = CellMetrics.model_validate(result)  # a missing, renamed or extra key fails here, before writing
    write_record(cell.metrics, metrics)
    return metrics


def log_to_mlflow(run: CellRun, result: dict[str, Any]) -> None:
    """Headline metrics at the final step, other spaces prefixed by their extractor, the curve per snapshot step."""
    scalar = ("fid", "isc_mean", "isc_std", "kid_mean", "kid_std", "precision", "recall", "f_score", "fid_ci_low",
              "fid_ci_high", "fid_infinity", "classes_covered", "class_kl", "ndb", "ndb_share", "ndb_js",
              "time_to_within_10pct")
    metrics = {k: float(result[k]) for k in scalar if result.get(k) is not None}
    for extractor, scores in (result.get("feature_spaces") or {}).items():
        if extractor != result["feature_extractor"]:
            metrics.update({f"{extractor}/{k}": float(v) for k, v in scores.items() if v is not None})
    run.log_metrics(metrics, step=int(result["steps"] or 0))
    for point in result["fid_curve"] or []:
        if point["fid"] is not None:
            run.log_metrics({"curve_fid": point["fid"], "curve_train_seconds": point["train_seconds"]},
                            step=point["step"])
    run.set_tags({"evaluated": "true", "feature_extractor": result["feature_extractor"]})
