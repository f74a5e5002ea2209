import math

import numpy as np
import pytest

from analysis.trends import limits
from analysis.trends.loss_frontier import EPOCH_CHINCHILLA


def test_crossing_year_of_a_synthetic_exponential():
    # 1e26 doubling once a year reaches 2e29 after log2(2000) = 10.97 years.
    assert limits.crossing_year(1e26, 2025, 1.0, 2e29) == pytest.approx(2025 + math.log2(2000))
    assert limits.crossing_year(1e26, 2025, 0.0, 2e29) == math.inf
    assert limits.crossing_year(4e29, 2025, 1.0, 2e29) == pytest.approx(2024.0)  # already past a year ago


def test_scenario_crossings_use_d_opt_growing_at_b_times_compute():
    lim = limits.Limits(data_stock_tokens=3e14, max_feasible_compute=2e29)
    c0, s = 5e25, 12 / 5.3  # compute doubling every 5.3 months
    out = limits.crossings(EPOCH_CHINCHILLA, c0, 2025, s, lim)
    assert out["compute_passes_feasible_year"] == pytest.approx(2025 + math.log2(2e29 / c0) / s)
    year = out["d_opt_passes_data_stock_year"]
    # Checked directly: D_opt of the compute reached in that year is the stock.
    assert float(EPOCH_CHINCHILLA.d_opt(c0 * 2 ** (s * (year - 2025)))) == pytest.approx(3e14, rel=1e-9)
    # Overridable: a larger stock is crossed later.
    later = limits.crossings(EPOCH_CHINCHILLA, c0, 2025, s, limits.Limits(data_stock_tokens=1e15))
    assert later["d_opt_passes_data_stock_year"] > year


def test_saturating_variant_holds_compute_and_tokens_at_the_limits():
    lim = limits.Limits(data_stock_tokens=3e14, max_feasible_compute=2e29)
    compute = np.array([1e25, 1e28, 1e30, 1e31])
    effective = compute * 4.0  # an algorithmic multiplier of 4
    out = limits.saturating(EPOCH_CHINCHILLA, compute, effective, lim)
    np.testing.assert_allclose(out["compute_saturating"], [1e25, 1e28, 2e29, 2e29])
    assert (out["d_saturating"] <= 3e14).all()
    # Below both limits it is the exponential projection; above, compute stops helping.
    assert out["loss_saturating"][0] == pytest.approx(float(EPOCH_CHINCHILLA.loss_opt(4e25)))
    assert out["loss_saturating"][2] == pytest.approx(out["loss_saturating"][3])
    assert (out["loss_saturating"] >= EPOCH_CHINCHILLA.loss_opt(effective) - 1e-12).all()


def test_an_overridden_limit_is_not_attributed_to_the_published_source():
    published = limits.Limits().as_dict()
    assert published["data_stock_citation"] == limits.DATA_STOCK_CITATION
    assert published["max_feasible_citation"] == limits.MAX_FEASIBLE_CITATION
    overridden = limits.Limits(data_stock_tokens=1e15, max_feasible_compute=1e30).as_dict()
    assert overridden["data_stock_citation"].startswith("set by --data-stock-tokens (published: 3e+14")
    assert overridden["max_feasible_citation"].startswith("set by --max-feasible-compute (published: 2e+29")
