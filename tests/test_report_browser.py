"""The report as a person sees it: headless Chromium loads the page; every figure must have loaded and no
script error, console error or failed load may occur. The screenshot is kept in the test's temporary
directory (and copied to $REPORT_SCREENSHOT_DIR when that is set, to look at)."""

import os
import shutil
from pathlib import Path

from analysis.reporting.build import build_report
from browser_helpers import check_page, chromium_binary
from report_helpers import make_sweep


def test_every_figure_loads_without_errors(tmp_path):
    chromium_binary()  # skips, with the reason, before any work when there is no browser
    sweep = make_sweep(tmp_path / "sweep")
    report = build_report(sweep, tmp_path / "report", n_boot=20)
    shot = tmp_path / "report.png"
    page = check_page(report.out / "index.html", screenshot=shot)
    assert len(page.images) == len(report.figures) == 6
    assert not page.broken_images, page.broken_images
    assert all(img["width"] >= 1000 for img in page.images)  # the PNGs themselves, at 200 dpi
    assert not page.exceptions and not page.console_errors and not page.failed_loads, (
        page.exceptions, page.console_errors, page.failed_loads)
    assert page.title.startswith("Scaling-law report")
    for heading in ("Headline", "Figures", "Fits", "Backtest", "Runs"):
        assert heading in page.text
    assert shot.stat().st_size > 100_000
    if os.environ.get("REPORT_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["REPORT_SCREENSHOT_DIR"]) / "report.png")


def test_the_checker_sees_broken_images_and_script_errors(tmp_path):
    chromium_binary()
    (tmp_path / "index.html").write_text(
        '<!DOCTYPE html><html><head><title>t</title></head><body><img src="missing.png">'
        '<script>console.error("boom"); notDefined();</script></body></html>')
    page = check_page(tmp_path / "index.html")
    assert page.broken_images == ["missing.png"]
    assert page.exceptions and "notDefined" in page.exceptions[0]
    assert "boom" in page.console_errors and page.failed_loads
