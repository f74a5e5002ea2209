"""The Moore-type headlines, each a rate with an interval:

1. effective compute: physical frontier-LM compute times algorithmic progress, doubling every
   1 / (s_compute + 12/tau) years (no loss frontier involved);
2. the compute needed to reach a fixed loss halves every tau months (algorithmic progress), and the cost
   every 1 / (12/tau + s_price) years, s_price the doublings per year of FLOP/s per dollar (no frontier);
3. the loss reachable at a fixed budget (the anchor year's frontier run, its dollars held fixed) per year:
   the hardware_plus_algorithms projection (through the frontier, with its draws).
Intervals pair the replicates of the trends involved one to one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.trends.doubling import Trend, doubling_time

FIXED_BUDGET_SCENARIO = "hardware_plus_algorithms"


def _months(rate: float, rates_B: np.ndarray) -> tuple[float, list[float]]:
    """12 / rate months, with the replicates' percentile interval inverted."""
    return doubling_time(rate, rates_B, 12.0)


def cost_to_fixed_loss(algorithms: Trend, price_performance: Trend, n: int) -> dict:
    """Halving times (months) of the compute and of the cost needed to reach one fixed loss."""
    alg_B = np.resize(algorithms.boot_slopes, n)
    price_B = np.resize(price_performance.boot_slopes, n)
    compute, compute_ci = _months(algorithms.slope, alg_B)
    cost, cost_ci = _months(algorithms.slope + price_performance.slope, alg_B + price_B)
    return {"compute_halving_months": compute, "compute_halving_months_ci": compute_ci,
            "cost_halving_months": cost, "cost_halving_months_ci": cost_ci,
            "price_performance_series": price_performance.name}


def loss_at_fixed_budget(projection: pd.DataFrame) -> list[dict]:
    """Per projected year: the compute-optimal loss the anchor year's budget (in dollars) buys."""
    rows = projection[(projection["scenario"] == FIXED_BUDGET_SCENARIO) & projection["projected"]]
    return [{"year": int(r.year), "loss": float(r.loss), "loss_ci": [float(r.loss_lo), float(r.loss_hi)],
             "effective_compute": float(r.effective_compute)} for r in rows.itertuples()]
