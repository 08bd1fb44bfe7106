"""How numbers, intervals, durations and feature spaces read in the report's text and tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.config import FEATURE_SPACE_LABELS
from pipeline.reporting.stats import finite

DASH = "—"


def feature_space(extractor: str | None) -> str:
    """Readable name of the FID feature space: ``domain-classifier`` → ``domain classifier``."""
    if extractor is None:
        return "unknown features"
    return FEATURE_SPACE_LABELS.get(extractor, extractor)


def fmt(value: Any, digits: int = 2) -> str:
    """A number with ``digits`` decimals, thousands separated; a dash when missing or not finite."""
    number = finite(value)
    return DASH if number is None else f"{number:,.{digits}f}"


def fmt_p(value: Any) -> str:
    """A p-value with three significant digits; a dash when undefined."""
    number = finite(value)
    return DASH if number is None else f"{number:.3g}"


def fmt_seconds(value: Any) -> str:
    """A duration in s, min or h; a dash when missing."""
    seconds = finite(value)
    if seconds is None:
        return DASH
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def fmt_stat(stat: Mapping[str, Any], digits: int = 2) -> str:
    """``mean [CI low, CI high]``, or ``mean (n=1)`` when there is a single seed; a dash without values."""
    if stat["mean"] is None:
        return DASH
    mean = fmt(stat["mean"], digits)
    if stat.get("ci_low") is None:
        return f"{mean} (n=1)"
    return f"{mean} [{fmt(stat['ci_low'], digits)}, {fmt(stat['ci_high'], digits)}]"


def fmt_seconds_stat(stat: Mapping[str, Any]) -> str:
    """A duration's ``mean [CI low, CI high]`` (each in s, min or h), or ``mean (n=1)``; a dash without values."""
    if stat["mean"] is None:
        return DASH
    mean = fmt_seconds(stat["mean"])
    if stat.get("ci_low") is None:
        return f"{mean} (n=1)"
    return f"{mean} [{fmt_seconds(stat['ci_low'])}, {fmt_seconds(stat['ci_high'])}]"


def percent(confidence: float) -> str:
    """``0.95`` → ``95%``."""
    return f"{100 * confidence:g}%"
