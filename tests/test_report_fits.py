"""analysis.reporting.fits: the report's backtests (by budget and by size) on a known noisy surface, as the
report page shows them, including the splits that could not be made; and the comparison of methods each
entry shows."""

from __future__ import annotations

import dataclasses

from analysis.backtest import backtest
from analysis.reporting.fits import BacktestEntry, run_backtest
from analysis.reporting.page import backtest_section
from analysis_helpers import backtest_surface_grid, ladder_isoflop_table


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


def test_a_design_that_biases_approach_1_is_shown_on_approach_1s_entry_only():
    from analysis.reporting.fits import fit_entry, with_comparison
    table = ladder_isoflop_table([1e17, 1e18, 1e19, 1e20], per_budget=3, step=4.0)
    entries = [fit_entry(table, method, {}, 0, 0) for method in ("parametric", "envelope")]
    law, envelope = with_comparison(entries, table)
    assert [w for w in envelope.warnings if "[design_bias]" in w] and "envelope reads a =" in envelope.warnings[-1]
    assert not [w for w in law.warnings if "[design_bias]" in w]
    assert not [w for w in with_comparison(entries)[1].warnings if "[design_bias]" in w]  # no table, no check
