"""Evaluate one grid cell: sample from its trained generator, score it, write ``metrics/<cell>.json``, log to MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pipeline import layout
from pipeline.config import Params
from pipeline.data import load_meta, load_prepared
from pipeline.evaluation.metrics import compute_metrics
from pipeline.generators import load_generator
from pipeline.io import atomic_write_json, read_json
from pipeline.tracking import CellRun

EVAL_SEED_OFFSET = 1_000_003  # evaluation noise is independent of the training noise of the same seed
METRIC_KEYS = ("fid", "isc_mean", "isc_std", "kid_mean", "kid_std")
EXTRACTOR_NAMES = {"domain": "domain-classifier"}


def read_train_summary(variant: str, seed: int) -> dict[str, Any]:
    """``runs/<cell>/train.json``; InputError when the cell was not trained."""
    hint = f"run `python -m stages train --variant {variant} --seed {seed}` first"
    return read_json(layout.run_dir(variant, seed) / "train.json", what="training summary", hint=hint)


def evaluate_cell(params: Params, variant: str, seed: int) -> dict[str, Any]:
    """Score one cell and write its metrics file; diverged/failed cells get null metrics and their reason."""
    params.variant(variant)
    cfg = params.evaluate
    summary = read_train_summary(variant, seed)
    result: dict[str, Any] = {
        "variant": variant, "seed": seed, "status": summary["status"], "reason": summary.get("reason"),
        "feature_extractor": EXTRACTOR_NAMES[cfg.extractor], "num_samples": cfg.num_samples,
        **{key: summary.get(key) for key in ("steps", "train_seconds", "images_per_second", "num_parameters",
                                              "mlflow_run_id")},
        **dict.fromkeys(METRIC_KEYS),
    }
    if summary["status"] == "ok":
        device = "cuda" if torch.cuda.is_available() else "cpu"
        generator, _ = load_generator(layout.run_dir(variant, seed) / "generator.pt", device=device)
        noise = torch.Generator().manual_seed(seed + EVAL_SEED_OFFSET)
        fake = generator.sample(cfg.num_samples, generator=noise, batch_size=cfg.batch_size)  # (N, C, R, R) uint8
        reference, _ = load_prepared("test")
        meta = load_meta()
        scores = compute_metrics(
            fake, reference, cfg=cfg, weights_path=layout.EVALUATOR_PATH, reference_key=f"{meta['fingerprint']}-test"
        )
        result.update({key: scores[key] for key in METRIC_KEYS})
    atomic_write_json(layout.metrics_path(variant, seed), result)
    if result["mlflow_run_id"]:
        run = CellRun.attach(result["mlflow_run_id"])
        run.log_metrics({k: result[k] for k in METRIC_KEYS if result[k] is not None}, step=int(result["steps"] or 0))
        run.set_tags({"evaluated": "true", "feature_extractor": result["feature_extractor"]})
        run.flush()
    return result
