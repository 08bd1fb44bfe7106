"""Open an HTML report in a real browser and check what a reader sees: Debian's Chromium driven by Playwright.

No browser is downloaded: Playwright (PyPI, with its node driver) launches the system ``chromium`` that
``make setup`` installs when run as root. Where there is none, :func:`find_chromium` returns ``None`` and the checks
skip with a reason that says how to get one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

VIEWPORT = {"width": 1280, "height": 900}
SYSTEM_CHROMIUM = Path("/usr/bin/chromium")
# the machine has no network: without these, chromium tries to reach Google (sync, updates, field trials)
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
HEADLINE = "#headline"
RANKING = "table#ranking"

# Every problem the page has, as sentences; runs in the page once it has loaded, with every <details> opened.
_PROBLEMS_JS = """() => {
  const problems = [];
  const images = Array.from(document.images);
  if (images.length === 0) problems.push("the page has no <img> at all");
  for (const img of images) {
    if (!img.complete || img.naturalWidth === 0) {
      problems.push(`image "${img.alt}" did not load (naturalWidth ${img.naturalWidth}, src ${img.src.slice(0, 60)})`);
    }
  }
  const width = document.documentElement.scrollWidth;
  if (width > %(width)d) {
    problems.push(`the page overflows sideways: scrollWidth ${width} px > viewport %(width)d px`);
  }
  const headline = document.querySelector("%(headline)s"), ranking = document.querySelector("%(ranking)s");
  if (!headline) problems.push("no headline element (%(headline)s)");
  if (!ranking) problems.push("no ranking table (%(ranking)s)");
  if (headline && ranking && !(headline.compareDocumentPosition(ranking) & Node.DOCUMENT_POSITION_FOLLOWING)) {
    problems.push("the ranking table comes before the headline");
  }
  return problems;
}""" % {"headline": HEADLINE, "ranking": RANKING, "width": VIEWPORT["width"]}

_OPEN_DETAILS_JS = "() => document.querySelectorAll('details').forEach(d => { d.open = true; })"
_IMAGES_SETTLED_JS = "() => Array.from(document.images).every(img => img.complete)"


def find_chromium() -> Path | None:
    """The system Chromium (``chromium`` on PATH, else /usr/bin/chromium), or ``None`` where there is none."""
    found = shutil.which("chromium")
    if found:
        return Path(found)
    return SYSTEM_CHROMIUM if SYSTEM_CHROMIUM.is_file() else None


def require_chromium() -> Path:
    """The system Chromium; skips the calling test with the reason where it or Playwright is missing."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium to open the report in: neither `chromium` on PATH nor /usr/bin/chromium "
                    "(`make setup` as root installs Debian's chromium; or `apt-get install chromium`)")
    return chromium


def check_report_in_browser(html_path: Path, *, screenshot: Path | None = None) -> None:
    """Open ``html_path`` at 1280 px and assert a reader sees it whole; raise one AssertionError listing every problem.

    Checked: the headline (``#headline``) and the ranking table (``table#ranking``) are visible without opening
    anything and the headline comes first; then, with every ``<details>`` opened, every ``<img>`` has loaded
    (``naturalWidth > 0``) and the page is no wider than the viewport (``scrollWidth <= 1280``). ``screenshot``:
    also save the whole opened page as a PNG there. Skips where there is no Chromium or no Playwright.
    """
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(Path(html_path).resolve().as_uri(), wait_until="load", timeout=30_000)
            for selector, what in ((HEADLINE, "headline"), (RANKING, "ranking table")):
                if page.locator(selector).count() and not page.locator(selector).first.is_visible():
                    problems.append(f"the {what} ({selector}) is not visible when the page opens")
            page.evaluate(_OPEN_DETAILS_JS)
            page.wait_for_function(_IMAGES_SETTLED_JS, timeout=10_000)
            problems += page.evaluate(_PROBLEMS_JS)
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert not problems, f"{html_path} in Chromium at {VIEWPORT['width']} px:\n- " + "\n- ".join(problems)
