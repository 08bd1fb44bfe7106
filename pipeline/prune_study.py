"""The pruning study of one grid cell: its generator pruned at every ``prune.sparsities`` level, optionally fine-tuned
against the frozen discriminator, scored (FID/IS/KID in the headline feature space) and costed; written to
``metrics/prune-<cell>.json`` and the cell's MLflow run.

Every sparsity is scored on the same ``evaluate.noise_draws`` noise draws of ``prune.num_samples``; a sparsity is
"within noise" when its mean FID over the draws is no higher than the upper end of the dense model's interval.
The answer to "fewer parameters, same quality?" is the largest sparsity within noise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pipeline.config import Params
from pipeline.evaluation.cell import ReferenceSet, read_train_summary, sample_draws, score_samples
from pipeline.generators import load_generator
from pipeline.layout import Cell, list_steps
from pipeline.losses import get_gan_loss
from pipeline.models import ImageGenerator, build_model
from pipeline.records import PruneResult, write_record
from pipeline.pruning import (
    finetune_generator,
    generation_latency,
    make_permanent,
    parameter_counts,
    prune_global,
    serialized_bytes,
)
from pipeline.training import checkpoint as ckpt

SCORES = ("fid", "isc_mean", "kid_mean", "precision", "recall", "classes_covered")


def frozen_discriminator(params: Params, variant: str, seed: int, meta: dict) -> torch.nn.Module | None:
    """The cell's discriminator from its newest checkpoint; None when there is no checkpoint."""
    found = list_steps(Cell(variant, seed).checkpoints)
    if not found:
        return None
    cfg = params.variant(variant)
    networks = build_model(cfg.model, channels=meta["channels"], resolution=meta["resolution"])
    networks["discriminator"].load_state_dict(ckpt.load_checkpoint(found[-1][1])["trainer"]["discriminator"])
    return networks["discriminator"]


def largest_within_noise(rows: list[dict[str, Any]], ceiling: float | None) -> float | None:
    """The largest sparsity whose FID is at most ``ceiling`` (the upper end of the dense FID's interval)."""
    if ceiling is None:
        return None
    within = [row["sparsity"] for row in rows if row["fid"] is not None and row["fid"] <= ceiling]
    return max(within) if within else None


def prune_cell(params: Params, variant: str, seed: int) -> PruneResult:
    """Run the study for one cell and write its metrics file; diverged/failed cells get no rows and their reason."""
    cfg, study = params.variant(variant), params.prune
    cell = Cell(variant, seed)
    summary = read_train_summary(cell)
    evaluate = params.evaluate.model_copy(update={"num_samples": study.num_samples, "extractors": params.evaluate.extractors[:1]})
    result: dict[str, Any] = {
        "variant": variant, "seed": seed, "kind": cfg.kind, "status": summary.status, "reason": summary.reason,
        "num_samples": study.num_samples, "finetune_steps": study.finetune_steps if cfg.kind == "gan" else 0,
        "rows": [], "dense_fid_ci_high": None, "largest_sparsity_within_noise": None,
    }
    if summary.status == "ok":
        reference = ReferenceSet(evaluate, params.train.device)  # sampling, fine-tuning and scoring on it
        dense, _ = load_generator(cell.generator, device=reference.device)
        critic = frozen_discriminator(params, variant, seed, reference.meta) if cfg.kind == "gan" else None
        critic = critic.to(reference.device) if critic is not None else None
        for sparsity in study.sparsities:
            result["rows"].append(_score_sparsity(dense, critic, sparsity, params, variant, seed, reference, evaluate))
        dense_row = result["rows"][0]
        result["dense_fid_ci_high"] = dense_row.get("fid_ci_high")
        result["largest_sparsity_within_noise"] = largest_within_noise(result["rows"], result["dense_fid_ci_high"])
    record = PruneResult.model_validate(result)
    write_record(cell.prune_metrics, record)
    return record


def _score_sparsity(dense: ImageGenerator, critic: torch.nn.Module | None, sparsity: float, params: Params, variant: str,
                    seed: int, reference: ReferenceSet, evaluate: Any) -> dict[str, Any]:
    study, cfg = params.prune, params.variant(variant)
    net = prune_global(dense.net, sparsity)
    finetune_losses: list[float] = []
    if critic is not None and sparsity > 0 and study.finetune_steps:
        finetune_losses = finetune_generator(net, critic, get_gan_loss(cfg.loss), latent_dim=dense.latent_dim,
                                             steps=study.finetune_steps, batch_size=study.finetune_batch_size,
                                             lr=study.finetune_lr, seed=seed, teacher=dense.net,
                                             distill_weight=study.finetune_distill_weight)
    net = make_permanent(net).eval()
    generator = ImageGenerator(net, latent_dim=dense.latent_dim, output=dense.output)
    draws = sample_draws(generator, study.num_samples, draws=evaluate.noise_draws, seed=seed,
                         batch_size=evaluate.batch_size)  # the same noise at every sparsity
    scores = score_samples(draws, reference, evaluate, seed)
    counts = parameter_counts(net)
    return {
        "sparsity": sparsity,
        "achieved_sparsity": 1 - counts["nonzero_prunable_weights"] / counts["prunable_weights"],
        **{key: scores.get(key) for key in SCORES},
        **({"fid_ci_low": scores["fid_ci_low"], "fid_ci_high": scores["fid_ci_high"]} if sparsity == 0 else {}),
        **counts,
        "dense_bytes": serialized_bytes(net, sparse=False),
        "sparse_bytes": serialized_bytes(net, sparse=True),
        "latency_ms": 1000 * generation_latency(generator, batch_size=study.latency_batch_size,
                                                repeats=study.latency_repeats),
        "finetune_final_loss": finetune_losses[-1] if finetune_losses else None,
    }


def log_prune_to_mlflow(result: PruneResult, *, delivery_timeout: float) -> None:
    """Per-sparsity metrics on the cell's run: ``prune/<metric>`` at step = sparsity in percent."""
    from pipeline.tracking import CellRun, warn_undelivered

    cell = Cell(result.variant, result.seed)
    summary = read_train_summary(cell)
    outbox = summary.mlflow_outbox
    run = CellRun.attach(Path(outbox) if outbox else None, run_id=summary.mlflow_run_id, root=cell.outbox)
    if run is None:
        return
    for row in result.rows:
        values = {f"prune/{k}": v for k in (*SCORES, "nonzero_parameters", "sparse_bytes", "latency_ms")
                  if (v := getattr(row, k)) is not None}
        run.log_metrics(values, step=round(100 * row.sparsity))
    if result.largest_sparsity_within_noise is not None:
        run.log_metrics({"prune/largest_sparsity_within_noise": result.largest_sparsity_within_noise}, step=0)
    warn_undelivered(cell.name, run.finish(None, wait=delivery_timeout), run.outbox.folder)
