"""The pruning study in the report: FID against sparsity per cell, and per variant the largest sparsity whose FID
stays within the dense model's noise (its interval over noise draws), with what that sparsity saves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib import ticker
from matplotlib.figure import Figure

from pipeline.config import Params
from pipeline.layout import Cell
from pipeline.records import PruneResult, read_record
from pipeline.reporting.document import Block, Heading, Image, Paragraph, Table
from pipeline.reporting.figures import LINESTYLES, placeholder_png, to_png
from pipeline.reporting.formatting import fmt

PRUNE_FIGURE = "figures/fid-vs-sparsity.png"


def read_prune_results(params: Params, *, root: Path) -> list[dict[str, Any]]:
    """The prune metrics files of ``prune.variants`` × ``prune.seeds`` that exist (the study is optional)."""
    results = []
    for variant in params.prune.variants:
        for seed in params.prune.seeds:
            path = root / Cell(variant, seed).prune_metrics
            if path.exists():
                hint = f"re-run `python -m stages prune --variant {variant} --seed {seed}` (or `dvc repro`)"
                results.append(read_record(path, PruneResult, hint=hint).model_dump())
    return results


def summarize_pruning(results: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per variant: the largest sparsity within noise for every studied seed (the minimum over seeds: safe for
    all of them), and that sparsity's FID, non-zero parameters, sparse bytes and latency against the dense model's."""
    by_variant: dict[str, list[Mapping[str, Any]]] = {}
    for result in results:
        if result["rows"]:
            by_variant.setdefault(result["variant"], []).append(result)
    summary = {}
    for variant, cells in by_variant.items():
        within = [c["largest_sparsity_within_noise"] for c in cells]
        safe = min(within) if all(w is not None for w in within) else None
        first = cells[0]
        dense = first["rows"][0]
        at = next((r for r in first["rows"] if r["sparsity"] == safe), None)
        summary[variant] = {
            "seeds": [c["seed"] for c in cells], "largest_sparsity_within_noise": safe,
            "per_seed": {str(c["seed"]): c["largest_sparsity_within_noise"] for c in cells},
            "dense": {k: dense.get(k) for k in ("fid", "nonzero_parameters", "sparse_bytes", "dense_bytes", "latency_ms")},
            "at_largest": None if at is None else {k: at.get(k) for k in ("fid", "nonzero_parameters", "sparse_bytes",
                                                                            "latency_ms")},
        }
    return summary


def fid_vs_sparsity_png(results: Sequence[Mapping[str, Any]], *, label: str) -> bytes:
    """FID against sparsity: one line per cell, colour per variant, line style per seed; the dense FID's
    upper interval bound as a dotted line of the same colour."""
    cells = [r for r in results if r["rows"]]
    if not cells:
        return placeholder_png("no pruning results")
    figure = Figure(figsize=(7.5, 4.5), layout="constrained")
    axes = figure.subplots()
    colours = {variant: f"C{i}" for i, variant in enumerate(dict.fromkeys(r["variant"] for r in cells))}
    for result in cells:
        style = LINESTYLES[result["seed"] % len(LINESTYLES)]
        rows = [r for r in result["rows"] if r["fid"] is not None]
        axes.plot([100 * r["sparsity"] for r in rows], [r["fid"] for r in rows], color=colours[result["variant"]],
                  linestyle=style, marker="o", label=f"{result['variant']} seed {result['seed']}")
        if result.get("dense_fid_ci_high") is not None:
            axes.axhline(result["dense_fid_ci_high"], color=colours[result["variant"]], linestyle=":", linewidth=0.8)
    axes.set_xlabel("sparsity of the generator's weights (%)")
    axes.set_ylabel(f"FID ({label})")
    axes.set_yscale("log")
    axes.yaxis.set_major_formatter(ticker.LogFormatter(labelOnlyBase=False))
    axes.grid(alpha=0.3, which="both")
    figure.legend(loc="outside right upper", fontsize=7)
    axes.set_title("FID after global magnitude pruning (dotted: dense model's upper interval bound)")
    return to_png(figure)


def _percent(value: Any) -> str:
    return "none" if value is None else f"{100 * value:.0f}%"


def pruning_section(summary: Mapping[str, Mapping[str, Any]], results: Sequence[Mapping[str, Any]]) -> list[Block]:
    """Heading, method, figure and the per-variant table; empty when the study has not run."""
    if not results:
        return []
    finetune = sorted({r["finetune_steps"] for r in results if r["kind"] == "gan"})
    blocks: list[Block] = [
        Heading("Pruning: fewer parameters, same quality?"),
        Paragraph(
            "Each trained generator is pruned globally by weight magnitude (all conv and linear weights ranked "
            "together) at every sparsity, "
            + (f"fine-tuned for {', '.join(map(str, finetune))} generator steps against its frozen discriminator "
               "(GANs; VAE decoders are not fine-tuned), " if any(finetune) else "")
            + f"and scored on {fmt(results[0]['num_samples'], 0)} samples per noise draw with the same draws at every "
            "sparsity. A sparsity is within noise when its mean FID over the draws is at most the upper end of the "
            "dense model's interval; "
            "the table gives the largest such sparsity shared by every studied seed. Sizes are of the weights "
            "stored as sparse CSR tensors; CPU latency is per batch of generated images (unstructured sparsity does "
            "not speed up dense kernels)."
        ),
        Image(PRUNE_FIGURE, "FID against sparsity", "FID of each pruned generator against its sparsity."),
    ]
    rows = []
    for variant, entry in summary.items():
        dense, at = entry["dense"], entry["at_largest"]
        saved = (f"{fmt(dense['nonzero_parameters'], 0)} → {fmt(at['nonzero_parameters'], 0)}" if at else "—")
        size = (f"{fmt(dense['sparse_bytes'] / 1024, 0)} → {fmt(at['sparse_bytes'] / 1024, 0)} KiB" if at else "—")
        rows.append([variant, ", ".join(map(str, entry["seeds"])), fmt(dense["fid"]),
                     _percent(entry["largest_sparsity_within_noise"]), fmt(at["fid"]) if at else "—", saved, size,
                     f"{fmt(dense['latency_ms'], 1)} → {fmt(at['latency_ms'], 1)} ms" if at else "—"])
    header = ["Variant", "Seeds", "Dense FID", "Largest sparsity within noise", "FID there", "Non-zero parameters",
              "Size", "CPU latency"]
    return [*blocks, Table(header, rows, align="llrrrrrr")]
