import numpy as np
import pandas as pd
import pytest

from analysis.trends import doubling, headlines


def test_cost_to_fixed_loss_adds_algorithms_and_price_performance():
    algorithms = doubling.published_trend("algo", 8.0, "algo", (5.0, 14.0), n_boot=2000)
    price = doubling.published_trend("hw", 30.0, "hw", None, n_boot=2000)
    out = headlines.cost_to_fixed_loss(algorithms, price, 2000)
    assert out["compute_halving_months"] == pytest.approx(8.0)
    assert out["cost_halving_months"] == pytest.approx(1 / (1 / 8 + 1 / 30))
    lo, hi = out["compute_halving_months_ci"]
    assert lo == pytest.approx(5.0, rel=0.03) and hi == pytest.approx(14.0, rel=0.03)  # the published interval
    c_lo, c_hi = out["cost_halving_months_ci"]
    assert c_lo < out["cost_halving_months"] < c_hi < hi  # cheaper hardware shortens every replicate
    assert out["price_performance_series"] == "hw"


def test_loss_at_fixed_budget_reads_the_constant_spend_projection():
    years = np.arange(2025, 2028)
    rows = pd.DataFrame({"scenario": "hardware_plus_algorithms", "year": years, "loss": [2.0, 1.9, 1.8],
                         "loss_lo": [1.9, 1.8, 1.7], "loss_hi": [2.1, 2.0, 1.9], "effective_compute": [1.0, 2.0, 4.0],
                         "projected": True})
    other = rows.assign(scenario="compute_trend", loss=0.0)
    out = headlines.loss_at_fixed_budget(pd.concat([rows, other, rows.assign(projected=False)]))
    assert [r["year"] for r in out] == [2025, 2026, 2027]
    assert [r["loss"] for r in out] == [2.0, 1.9, 1.8] and out[1]["loss_ci"] == [1.8, 2.0]
