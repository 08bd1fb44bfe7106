"""The report's figures show their data: the matplotlib Figure each figure function renders, inspected directly
(bars, error bars, lines, labels, tick labels in order), and the PNG it returns decoded to the figure's size."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.figure import Figure

from pipeline.reporting import figures
from pipeline.reporting.inputs import FidCurve, LossLog
from pipeline.reporting.summary import ClassShares


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Figure, bytes]]]:
    """Every Figure the figure functions render, with the PNG bytes rendered from it (``to_png`` still runs)."""
    captured: list[tuple[Figure, bytes]] = []
    real = figures.to_png

    def capture(figure: Figure) -> bytes:
        png = real(figure)
        captured.append((figure, png))
        return png

    monkeypatch.setattr(figures, "to_png", capture)
    yield captured


def _only(rendered: list[tuple[Figure, bytes]], png: bytes) -> Figure:
    """The one figure rendered, after checking that ``png`` is its image."""
    assert len(rendered) == 1
    figure, bytes_ = rendered[0]
    assert png == bytes_
    image = matplotlib.image.imread(io.BytesIO(png), format="png")  # (H, W, 4)
    width, height = figure.get_size_inches() * 100  # to_png renders at 100 dpi
    assert image.shape[:2] == (round(height), round(width))
    assert image[..., :3].std() > 0.05  # not a blank canvas
    return figure


def _tick_labels(labels: list) -> list[str]:
    return [label.get_text() for label in labels]


FID_SUMMARY = {
    "ranking": ["vae", "gan", "hinge"],  # best first
    "confidence": 0.9,
    "variants": {
        "vae": {"fid": {"mean": 20.0, "ci_low": 15.0, "ci_high": 26.0, "n": 3}},
        "gan": {"fid": {"mean": 30.0, "ci_low": 28.0, "ci_high": 33.0, "n": 3}},
        "hinge": {"fid": {"mean": 55.0, "ci_low": None, "ci_high": None, "n": 1}},  # one seed: no interval
    },
}


def test_fid_figure_has_one_bar_per_ranked_variant_best_on_top(rendered: list) -> None:
    png = figures.fid_png(FID_SUMMARY, {"vae": [18.0, 20.0, 22.0], "gan": [29.0, 30.0, 31.0], "hinge": [55.0]},
                          label="domain classifier")
    (axes,) = _only(rendered, png).axes
    (bars,) = [c for c in axes.containers if isinstance(c, BarContainer)]
    assert [bar.get_width() for bar in bars] == [20.0, 30.0, 55.0]  # the means, in ranking order
    assert [bar.get_y() + bar.get_height() / 2 for bar in bars] == [0, 1, 2]
    assert _tick_labels(axes.get_yticklabels()) == ["vae", "gan", "hinge"]
    assert axes.yaxis_inverted()  # position 0, the best, on top
    (errors,) = [c for c in axes.containers if isinstance(c, ErrorbarContainer)]
    (segments,) = errors.lines[2]
    spans = [tuple(segment[:, 0]) for segment in segments.get_segments()]
    assert spans == [(15.0, 26.0), (28.0, 33.0), (55.0, 55.0)]  # CI ends; no interval for a single seed
    dots = [c for c in axes.collections if isinstance(c, PathCollection)]
    seeds = [tuple(map(tuple, dot.get_offsets())) for dot in dots]
    assert seeds == [((18.0, 0), (20.0, 0), (22.0, 0)), ((29.0, 1), (30.0, 1), (31.0, 1)), ((55.0, 2),)]
    assert axes.get_xlabel() == "FID (domain classifier), lower is better"
    assert axes.get_title() == "Mean FID over seeds with 90% CI (dots: seeds)"


def test_fid_figure_without_a_ranked_variant_says_so(rendered: list) -> None:
    png = figures.fid_png({**FID_SUMMARY, "ranking": []}, {}, label="x")
    (axes,) = _only(rendered, png).axes
    assert [text.get_text() for text in axes.texts] == ["no variant has a successful cell"]
    assert not axes.containers and not axes.axison


def _log(steps: int, **losses: float) -> LossLog:
    """Constant losses over ``steps`` steps (a moving average of a constant is that constant)."""
    return LossLog(np.arange(1, steps + 1), {name: np.full(steps, value) for name, value in losses.items()})


def test_losses_figure_has_a_panel_per_variant_and_a_line_per_seed_and_loss(rendered: list) -> None:
    logs = {
        "gan": {0: _log(100, loss_d=1.0, loss_g=2.0, images_per_second=900.0),
                1: _log(100, loss_d=1.5, loss_g=float("nan"))},
        "vae": {0: _log(100, loss=3.0, kl=0.5)},
    }
    png = figures.losses_png(logs, diverged={("gan", 1)})
    gan, vae = _only(rendered, png).axes
    assert (gan.get_title(), vae.get_title()) == ("gan", "vae")
    assert [line.get_label() for line in gan.lines] == ["seed 0 loss_d", "seed 0 loss_g", "seed 1 loss_d (diverged)",
                                                        "seed 1 loss_g (diverged)"]  # throughput is not a loss
    assert [line.get_label() for line in vae.lines] == ["seed 0 loss"]
    window = figures.smoothing_window(100)  # 2: the first point of a curve is at step 2
    assert list(gan.lines[0].get_xdata()) == list(range(window, 101))
    assert [float(np.nanmean(line.get_ydata())) if np.isfinite(line.get_ydata()).any() else None
            for line in gan.lines] == [1.0, 2.0, 1.5, None]
    assert [line.get_linestyle() for line in gan.lines] == ["-", "--", "-", "--"]  # a style per loss
    assert gan.lines[0].get_color() == gan.lines[1].get_color() != gan.lines[2].get_color()  # a colour per seed
    low, high = gan.get_ylim()  # scaled to the healthy seed's losses (1 and 2), padded by 5%
    assert (low, high) == pytest.approx((0.95, 2.05))
    assert gan.get_xlabel() == "step"


def test_fid_curves_figure_plots_each_cell_against_steps_and_seconds(rendered: list) -> None:
    curves = {
        "gan": {0: FidCurve(np.array([10, 20, 30]), np.array([1.0, 2.0, 3.0]), np.array([90.0, 60.0, 40.0])),
                1: FidCurve(np.array([10, 20]), np.array([1.5, np.nan]), np.array([95.0, 70.0]))},
        "vae": {0: FidCurve(np.array([10, 20, 30]), np.array([2.0, 4.0, 6.0]), np.array([80.0, 70.0, 65.0]))},
    }
    png = figures.fid_curves_png(curves, diverged={("gan", 1)}, label="Inception-v3")
    figure = _only(rendered, png)
    by_step, by_time = figure.axes
    assert [line.get_label() for line in by_step.lines] == ["gan seed 0", "gan seed 1 (diverged)", "vae seed 0"]
    assert [list(line.get_xdata()) for line in by_step.lines] == [[10, 20, 30], [10, 20], [10, 20, 30]]
    assert [list(line.get_ydata()) for line in by_time.lines] == [[90.0, 60.0, 40.0], [95.0], [80.0, 70.0, 65.0]]
    assert [list(line.get_xdata()) for line in by_time.lines] == [[1.0, 2.0, 3.0], [1.5], [2.0, 4.0, 6.0]]
    assert [line.get_linestyle() for line in by_step.lines] == ["-", "--", "-"]  # a style per seed
    assert by_step.lines[0].get_color() == by_step.lines[1].get_color() != by_step.lines[2].get_color()
    assert (by_step.get_xlabel(), by_time.get_xlabel()) == ("step", "training wall time (s)")
    assert by_step.get_ylabel() == by_time.get_ylabel() == "FID (Inception-v3)"
    assert by_step.get_yscale() == "linear"  # 40 to 95: less than a factor of 5


def test_class_coverage_figure_has_a_row_per_variant_in_order_then_the_real_data(rendered: list) -> None:
    shares = ClassShares(["0", "1", "2"], np.array([0.3, 0.3, 0.4]),
                         {"gan": np.array([1.0, 0.0, 0.0]), "vae": np.array([0.2, 0.5, 0.3])})
    png = figures.class_coverage_png(shares, order=["vae", "gan", "absent"])
    axes = _only(rendered, png).axes[0]
    (image,) = axes.images
    np.testing.assert_array_equal(image.get_array(), [[0.2, 0.5, 0.3], [1.0, 0.0, 0.0], [0.3, 0.3, 0.4]])
    assert _tick_labels(axes.get_yticklabels()) == ["vae", "gan", "real"]
    assert _tick_labels(axes.get_xticklabels()) == ["0", "1", "2"]
    assert [text.get_text() for text in axes.texts] == ["20", "50", "30", "100", "0", "0", "30", "30", "40"]


def test_pairwise_figure_is_the_matrix_of_probabilities_with_significance_marks(rendered: list) -> None:
    summary = {"ranking": ["gan", "vae", "hinge"], "pairwise": [
        {"a": "gan", "b": "vae", "prob_improvement": 0.9, "significant": True},
        {"a": "gan", "b": "hinge", "prob_improvement": 0.75, "significant": False},
        {"a": "vae", "b": "hinge", "prob_improvement": 0.5, "significant": None},
    ]}
    png = figures.pairwise_png(summary)
    axes = _only(rendered, png).axes[0]
    matrix = np.asarray(axes.images[0].get_array().filled(np.nan))
    np.testing.assert_allclose(matrix, [[np.nan, 0.9, 0.75], [0.1, np.nan, 0.5], [0.25, 0.5, np.nan]])
    assert [text.get_text() for text in axes.texts] == ["0.90*", "0.75", "0.10*", "0.50", "0.25", "0.50"]
    assert _tick_labels(axes.get_xticklabels()) == _tick_labels(axes.get_yticklabels()) == ["gan", "vae", "hinge"]


def test_equal_compute_figure_has_a_line_per_variant_over_each_budget(rendered: list) -> None:
    data = {"seconds": {"budgets": [10.0, 20.0], "fid": {"gan": [50.0, 40.0], "vae": [60.0, None]}},
            "steps": {"budgets": [100, 200], "fid": {"gan": [55.0, 45.0], "vae": [65.0, 58.0]}}}
    png = figures.equal_compute_png(data)
    by_time, by_steps = _only(rendered, png).axes
    assert [line.get_label() for line in by_time.lines] == ["gan", "vae"]
    assert [list(line.get_ydata()) for line in by_steps.lines] == [[55.0, 45.0], [65.0, 58.0]]
    assert list(by_time.lines[1].get_ydata())[0] == 60.0 and np.isnan(by_time.lines[1].get_ydata()[1])
    assert (by_time.get_xlabel(), by_steps.get_xlabel()) == ("training wall time (s)", "generator steps")


def test_report_figures_plot_the_reported_ranking(tmp_path: Path, rendered: list) -> None:
    """Through write_report: the fid.png written is the bar chart of the summary's ranking and means."""
    from pipeline.reporting import write_report
    from tests.test_report import fabricate, grid_cells, make_params

    fabricate(tmp_path, grid_cells())
    summary = write_report(make_params(), root=tmp_path)
    written = (tmp_path / "reports/figures/fid.png").read_bytes()
    (figure,) = [figure for figure, png in rendered if png == written]
    (axes,) = figure.axes
    assert _tick_labels(axes.get_yticklabels()) == summary["ranking"] == ["gan", "vae"]
    (bars,) = [c for c in axes.containers if isinstance(c, BarContainer)]
    assert [bar.get_width() for bar in bars] == pytest.approx(
        [summary["variants"][name]["fid"]["mean"] for name in summary["ranking"]])
