"""reports/report.html in a real browser (Debian's Chromium through Playwright): every image loads, nothing overflows
at 1280 px, the headline comes before the ranking table — also when the file is copied away from its folder — and
the check fails on a report with a broken image, a too-wide element or the table first."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pipeline.reporting import write_report
from tests.reporting import browser
from tests.reporting.browser import check_report_in_browser
from tests.test_report import cell, fabricate, grid_cells, make_params


@pytest.fixture(scope="module")
def html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """report.html over a fabricated three-variant grid whose ok cells each have a final sample grid."""
    root = tmp_path_factory.mktemp("browser")
    fabricate(root, grid_cells() + [cell("hinge", 0, 30.0), cell("hinge", 1, 31.0)])
    write_report(make_params(("gan", "vae", "hinge")), root=root)
    return root / "reports/report.html"


def test_the_report_renders_whole_in_chromium(html: Path) -> None:
    page = html.read_text()
    assert len(re.findall(r"<img ", page)) >= 5  # the FID chart and three sample grids among them
    assert all(f'alt="Samples of {v}"' in page for v in ("gan", "vae", "hinge"))
    check_report_in_browser(html)


def test_the_report_works_copied_on_its_own(html: Path, tmp_path: Path) -> None:
    alone = tmp_path / "elsewhere" / "report.html"  # no figures/ beside it: every image must be embedded
    alone.parent.mkdir()
    shutil.copy(html, alone)
    check_report_in_browser(alone)


BREAKAGES = {  # what is done to the page -> what the check must say
    "broken image": (lambda page: re.sub(r'src="data:[^"]*"', 'src="figures/missing.png"', page, count=1),
                     "did not load"),
    "too wide": (lambda page: page.replace("</body>", '<div style="width: 2000px">wide</div></body>'),
                 "overflows sideways: scrollWidth 20"),
    "table first": (lambda page: page.replace('<table id="ranking">', "<table>").replace(
        "<h1>", '<table id="ranking"><tr><td>x</td></tr></table><h1>', 1), "ranking table comes before the headline"),
    "no headline": (lambda page: page.replace('<p id="headline">', "<p>"), "no headline element"),
}  # fmt: skip


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_the_check_fails_on_a_broken_report(html: Path, tmp_path: Path, breakage: str) -> None:
    spoil, message = BREAKAGES[breakage]
    broken = tmp_path / "report.html"
    broken.write_text(spoil(html.read_text()))
    assert broken.read_text() != html.read_text()
    with pytest.raises(AssertionError, match=re.escape(message)):
        check_report_in_browser(broken)


def test_without_chromium_the_check_skips_saying_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed: its own skip reason applies")
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    monkeypatch.setattr(browser, "SYSTEM_CHROMIUM", tmp_path / "no-chromium")
    assert browser.find_chromium() is None
    with pytest.raises(pytest.skip.Exception, match=r"no Chromium.*make setup.*apt-get install chromium"):
        check_report_in_browser(tmp_path / "report.html")
