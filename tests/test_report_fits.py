"""analysis.reporting.fits: the report's backtests (by budget and by size) on a known noisy surface, as the
report page shows them, including the splits that could not be made."""

from __future__ import annotations

import dataclasses

from analysis.backtest import backtest
from analysis.reporting.fits import BacktestEntry, run_backtest
from analysis.reporting.page import backtest_section
from analysis_helpers import backtest_surface_grid


def test_the_report_shows_both_splits_with_mape_and_coverage():
    table, _ = backtest_surface_grid()
    # The surface the report found: its method, options and bootstrap size are what the backtests reuse.
    surface = dataclasses.replace(backtest(table, "vpnls", by="size").fit, bootstrap={"n": 20, "level": 0.95})
    entry = run_backtest(table, surface)
    assert (entry.by_budget.by, entry.by_size.by) == ("C", "N") and entry.result is entry.by_budget
    html = backtest_section(entry)
    assert "largest budget" in html and "largest size" in html and "MAPE" in html
    assert html.count(" at 95%</td>") == 2  # a coverage cell per split
    failed = BacktestEntry(by_size=entry.by_size, budget_error="holding out the largest budget: too few runs")
    assert failed.result is entry.by_size and "not made: holding out the largest budget" in backtest_section(failed)
    none = BacktestEntry(budget_error="no surface", size_error="no surface")
    assert none.error == "no surface" and "No backtest: no surface" in backtest_section(none)
