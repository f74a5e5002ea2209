r"""From compute trends to the compute-optimal loss per calendar year.

The frontier (analysis.trends.loss_frontier): L(N, D) = E + A N^-alpha + B D^-beta with C = 6 N D gives
N_opt = G (C/6)^a, D_opt = (C/6)^b / G and L_opt(C) - E = K (C/6)^-gamma, gamma = alpha beta / (alpha + beta).
(The test suite checks this against a brute-force minimisation of L(N, D) subject to 6ND = C.)

From calendar time to loss. If the compute that enters the loss grows exponentially,
C_eff(t) = C_eff(t0) 2^(s_eff (t - t0)) with s_eff doublings per year, then
    L_opt(t) - E = K (C_eff(t0)/6)^-gamma 2^(-gamma s_eff (t - t0)):
the *reducible loss L_opt - E halves every 1/(gamma s_eff) years*, whatever the starting point; likewise
N_opt doubles every 1/(a s) and D_opt every 1/(b s) years, where s is the growth of *physical* compute.
For Epoch's refit (alpha = 0.3478, beta = 0.3658) gamma = 0.178: one halving of the reducible loss per
1/gamma = 5.6 doublings (about 49x) of effective compute. That halving time presumes E is the true floor.

Scenarios (s in doublings per year; t0 = the anchor year; all start from the same compute at t0, the
fitted frontier-LM compute trend's value there):
- hardware_only: constant spend, so physical compute grows as FLOP/s per dollar (the tensor-FP16/BF16
  series when the hardware file gives it, the format training runs use; else `hardware_flops_per_dollar`),
  assuming the same training duration and utilisation.
- hardware_plus_algorithms: the above, times algorithmic progress.
- compute_trend: physical compute follows the observed frontier-LM training-compute trend.
- compute_plus_algorithms: the observed trend times algorithmic progress.
Algorithmic progress (analysis.trends.algorithmic): the compute needed for a fixed loss halves every tau
months, C_eff = C_phys 2^((t - t0)/tau), s_eff = s_phys + 12/tau. It acts on the loss only: N_opt and D_opt
come from physical compute, because the loss-equivalent multiplier says nothing about how the best split
of real FLOPs changes.

Intervals pair, replicate by replicate, the compute trend's bootstrap (slope and, for the anchor, level),
the algorithmic-progress replicates, and the frontier's draws (E, A, B, alpha, beta; see loss_frontier),
so E's uncertainty is in every loss band.

Frontier models against the line: for a model with N, D (C = 6ND), the ratio of its tokens per
parameter to the compute-optimal D_opt/N_opt at the same C; above 2 we call it over-trained (a smaller
model trained on more tokens than compute-optimal, typical of models built for cheap inference), below
1/2 under-trained, in between near compute-optimal. The loss it gives away is L(N, D) - L_opt(C). Models
without a published N and D (closed models) have compute only and are not placed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.trends import extrapolation, limits as limits_mod
from analysis.trends.doubling import Trend, doubling_time
from analysis.trends.loss_frontier import EPOCH_CHINCHILLA, LossFrontier, load_frontier  # noqa: F401 (re-exported)

OVERTRAINED_FACTOR = 2.0
# FLOP/s per dollar for the constant-spend scenarios and the cost headline: like for like in the format
# training runs use when the hardware file gives it.
PRICE_PERFORMANCE_KEYS = ("hardware_flops_per_dollar_tensor16", "hardware_flops_per_dollar")


def price_performance_key(trends: dict[str, Trend]) -> str:
    return next(k for k in PRICE_PERFORMANCE_KEYS if k in trends)


# --- scenarios ---

@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    compute: Trend  # physical compute growth
    algorithms: Trend | None  # halving of compute needed for a fixed loss, as a growth of effective compute

    @property
    def compute_slope(self) -> float:
        return self.compute.slope

    @property
    def effective_slope(self) -> float:
        return self.compute.slope + (self.algorithms.slope if self.algorithms else 0.0)

    def effective_slopes(self, n: int) -> np.ndarray:
        s_B = np.resize(self.compute.boot_slopes, n)
        return s_B + (np.resize(self.algorithms.boot_slopes, n) if self.algorithms else 0.0)


def build_scenarios(trends: dict[str, Trend], algorithms: Trend) -> list[Scenario]:
    hardware = trends[price_performance_key(trends)]
    compute = trends["frontier_lm_compute"]
    tau = 12.0 / algorithms.slope
    return [
        Scenario("hardware_only", f"constant spend: compute grows as {hardware.name}", hardware, None),
        Scenario("hardware_plus_algorithms",
                 f"constant spend plus algorithmic progress (compute for a fixed loss halves every {tau:.0f} months)",
                 hardware, algorithms),
        Scenario("compute_trend", "the observed frontier-LM training-compute trend", compute, None),
        Scenario("compute_plus_algorithms",
                 f"the observed compute trend plus algorithmic progress (halving every {tau:.0f} months)",
                 compute, algorithms),
    ]


def _years(point_rate: float, rates_B: np.ndarray) -> tuple[float, list[float]]:
    """Time for a quantity growing (or, for loss, shrinking) by 2^(rate·t) to double (halve): 1/rate years,
    with the percentile interval of the replicates' rates inverted."""
    return doubling_time(point_rate, rates_B)


def scenario_rates(frontier: LossFrontier, scenario: Scenario, n: int) -> dict:
    """Halving time of L_opt - E, doubling times of N_opt and D_opt (years) and of compute (months); the
    intervals pair the trend and algorithmic replicates with the frontier's draws of gamma, a and b."""
    eff_B = scenario.effective_slopes(n)
    phys_B = np.resize(scenario.compute.boot_slopes, n)
    drawn = frontier.drawn(n)
    gamma_B, a_B, b_B = (np.broadcast_to(np.ravel(v), (n,)) for v in (drawn.gamma, drawn.a, drawn.b))
    s_eff, s_phys = scenario.effective_slope, scenario.compute_slope
    loss, loss_ci = _years(frontier.gamma * s_eff, gamma_B * eff_B)
    n_opt, n_ci = _years(frontier.a * s_phys, a_B * phys_B)
    d_opt, d_ci = _years(frontier.b * s_phys, b_B * phys_B)
    eff, eff_ci = _years(s_eff, eff_B)
    return {"description": scenario.description,
            "compute_series": scenario.compute.name,
            "compute_doubling_months": 12.0 / s_phys,
            "algorithmic_halving_months": 12.0 / scenario.algorithms.slope if scenario.algorithms else None,
            "effective_compute_doubling_months": 12.0 * eff,
            "effective_compute_doubling_months_ci": [12.0 * v for v in eff_ci],
            "loss_halving_years": loss, "loss_halving_years_ci": loss_ci,
            "n_opt_doubling_years": n_opt, "n_opt_doubling_years_ci": n_ci,
            "d_opt_doubling_years": d_opt, "d_opt_doubling_years_ci": d_ci}


def project(frontier: LossFrontier, scenarios: list[Scenario], anchor: Trend, anchor_year: float,
            years, ci: float = 0.95, limits: limits_mod.Limits | None = None) -> pd.DataFrame:
    """One row per scenario and calendar year (at the year's start): physical and effective compute,
    L_opt and L_opt - E with percentile bands (trend x algorithms x frontier draws), N_opt, D_opt, the
    extrapolation factor of the frontier at that effective compute, and the saturating variant (`limits`).
    Every scenario starts from the anchor trend's compute at `anchor_year`."""
    years = np.asarray(years, dtype=float)
    limits = limits or limits_mod.Limits()
    c0 = float(anchor.predict(anchor_year))
    n = anchor.boot_slopes.size
    c0_B = 2.0 ** (anchor.boot_levels + anchor.boot_slopes * (anchor_year - anchor.t_ref))
    drawn = frontier.drawn(n)
    tail = 100 * (1 - ci) / 2
    span = frontier.fit_range.get("C") if frontier.fit_range else None
    rows = []
    for scenario in scenarios:
        dt = years - anchor_year
        phys = c0 * 2.0 ** (scenario.compute_slope * dt)
        eff = c0 * 2.0 ** (scenario.effective_slope * dt)
        eff_BxY = c0_B[:, None] * 2.0 ** (scenario.effective_slopes(n)[:, None] * dt[None, :])
        reducible_BxY = drawn.reducible_opt(eff_BxY)
        loss_lo, loss_hi = np.nanpercentile(drawn.E + reducible_BxY, [tail, 100 - tail], axis=0)
        red_lo, red_hi = np.nanpercentile(reducible_BxY, [tail, 100 - tail], axis=0)
        rows.append(pd.DataFrame({
            "scenario": scenario.name, "year": years, "compute": phys, "effective_compute": eff,
            "loss": frontier.loss_opt(eff), "loss_lo": loss_lo, "loss_hi": loss_hi,
            "reducible_loss": frontier.reducible_opt(eff), "reducible_lo": red_lo, "reducible_hi": red_hi,
            "n_opt": frontier.n_opt(phys), "d_opt": frontier.d_opt(phys),
            "extrapolation_factor": extrapolation.factor(eff, span),
            **limits_mod.saturating(frontier, phys, eff, limits)}))
    return pd.concat(rows, ignore_index=True)


def place_models(frontier: LossFrontier, models: pd.DataFrame) -> pd.DataFrame:
    """Each model with a published N and D (columns model, year, params, tokens) against the
    compute-optimal split at C = 6ND, with the frontier's extrapolation factor there (the largest over
    N, D and C)."""
    out = models[["model", "year", "params", "tokens"]].dropna().copy()
    out["compute_6nd"] = 6.0 * out["params"] * out["tokens"]
    out["n_opt"] = frontier.n_opt(out["compute_6nd"])
    out["d_opt"] = frontier.d_opt(out["compute_6nd"])
    out["tokens_per_param"] = out["tokens"] / out["params"]
    out["optimal_tokens_per_param"] = out["d_opt"] / out["n_opt"]
    out["ratio_to_optimal"] = out["tokens_per_param"] / out["optimal_tokens_per_param"]
    out["verdict"] = np.where(out["ratio_to_optimal"] > OVERTRAINED_FACTOR, "over-trained",
                              np.where(out["ratio_to_optimal"] < 1 / OVERTRAINED_FACTOR, "under-trained",
                                       "near compute-optimal"))
    out["predicted_loss"] = frontier.loss(out["params"], out["tokens"])
    out["excess_loss"] = out["predicted_loss"] - frontier.loss_opt(out["compute_6nd"])
    span = frontier.fit_range or {}
    out["extrapolation_factor"] = np.fmax.reduce([extrapolation.factor(out[col], span.get(key))
                                                  for col, key in (("params", "N"), ("tokens", "D"),
                                                                   ("compute_6nd", "C"))])
    return out.reset_index(drop=True)
