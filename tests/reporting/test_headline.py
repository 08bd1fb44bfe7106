"""``reports/headline.json``, the grid's one DVC metric, and the terminal ranking: values from the full summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from pipeline.reporting import headline_metrics, ranking_table, summarize, write_report
from tests.test_report import cell, fabricate, grid_cells, make_params


def test_the_headline_is_the_summary_in_a_few_flat_keys(tmp_path: Path) -> None:
    fabricate(tmp_path, grid_cells())
    summary = write_report(make_params(), root=tmp_path)
    headline = json.loads((tmp_path / "reports/headline.json").read_text())
    assert headline == json.loads(json.dumps(headline_metrics(summary)))
    assert headline["best"] == "gan" and headline["feature_space"] == "domain-classifier"
    assert headline["lead_significant"] is None  # gan has one ok seed: no test
    assert headline["evaluator_quality"] == 0.95
    assert headline["fid"]["vae"] == {"mean": pytest.approx(42.0), "ci_low": pytest.approx(22.90, abs=0.01),
                                      "ci_high": pytest.approx(76.86, abs=0.01), "n": 2}
    assert headline["fid"]["gan"] == {"mean": 20.0, "ci_low": None, "ci_high": None, "n": 1}  # the diverged seed: out
    # the other feature space: each variant's mean FID there (inception is 3x the domain FID in these cells)
    assert headline["fid@inception-v3-compat"] == {"gan": pytest.approx(60.0), "vae": pytest.approx(126.0)}


def test_the_lead_is_significant_only_after_holms_correction() -> None:
    cells = [cell("a", s, 10.0 + 0.1 * s) for s in range(3)] + [cell("b", s, 30.0 + s) for s in range(3)]
    headline = headline_metrics(summarize(cells))
    assert headline["best"] == "a" and headline["lead_significant"] is True and headline["lead_p"] < 0.05
    close = [cell("a", s, 10.0 + s) for s in range(3)] + [cell("b", s, 10.5 + s) for s in range(3)]
    assert headline_metrics(summarize(close))["lead_significant"] is False


def test_the_terminal_ranking_lists_unranked_variants_last() -> None:
    summary = summarize([cell("a", 0, 12.0), cell("a", 1, 14.0), cell("b", 0, 10.0), cell("b", 1, 11.0),
                         cell("c", 0, None, status="diverged", reason="nan")])
    console = Console(width=100, record=True)
    console.print(ranking_table(summary))
    lines = [[c.strip() for c in line[1:-1].split("│")] for line in console.export_text().splitlines()
             if line.startswith("│")]
    fid = {v: summary["variants"][v]["fid"] for v in ("a", "b")}
    interval = {v: f"{f['mean']:.2f} [{f['ci_low']:.2f}, {f['ci_high']:.2f}]" for v, f in fid.items()}
    assert [row[:4] for row in lines] == [["1", "b", interval["b"], ""], ["2", "a", interval["a"], "+2.50"],
                                          ["–", "c", "no ok cell", ""]]
    (test,) = summary["pairwise"]
    assert lines[0][4] == "best" and lines[1][4] == f"no (p={test['p_adjusted']:.3g})" and not test["significant"]
