"""``prune``: the pruning study of one grid cell (global magnitude pruning of its generator)."""

from __future__ import annotations

from pathlib import Path

import typer

from stages.common import ParamsOption, SeedOption, VariantOption, check_in_grid, exits_on_bad_input, load


@exits_on_bad_input
def main(variant: VariantOption, seed: SeedOption, params: ParamsOption = Path("params.yaml")) -> None:
    """Prune the cell's trained generator at every prune.sparsities level (optionally fine-tuning it against the
    frozen discriminator), score FID/IS/KID, count non-zero parameters, sparse bytes and CPU latency; write
    metrics/prune-<variant>-<seed>.json and log to the cell's MLflow run."""
    cfg = load(params)
    check_in_grid(cfg, variant, seed)
    from pipeline.prune_study import log_prune_to_mlflow, prune_cell  # heavy imports after validation

    result = prune_cell(cfg, variant, seed)
    log_prune_to_mlflow(result, delivery_timeout=cfg.tracking.delivery_timeout)
    if not result.rows:
        typer.echo(f"{variant}-{seed}: {result.status} cell, nothing to prune")
        return
    for row in result.rows:
        typer.echo(f"{variant}-{seed} sparsity {row.sparsity:.0%}: FID {row.fid:.2f}, "
                   f"{row.nonzero_parameters:,} non-zero parameters, {row.sparse_bytes / 1024:.0f} KiB sparse, "
                   f"{row.latency_ms:.1f} ms / {cfg.prune.latency_batch_size} images")
    within = result.largest_sparsity_within_noise
    typer.echo(f"{variant}-{seed}: largest sparsity within the dense model's FID noise: "
               + ("none" if within is None else f"{within:.0%}"))
