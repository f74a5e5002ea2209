import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from analysis_helpers import chinchilla_surface, olmo_table
from analysis.backtest import backtest
from analysis.frontier import chinchilla_loss
from scaling_cli.main import main
from scaling.errors import DataError


def test_olmo_ladder_fit_on_three_smallest_sizes_predicts_the_two_largest():
    bt = backtest(olmo_table(), "parametric", by="N", train_sizes=3)
    assert (bt.n_train, bt.n_test) == (15, 10)
    assert {e["label"].split("-")[0] for e in bt.loss_errors} == {"1B", "3B"}
    # Measured: mean |error| 0.9%, max 1.6% (C4 loss, 5 token multipliers per size).
    assert bt.summary["loss_mean_abs_rel_error"] < 0.03
    assert bt.summary["loss_max_abs_rel_error"] < 0.05
    print("OLMo ladder backtest:", bt.summary)


def test_noise_free_surface_is_predicted_exactly_beyond_the_cutoff():
    table, _ = chinchilla_surface(alpha=0.34, beta=0.34)
    bt = backtest(table, "parametric", by="C", cutoff=1e19)
    assert bt.n_test == 14
    assert bt.summary["loss_max_abs_rel_error"] < 1e-6
    assert [e["C"] for e in bt.n_opt_errors] == [1e20, 1e21]
    assert bt.summary["n_opt_max_abs_rel_error"] < 1e-3


def test_isoflop_backtest_reports_n_opt_errors_only():
    table, _ = chinchilla_surface(alpha=0.34, beta=0.34)
    bt = backtest(table, "isoflop", by="C", cutoff=1e19)
    assert bt.loss_errors == [] and bt.summary["n_opt_max_abs_rel_error"] < 1e-3


def test_a_split_that_leaves_nothing_to_predict_is_refused():
    table, _ = chinchilla_surface()
    with pytest.raises(DataError, match="nothing to predict"):
        backtest(table, "isoflop", by="C", cutoff=1e30)


def _grid(noise=0.005, seed=0):
    """Every size trained at every budget (D = C / 6N) on L = E + A/N^alpha + B/D^beta with log-normal noise:
    a split by budget and a split by size both leave a surface to fit, and both train on 20 runs (one
    compilation of the fit and of its bootstrap serves every test here). Returns (table, truth)."""
    from analysis.loading import from_arrays
    truth = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    N_SxC, C_SxC = np.meshgrid(np.logspace(6.5, 9, 5), [1e16, 1e17, 1e18, 1e19, 1e20], indexing="ij")
    N, C = N_SxC.ravel(), C_SxC.ravel()
    D = C / (6 * N)
    loss = chinchilla_loss(truth, N, D) * np.exp(noise * np.random.default_rng(seed).standard_normal(len(N)))
    return from_arrays(N, D, loss, C=C, budget=C), truth


@pytest.fixture(scope="module")
def grid():
    return _grid()


@pytest.mark.parametrize("by", ["budget", "size"])
def test_backtests_on_a_known_surface_predict_closely_and_report_coverage(grid, by):
    table, _ = grid
    bt = backtest(table, "vpnls", by=by, n_boot=20, seed=1)
    assert (bt.n_train, bt.n_test) == (20, 5) and bt.by == ("C" if by == "budget" else "N")
    s = bt.summary
    assert s["loss_mean_abs_rel_error"] < 0.02  # 0.5% noise, one budget (size) beyond the fitted ones
    assert 0.0 <= s["coverage"] <= 1.0 and s["coverage_level"] == 0.95
    assert s["coverage"] == np.mean([e["inside"] for e in bt.loss_errors])
    assert all(e["lo"] < e["predicted"] < e["hi"] for e in bt.loss_errors)
    print(f"backtest by {by}:", s)


def test_holdout_and_split_errors(grid):
    table, _ = grid
    bt = backtest(table, "isoflop", by="budget", holdout=2)
    assert bt.n_test == 10 and [e["C"] for e in bt.n_opt_errors] == [1e19, 1e20]
    bt = backtest(table, "vpnls", by="size")
    assert "coverage" not in bt.summary and any("no coverage" in n for n in bt.notes)
    with pytest.raises(DataError, match="leaves no data to fit on"):
        backtest(table, "vpnls", by="budget", holdout=5)
    with pytest.raises(DataError, match="hold out fewer"):
        backtest(table, "vpnls", by="size", holdout=5)
    with pytest.raises(DataError, match="'budget' or 'size'"):
        backtest(table, "vpnls", by="time")


def test_cli_backtest_json_parses(grid, tmp_path, capsys):
    table, _ = grid
    path = tmp_path / "runs.csv"
    pd.DataFrame({"params": table.N, "tokens": table.D, "flops": table.C, "val_loss": table.loss}).to_csv(
        path, index=False, float_format="%.17g")
    argv = ["backtest", str(path), "--columns", "N=params,D=tokens,C=flops,loss=val_loss", "--method", "vpnls",
            "--by", "size", "--bootstrap", "20"]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["by"] == "size" and out["n_test"] == 5 and 0.0 <= out["summary"]["coverage"] <= 1.0
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "MAPE" in text and "coverage:" in text
    assert main(["backtest", str(path), "--columns", "N=params,D=tokens,C=flops,loss=val_loss",
                 "--holdout", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: --holdout")


def test_the_report_shows_both_splits_with_mape_and_coverage(grid):
    from analysis.reporting.fits import BacktestEntry, run_backtest
    from analysis.reporting.page import backtest_section
    table, _ = grid
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
