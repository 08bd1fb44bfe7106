"""The comparison report: which variant is best, by how much, with what confidence and at what cost.

``write_report`` reads every grid cell's metrics, loss log and sample grid and writes ``reports/``;
``summarize`` is the pure statistics step behind ``reports/metrics.json``.

Modules: ``stats`` (means, t-intervals, ranking, Welch's t-test), ``inputs`` (reading other stages' files),
``figures`` (matplotlib figures and DVC plot data), ``document`` (Markdown/HTML rendering), ``content`` (what the
report says), ``write`` (orchestration and atomic writes).
"""

from pipeline.reporting.content import feature_space, headline_text
from pipeline.reporting.stats import SUMMARY_METRICS, describe, summarize, welch_test
from pipeline.reporting.write import write_report

__all__ = ["SUMMARY_METRICS", "describe", "feature_space", "headline_text", "summarize", "welch_test", "write_report"]
