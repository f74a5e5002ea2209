import numpy as np
import pytest

from analysis_helpers import EPOCH_CI, epoch_fit, epoch_table
from analysis.resampling import bootstrap, resample_weights
from analysis.isoflop import fit_isoflop
from analysis.loading import from_arrays
from scaling.errors import DataError


def test_resampling_draws_whole_groups():
    groups = np.array(["a", "a", "b", "c", "c", "c"])
    w = resample_weights(groups, 500, seed=1)
    assert w.shape == (500, 6)
    np.testing.assert_array_equal(w[:, 0], w[:, 1])  # rows of one run move together
    np.testing.assert_array_equal(w[:, 3], w[:, 5])
    counts = w[:, [0, 2, 3]]
    assert np.all(counts.sum(1) == 3)  # 3 runs drawn per resample
    assert 0.9 < counts.mean() < 1.1


def test_epoch_bootstrap_intervals_overlap_the_published_ones():
    # 200 resamples here to keep the test fast (Epoch used 4,000; bench/fit_speed.py times 1,000).
    result = bootstrap(epoch_table(), epoch_fit(), n=200, seed=0)
    for name, (lo, hi) in EPOCH_CI.items():
        ours = result.intervals[name]
        assert ours[0] < hi and lo < ours[1], (name, ours)
        assert ours[0] < result.params[name] < ours[1]
    assert result.bootstrap["unit"] == "row" and result.bootstrap["n_ok"] >= 195
    assert result.bootstrap["sd"]["a"] == pytest.approx(0.020, abs=0.008)  # Epoch: a SD 0.020
    for name in ("E", "A", "B", "a", "b", "G"):
        assert name in result.intervals
    row = result.predictions[0]
    assert row["L_opt_lo"] < row["L_opt"] < row["L_opt_hi"]
    assert row["N_opt_lo"] < row["N_opt"] < row["N_opt_hi"]
    assert len(result.samples["alpha"]) == result.bootstrap["n_ok"]


def test_runs_with_several_rows_are_resampled_whole():
    N = np.repeat([1e8, 2e8, 4e8, 8e8, 1.6e9], 4)
    C = np.tile([1e18, 1e18, 1e19, 1e20], 5) * np.repeat([1, 1.01, 0.99, 1.02, 0.98], 4)
    C[1::4] = 3e18
    loss = 1.69 + 406.4 / N ** 0.34 + 410.7 / (C / (6 * N)) ** 0.28
    table = from_arrays(N, C / (6 * N), loss, C=C, run_id=[f"run{i // 4}" for i in range(20)])
    fit = fit_isoflop(table, budgets=[1e18, 3e18, 1e19, 1e20])
    result = bootstrap(table, fit, n=50, seed=2, resample="cases")
    assert result.bootstrap["unit"] == "run" and result.bootstrap["n_units"] == 5


def test_bootstrap_refuses_a_different_table():
    fit = epoch_fit()
    N = np.array([1e8, 2e8, 4e8])
    with pytest.raises(DataError, match="not the one the fit used"):
        bootstrap(from_arrays(N, 20 * N, [3.0, 2.9, 2.8]), fit, n=10)
