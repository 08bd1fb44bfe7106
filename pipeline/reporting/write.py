"""``write_report``: read the grid's results, then write every report file atomically under ``reports/``.

Outputs (relative to ``root``)::

    reports/metrics.json              the full summary (the retrain gate compares it with the committed one)
    reports/headline.json             per-variant mean FID with interval and n, the best variant, significance: the
                                      grid's DVC metric (``dvc exp show``)
    reports/report.md, report.html    the comparison report (report.html embeds every figure: one file)
    reports/figures/fid.png           mean FID per variant with CI error bars
    reports/figures/losses.png        training-loss curves, one subplot per variant
    reports/figures/class-coverage.png  generated vs real class shares per variant (mode coverage)
    reports/figures/fid-curves.png    FID of the training snapshots against step and training time
    reports/figures/feature-check.png  FID of disturbed real images per level (the feature-space check)
    reports/figures/pairwise.png      probability of improvement between every pair of ranked variants
    reports/figures/equal-compute.png  FID at equal training time and at equal generator steps
    reports/figures/samples-<v>.png   the final sample grid of each variant's first ok seed
    reports/figures/fid-vs-sparsity.png  the pruning study (when metrics/prune-*.json exist)
    reports/plots/fid.csv             DVC bar plot data: variant,fid_mean,ci_low,ci_high,n
    reports/plots/losses/<cell>.csv   DVC line plot data per cell: step,<loss>,...
    reports/plots/fid_curve/<cell>.csv  DVC line plot data per cell: step,train_seconds,fid

report.html is self-contained: every figure and sample grid is embedded as a ``data:`` URI, so the one file can be
mailed or copied anywhere. report.md links ``figures/`` by relative path: copy ``reports/`` as a unit to keep it.

Everything is rendered in memory, then each file is written atomically (temp file + rename). Folders are never
replaced whole, so the ``.gitignore`` files DVC keeps beside its outputs survive; files of cells or variants no
longer in the grid are removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipeline import layout
from pipeline.layout import Cell
from pipeline.config import FEATURE_SPACE_LABELS, Params
from pipeline.io import atomic_write_bytes, atomic_write_json
from pipeline.reporting import figures
from pipeline.reporting.compute import equal_compute
from pipeline.reporting.content import TITLE, build_document
from pipeline.reporting.document import Block, render_html, render_markdown
from pipeline.reporting.formatting import feature_space
from pipeline.reporting.headline import headline_metrics
from pipeline.reporting.inputs import (
    FidCurve,
    LossLog,
    fid_curve,
    is_png,
    read_cells,
    read_evaluator,
    read_feature_check,
    read_losses,
    read_noise_floor,
)  # fmt: skip
from pipeline.reporting.pruning import (
    PRUNE_FIGURE,
    fid_vs_sparsity_png,
    pruning_section,
    read_prune_results,
    summarize_pruning,
)
from pipeline.reporting.sections import (
    CLASS_FIGURE,
    CURVE_FIGURE,
    EQUAL_COMPUTE_FIGURE,
    FEATURE_CHECK_FIGURE,
    PAIRWISE_FIGURE,
    curve_space,
)
from pipeline.reporting.summary import class_shares, display_order, ok_values, summarize

HEADLINE = "headline.json"
FIGURES = "figures"
PLOTS = "plots"
LOSS_PLOTS = "plots/losses"
CURVE_PLOTS = "plots/fid_curve"


def _remove_stale(folder: Path, pattern: str, keep: Iterable[Path]) -> None:
    """Delete files in ``folder`` matching ``pattern`` whose name is not among ``keep``'s (earlier grids' leftovers)."""
    names = {path.name for path in keep}
    for path in folder.glob(pattern):
        if path.name not in names:
            path.unlink(missing_ok=True)


def _check_summary(check: dict[str, Any] | None) -> dict[str, Any] | None:
    """Per feature space, whether FID rose with every level of each disturbance (reports/metrics.json)."""
    if check is None:
        return None
    return {space: {name: entry["monotone"] for name, entry in result["disturbances"].items()}
            for space, result in check["feature_spaces"].items()}


def _loss_logs(cells: list[dict[str, Any]], root: Path, files: dict[Path, bytes],
               notes: list[str]) -> dict[str, dict[int, LossLog]]:
    """Each cell's ``losses.csv`` (variant -> seed -> log), each also a DVC plot file; a note for unreadable ones."""
    logs: dict[str, dict[int, LossLog]] = {}
    for cell in cells:
        where = Cell(cell["variant"], cell["seed"])
        log = read_losses(root / where.losses)
        if log is None:
            if cell["status"] != "failed":
                notes.append(f"No readable loss log for {where} ({where.losses}).")
            continue
        logs.setdefault(where.variant, {})[where.seed] = log
        files[Path(LOSS_PLOTS, f"{where}.csv")] = figures.loss_plot_csv(log).encode()
    return logs


def _sample_grids(variants: list[str], cells: list[dict[str, Any]], root: Path,
                  files: dict[Path, bytes]) -> dict[str, tuple[str, int]]:
    """Per variant, the final sample grid of its first ok seed, copied into the report: (relative path, seed)."""
    grids: dict[str, tuple[str, int]] = {}
    for variant in variants:
        for seed in [c["seed"] for c in cells if c["variant"] == variant and c["status"] == "ok"]:
            source = root / Cell(variant, seed).final_samples
            if is_png(source):
                path = Path(FIGURES, f"samples-{variant}.png")
                files[path] = source.read_bytes()
                grids[variant] = (path.as_posix(), seed)
                break
    return grids


def _fid_curves(cells: list[dict[str, Any]], files: dict[Path, bytes]) -> dict[str, dict[int, FidCurve]]:
    """Each cell's FID over training (variant -> seed -> curve), each also a DVC plot file."""
    curves: dict[str, dict[int, FidCurve]] = {}
    for cell in cells:
        curve = fid_curve(cell)
        if curve is not None:
            curves.setdefault(cell["variant"], {})[cell["seed"]] = curve
            files[Path(CURVE_PLOTS, f"{Cell(cell['variant'], cell['seed'])}.csv")] = figures.fid_curve_csv(curve).encode()
    return curves


def _render(blocks: list[Block], files: dict[Path, bytes]) -> None:
    """Add report.md, linking the figures, and report.html, one file with every PNG among ``files`` embedded."""
    embedded = {path.as_posix(): content for path, content in files.items() if path.suffix == ".png"}
    files[Path("report.html")] = render_html(blocks, title=TITLE, images=embedded).encode()
    files[Path("report.md")] = render_markdown(blocks).encode()


def write_report(params: Params, *, root: Path = Path(".")) -> dict[str, Any]:
    """Build the comparison report of the params' grid under ``root / reports``; returns the summary.

    Raises :class:`~pipeline.errors.InputError` naming the file when a grid cell's metrics are missing or invalid.
    Loss logs, sample grids, the evaluator metrics, the noise floor and the studies are optional: the report says
    what is missing. Everything is rendered in memory first, so a failure leaves the previous report untouched.
    """
    root = Path(root)
    out = root / layout.REPORTS_DIR
    cells = read_cells(params, root=root)
    floor = read_noise_floor(root / layout.NOISE_FLOOR_PATH)
    noise_spaces = floor["feature_spaces"] if floor is not None else None
    summary = summarize(cells, confidence=params.report.confidence, noise_floor=noise_spaces)
    evaluator = read_evaluator(root / layout.EVALUATOR_METRICS_PATH)
    summary["evaluator"] = evaluator
    check = read_feature_check(root / layout.FEATURE_CHECK_PATH)
    summary["feature_check"] = _check_summary(check)
    files: dict[Path, bytes] = {}  # path relative to reports/ -> content
    notes: list[str] = []

    logs = _loss_logs(cells, root, files, notes)
    sample_grids = _sample_grids(params.grid.variants, cells, root, files)
    curves = _fid_curves(cells, files)

    fid_values = {v: ok_values([c for c in cells if c["variant"] == v], "fid") for v in params.grid.variants}
    diverged = {(c["variant"], c["seed"]) for c in cells if c["status"] == "diverged"}
    label = feature_space(summary["feature_extractor"])
    files[Path(FIGURES, "fid.png")] = figures.fid_png(summary, fid_values, label=label)
    files[Path(FIGURES, "losses.png")] = figures.losses_png(logs, diverged=diverged)
    files[Path(CLASS_FIGURE)] = figures.class_coverage_png(class_shares(cells), order=display_order(summary))
    files[Path(CURVE_FIGURE)] = figures.fid_curves_png(curves, diverged=diverged, label=curve_space(cells))
    files[Path(PLOTS, "fid.csv")] = figures.fid_plot_csv(summary).encode()
    files[Path(FEATURE_CHECK_FIGURE)] = figures.feature_check_png(check, labels=FEATURE_SPACE_LABELS)
    files[Path(PAIRWISE_FIGURE)] = figures.pairwise_png(summary)
    summary["equal_compute"] = equal_compute(cells)
    files[Path(EQUAL_COMPUTE_FIGURE)] = figures.equal_compute_png(summary["equal_compute"])
    pruned = read_prune_results(params, root=root)
    if pruned:
        summary["pruning"] = summarize_pruning(pruned)
        files[Path(PRUNE_FIGURE)] = fid_vs_sparsity_png(pruned, label=label)

    blocks = build_document(
        summary,
        cells,
        evaluator=evaluator,
        feature_check=check,
        sample_grids=sample_grids,
        noise_floor=floor,
        notes=notes,
        extra=pruning_section(summary.get("pruning", {}), pruned),
    )
    _render(blocks, files)

    for path, content in files.items():
        atomic_write_bytes(out / path, content)
    for folder, pattern in ((LOSS_PLOTS, "*.csv"), (CURVE_PLOTS, "*.csv"), (FIGURES, "samples-*.png")):
        _remove_stale(out / folder, pattern, [path for path in files if path.parent == Path(folder)])
    atomic_write_json(out / "metrics.json", summary)
    atomic_write_json(out / HEADLINE, headline_metrics(summary))
    return summary
