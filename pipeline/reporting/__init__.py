"""The comparison report: which variant is best, by how much, with what confidence and at what cost.

``write_report`` reads every grid cell's metrics, loss log and sample grid (and the real-vs-real noise floor) and
writes ``reports/``; ``summarize`` is the pure statistics step behind ``reports/metrics.json``; ``headline`` makes
its compact forms (``reports/headline.json``, the DVC metric, and the terminal ranking).

Modules: ``stats`` (means, t-intervals, Welch's t-test, Holm's correction), ``summary`` (per-variant aggregation,
ranking, pairwise tests), ``inputs`` (reading other stages' files), ``figures`` (matplotlib figures and DVC plot
data), ``document`` (Markdown/HTML rendering), ``formatting`` (numbers in text), ``content`` and ``sections`` (what
the report says), ``write`` (orchestration and atomic writes).
"""

from pipeline.reporting.content import headline_text
from pipeline.reporting.formatting import feature_space
from pipeline.reporting.headline import headline_metrics, ranking_table
from pipeline.reporting.stats import describe, holm, welch_test
from pipeline.reporting.summary import SUMMARY_METRICS, summarize
from pipeline.reporting.write import write_report

__all__ = [
    "SUMMARY_METRICS", "describe", "feature_space", "headline_metrics", "headline_text", "holm", "ranking_table",
    "summarize", "welch_test", "write_report",
]  # fmt: skip
