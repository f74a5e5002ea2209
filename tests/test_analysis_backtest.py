import json

import numpy as np
import pandas as pd
import pytest

from analysis_helpers import backtest_surface_grid, chinchilla_surface, olmo_table
from analysis.backtest import backtest
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


@pytest.fixture(scope="module")
def grid():
    return backtest_surface_grid()


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
