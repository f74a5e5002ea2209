r"""From compute trends to the compute-optimal loss per calendar year.

The frontier. A Chinchilla-form fit L(N, D) = E + A N^-alpha + B D^-beta, with training compute C = 6 N D.

Derivation of the compute-optimal loss. Write x = C/6, so D = x/N, and minimise over N:
    d/dN [A N^-alpha + B x^-beta N^beta] = 0   <=>   alpha A N^-alpha = beta B D^-beta.            (1)
Substituting D = x/N in (1) gives N^(alpha+beta) = (alpha A / (beta B)) x^beta, hence
    N_opt = G x^a,  D_opt = x / N_opt = G^-1 x^b,
    a = beta/(alpha+beta),  b = alpha/(alpha+beta),  G = (alpha A / (beta B))^(1/(alpha+beta)).
By (1) the data term equals alpha/beta times the parameter term at the optimum, so
    L_opt(C) - E = A N_opt^-alpha (1 + alpha/beta) = K (C/6)^-gamma,
    gamma = alpha a = alpha beta / (alpha + beta),   K = A G^-alpha (alpha+beta)/beta.
(The test suite checks this against a brute-force minimisation of L(N, D) subject to 6ND = C.)

From calendar time to loss. If the compute that enters the loss grows exponentially,
C_eff(t) = C_eff(t0) 2^(s_eff (t - t0)) with s_eff doublings per year, then
    L_opt(t) - E = K (C_eff(t0)/6)^-gamma 2^(-gamma s_eff (t - t0)):
the *reducible loss L_opt - E halves every 1/(gamma s_eff) years*, whatever the starting point; likewise
N_opt doubles every 1/(a s) and D_opt every 1/(b s) years, where s is the growth of *physical* compute.
For Epoch's refit (alpha = 0.3478, beta = 0.3658) gamma = 0.178: one halving of the reducible loss per
1/gamma = 5.6 doublings (about 49x) of effective compute.

Scenarios (s in doublings per year; t0 = the anchor year; all start from the same compute at t0, the
fitted frontier-LM compute trend's value there):
- hardware_only: constant spend, so physical compute grows as FLOP/s per dollar (the
  `hardware_flops_per_dollar` trend), assuming the same training duration and utilisation.
- hardware_plus_algorithms: the above, times algorithmic progress.
- compute_trend: physical compute follows the observed frontier-LM training-compute trend.
- compute_plus_algorithms: the observed trend times algorithmic progress.
Algorithmic progress (Ho et al. 2024, arXiv:2403.05812): the compute needed for a fixed loss halves every
tau = 8 months (95% CI 5-14), i.e. C_eff = C_phys 2^((t - t0)/tau) and s_eff = s_phys + 12/tau. It acts
on the loss only: N_opt and D_opt are computed from physical compute, because the loss-equivalent
multiplier that Ho et al. measure says nothing about how the best split of real FLOPs changes.

Intervals combine the bootstrap replicates of the compute trend (and, for the anchor, its level) with
log-normal draws of tau matching Ho et al.'s interval, paired one to one; the frontier (E, A, B, alpha,
beta) is held fixed, so the intervals understate the total uncertainty.

Frontier models against the line: for a model with N, D (C = 6ND), the ratio of its tokens per
parameter to the compute-optimal D_opt/N_opt at the same C; above 2 we call it over-trained (a smaller
model trained on more tokens than compute-optimal, typical of models built for cheap inference), below
1/2 under-trained, in between near compute-optimal. The loss it gives away is L(N, D) - L_opt(C).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.trends.doubling import Trend, slope_interval
from scaling.errors import DataError

OVERTRAINED_FACTOR = 2.0


@dataclass(frozen=True)
class LossFrontier:
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str = ""

    @property
    def a(self) -> float:
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def G(self) -> float:
        return (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))

    @property
    def gamma(self) -> float:
        return self.alpha * self.beta / (self.alpha + self.beta)

    @property
    def K(self) -> float:
        return self.A * self.G ** -self.alpha * (self.alpha + self.beta) / self.beta

    def loss(self, N, D):
        return self.E + self.A * np.asarray(N, dtype=float) ** -self.alpha + self.B * np.asarray(D, dtype=float) ** -self.beta

    def n_opt(self, C):
        return self.G * (np.asarray(C, dtype=float) / 6.0) ** self.a

    def d_opt(self, C):
        return (np.asarray(C, dtype=float) / 6.0) ** self.b / self.G

    def reducible_opt(self, C):
        return self.K * (np.asarray(C, dtype=float) / 6.0) ** -self.gamma

    def loss_opt(self, C):
        return self.E + self.reducible_opt(C)

    def as_dict(self) -> dict:
        return {"E": self.E, "A": self.A, "B": self.B, "alpha": self.alpha, "beta": self.beta, "a": self.a,
                "b": self.b, "G": self.G, "gamma": self.gamma, "K": self.K, "source": self.source}


EPOCH_CHINCHILLA = LossFrontier(
    1.8172, 482.0, 2085.4, 0.3478, 0.3658,
    "Epoch AI refit of Chinchilla approach 3, Huber-likelihood headline (Besiroglu et al. 2024, arXiv:2404.10102)")


def load_frontier(path: str | Path) -> LossFrontier:
    """A fit written by `scaling fit --out FIT.json` (method parametric or vpnls), or any JSON object with
    top-level numbers E, A, B, alpha, beta."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"fit file not found: {path}; pass the JSON written by `scaling fit --out`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"fit file {path} is not valid JSON ({err}); pass the JSON written by `scaling fit --out`") from None
    keys = ("E", "A", "B", "alpha", "beta")
    if not isinstance(data, dict):
        raise DataError(f"fit file {path} holds a JSON {type(data).__name__}, not an object with keys {', '.join(keys)}")
    if data.get("schema") == "scaling.fit/1":  # a full fit result: the parameters are nested
        form = (data.get("spec") or {}).get("form")
        if form != "chinchilla":
            raise DataError(f"fit file {path} is a {form!r} fit; a Chinchilla-form fit (scaling fit --method "
                            "parametric or vpnls) is needed for a compute-optimal loss frontier")
        data = data.get("params") or {}
    values = {}
    for key in keys:
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise DataError(f"fit file {path}: top-level '{key}' is {value!r}, not a finite number; "
                            f"it needs numbers {', '.join(keys)}")
        values[key] = float(value)
    if min(values["A"], values["B"], values["alpha"], values["beta"]) <= 0 or values["E"] < 0:
        raise DataError(f"fit file {path}: A, B, alpha, beta must be > 0 and E >= 0 (got {values}); "
                        f"a Chinchilla-form fit is needed for a compute-optimal frontier")
    return LossFrontier(**values, source=f"fit from {path}")


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
    hardware = trends["hardware_flops_per_dollar"]
    compute = trends["frontier_lm_compute"]
    tau = 12.0 / algorithms.slope
    return [
        Scenario("hardware_only", "constant spend: compute grows as FLOP/s per dollar", hardware, None),
        Scenario("hardware_plus_algorithms",
                 f"constant spend plus algorithmic progress (compute for a fixed loss halves every {tau:.0f} months)",
                 hardware, algorithms),
        Scenario("compute_trend", "the observed frontier-LM training-compute trend", compute, None),
        Scenario("compute_plus_algorithms",
                 f"the observed compute trend plus algorithmic progress (halving every {tau:.0f} months)",
                 compute, algorithms),
    ]


def _years_from_slopes(point_slope: float, slopes_B: np.ndarray, factor: float) -> tuple[float, list[float]]:
    """Time for a quantity growing as 2^(factor·s·t) to double (or, for loss, halve): 1/(factor·s) years."""
    lo, hi = slope_interval(slopes_B)
    def invert(s):
        return 1.0 / (factor * s) if s > 0 else float("inf")
    return invert(point_slope), [invert(hi), invert(lo)]


def scenario_rates(frontier: LossFrontier, scenario: Scenario, n: int) -> dict:
    """Halving time of L_opt - E, doubling times of N_opt and D_opt (years) and of compute (months)."""
    eff_B = scenario.effective_slopes(n)
    phys_B = np.resize(scenario.compute.boot_slopes, n)
    loss, loss_ci = _years_from_slopes(scenario.effective_slope, eff_B, frontier.gamma)
    n_opt, n_ci = _years_from_slopes(scenario.compute_slope, phys_B, frontier.a)
    d_opt, d_ci = _years_from_slopes(scenario.compute_slope, phys_B, frontier.b)
    eff, eff_ci = _years_from_slopes(scenario.effective_slope, eff_B, 1.0)
    return {"description": scenario.description,
            "compute_series": scenario.compute.name,
            "compute_doubling_months": 12.0 / scenario.compute_slope,
            "algorithmic_halving_months": 12.0 / scenario.algorithms.slope if scenario.algorithms else None,
            "effective_compute_doubling_months": 12.0 * eff,
            "effective_compute_doubling_months_ci": [12.0 * v for v in eff_ci],
            "loss_halving_years": loss, "loss_halving_years_ci": loss_ci,
            "n_opt_doubling_years": n_opt, "n_opt_doubling_years_ci": n_ci,
            "d_opt_doubling_years": d_opt, "d_opt_doubling_years_ci": d_ci}


def project(frontier: LossFrontier, scenarios: list[Scenario], anchor: Trend, anchor_year: float,
            years, ci: float = 0.95) -> pd.DataFrame:
    """One row per scenario and calendar year (at the year's start): physical and effective compute,
    L_opt with a percentile band, L_opt - E, N_opt, D_opt. Every scenario starts from the anchor trend's
    compute at `anchor_year`."""
    years = np.asarray(years, dtype=float)
    c0 = float(anchor.predict(anchor_year))
    n = anchor.boot_slopes.size
    c0_B = 2.0 ** (anchor.boot_levels + anchor.boot_slopes * (anchor_year - anchor.t_ref))
    tail = 100 * (1 - ci) / 2
    rows = []
    for scenario in scenarios:
        dt = years - anchor_year
        phys = c0 * 2.0 ** (scenario.compute_slope * dt)
        eff = c0 * 2.0 ** (scenario.effective_slope * dt)
        eff_BxY = c0_B[:, None] * 2.0 ** (scenario.effective_slopes(n)[:, None] * dt[None, :])
        loss_BxY = frontier.loss_opt(eff_BxY)
        lo_Y, hi_Y = np.nanpercentile(loss_BxY, [tail, 100 - tail], axis=0)
        rows.append(pd.DataFrame({
            "scenario": scenario.name, "year": years, "compute": phys, "effective_compute": eff,
            "loss": frontier.loss_opt(eff), "loss_lo": lo_Y, "loss_hi": hi_Y,
            "reducible_loss": frontier.reducible_opt(eff), "n_opt": frontier.n_opt(phys), "d_opt": frontier.d_opt(phys)}))
    return pd.concat(rows, ignore_index=True)


def place_models(frontier: LossFrontier, models: pd.DataFrame) -> pd.DataFrame:
    """Each model (columns model, year, params, tokens) against the compute-optimal split at C = 6ND."""
    out = models[["model", "year", "params", "tokens"]].copy()
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
    return out.reset_index(drop=True)
