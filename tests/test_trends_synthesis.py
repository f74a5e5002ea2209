import dataclasses

import numpy as np
import pandas as pd
import pytest

from analysis.trends import doubling, synthesis
from analysis.trends.loss_frontier import EPOCH_CHINCHILLA, LossFrontier

# Models typed in from their papers (N, D), independent of the built-in table's contents.
MODELS = pd.DataFrame({"model": ["Chinchilla 70B", "GPT-3 175B", "Llama 3 8B", "Llama 3 70B", "closed"],
                       "year": [2022.2, 2020.4, 2024.3, 2024.3, 2024.0],
                       "params": [70e9, 175e9, 8e9, 70e9, np.nan], "tokens": [1.4e12, 300e9, 15e12, 15e12, np.nan]})


def test_model_placement_labels_over_and_under_training():
    placed = synthesis.place_models(EPOCH_CHINCHILLA, MODELS).set_index("model")
    assert "closed" not in placed.index  # no published N and D: not placed
    chinchilla = placed.loc["Chinchilla 70B"]  # about 20 tokens/parameter: on Epoch's line
    assert chinchilla["verdict"] == "near compute-optimal" and 0.8 < chinchilla["ratio_to_optimal"] < 1.25
    assert placed.loc["GPT-3 175B", "verdict"] == "under-trained"  # 1.7 tokens per parameter
    assert placed.loc["Llama 3 8B", "verdict"] == "over-trained"  # 1,875 tokens per parameter
    assert (placed["excess_loss"] >= -1e-12).all()  # nothing beats the compute-optimal loss at its C
    assert placed.loc["Llama 3 8B", "excess_loss"] > placed.loc["Llama 3 70B", "excess_loss"] > 0


def test_placement_states_the_extrapolation_factor_over_n_d_and_c():
    placed = synthesis.place_models(EPOCH_CHINCHILLA, MODELS).set_index("model")
    rng = EPOCH_CHINCHILLA.fit_range
    chinchilla = placed.loc["Chinchilla 70B"]
    expected = max(70e9 / rng["N"][1], 1.4e12 / rng["D"][1], 6 * 70e9 * 1.4e12 / rng["C"][1])
    assert chinchilla["extrapolation_factor"] == pytest.approx(expected)
    inside = MODELS.iloc[:1].assign(params=1e9, tokens=2e10)  # inside Epoch's data on every axis
    assert synthesis.place_models(EPOCH_CHINCHILLA, inside)["extrapolation_factor"].iloc[0] == 1.0
    unknown = dataclasses.replace(EPOCH_CHINCHILLA, fit_range=None)
    assert synthesis.place_models(unknown, MODELS)["extrapolation_factor"].isna().all()


def constant_trend(name, months, n=400):
    return doubling.published_trend(name, months, name, None, n_boot=n)


def test_scenario_rates_follow_the_derivation():
    trends = {"hardware_flops_per_dollar": constant_trend("hw", 30.0),
              "frontier_lm_compute": constant_trend("compute", 6.0)}
    algorithms = doubling.published_trend("algo", 8.0, "algo", (5.0, 14.0), n_boot=400)
    scenarios = {s.name: s for s in synthesis.build_scenarios(trends, algorithms)}
    f = EPOCH_CHINCHILLA
    rates = {name: synthesis.scenario_rates(f, s, 400) for name, s in scenarios.items()}
    s_c, s_a, s_h = 12 / 6.0, 12 / 8.0, 12 / 30.0  # doublings per year
    assert rates["compute_trend"]["loss_halving_years"] == pytest.approx(1 / (f.gamma * s_c))
    assert rates["compute_plus_algorithms"]["loss_halving_years"] == pytest.approx(1 / (f.gamma * (s_c + s_a)))
    assert rates["hardware_only"]["loss_halving_years"] == pytest.approx(1 / (f.gamma * s_h))
    assert rates["compute_plus_algorithms"]["effective_compute_doubling_months"] == pytest.approx(1 / (1 / 6 + 1 / 8))
    assert rates["compute_trend"]["n_opt_doubling_years"] == pytest.approx(1 / (f.a * s_c))
    assert rates["compute_trend"]["d_opt_doubling_years"] == pytest.approx(1 / (f.b * s_c))
    # Algorithms speed up the loss, not the allocation of physical compute.
    assert rates["compute_plus_algorithms"]["n_opt_doubling_years"] == rates["compute_trend"]["n_opt_doubling_years"]
    # Exact compute trend: the interval comes from Ho et al.'s and the frontier's draws, and brackets the value.
    lo, hi = rates["compute_plus_algorithms"]["loss_halving_years_ci"]
    assert lo < rates["compute_plus_algorithms"]["loss_halving_years"] < hi
    # ... with the frontier's draws of gamma; held fixed, the exact compute trend leaves no interval at all.
    lo, hi = rates["compute_trend"]["loss_halving_years_ci"]
    assert lo < 1 / (f.gamma * s_c) < hi
    fixed = dataclasses.replace(f, draws=None)
    exact = synthesis.scenario_rates(fixed, scenarios["compute_trend"], 400)["loss_halving_years_ci"]
    assert exact == pytest.approx([1 / (f.gamma * s_c)] * 2)


def test_projection_halves_reducible_loss_on_schedule():
    anchor = doubling.fit_trend([2020.0, 2021.0, 2022.0, 2023.0], [1e24, 2e24, 4e24, 8e24], n_boot=20)  # 12 months
    algorithms = constant_trend("algo", 8.0, n=20)
    scenarios = synthesis.build_scenarios({"hardware_flops_per_dollar": constant_trend("hw", 24.0, n=20),
                                           "frontier_lm_compute": anchor}, algorithms)
    f = EPOCH_CHINCHILLA
    proj = synthesis.project(f, scenarios, anchor, 2025, np.arange(2025, 2046)).set_index(["scenario", "year"])
    at_anchor = proj.xs(2025.0, level="year")
    assert np.allclose(at_anchor["compute"], 3.2e25) and np.allclose(at_anchor["loss"], f.loss_opt(3.2e25))
    halving = 1 / f.gamma  # years, for one doubling of compute per year
    red = proj.loc["compute_trend", "reducible_loss"]
    assert np.interp(2025 + halving, red.index, np.log(red)) == pytest.approx(np.log(red.loc[2025.0] / 2), abs=1e-9)
    for name in ("compute_trend", "compute_plus_algorithms", "hardware_only"):
        loss = proj.loc[name, "loss"]
        assert (np.diff(loss) < 0).all() and (loss > f.E).all()
        assert (proj.loc[name, "loss_lo"] <= loss + 1e-12).all() and (loss <= proj.loc[name, "loss_hi"] + 1e-12).all()
    # N and D follow physical compute; effective compute only moves the loss.
    both = proj.loc["compute_plus_algorithms"]
    np.testing.assert_allclose(both["n_opt"], proj.loc["compute_trend", "n_opt"])
    assert (both["loss"].iloc[1:] < proj.loc["compute_trend", "loss"].iloc[1:]).all()


def synthetic_trend(name, months, n_boot=200, noise=0.3, seed=0, n=60):
    """Noisy exponential data with a known doubling time (months)."""
    rng = np.random.default_rng(seed)
    year = 2015 + 10 * rng.random(n)
    value = 1e20 * 2.0 ** ((year - 2015) * 12 / months + noise * rng.standard_normal(n))
    return doubling.fit_trend(year, value, name, n_boot=n_boot, seed=seed)


def test_effective_compute_doubling_recovers_known_rates():
    compute = synthetic_trend("frontier_lm_compute", 6.0)
    algorithms = synthetic_trend("algorithmic_halving", 8.0, seed=1)
    scenarios = {s.name: s for s in synthesis.build_scenarios(
        {"hardware_flops_per_dollar": synthetic_trend("hw", 30.0, seed=2), "frontier_lm_compute": compute}, algorithms)}
    rates = synthesis.scenario_rates(EPOCH_CHINCHILLA, scenarios["compute_plus_algorithms"], 200)
    truth = 1 / (1 / 6 + 1 / 8)
    assert rates["effective_compute_doubling_months"] == pytest.approx(truth, rel=0.05)
    lo, hi = rates["effective_compute_doubling_months_ci"]
    assert lo < truth < hi and hi - lo < 1.0


def test_price_performance_prefers_the_training_format():
    trends = {"hardware_flops_per_dollar": constant_trend("fp32", 42.0),
              "hardware_flops_per_dollar_tensor16": constant_trend("tensor16", 26.0),
              "frontier_lm_compute": constant_trend("compute", 6.0)}
    assert synthesis.price_performance_key(trends) == "hardware_flops_per_dollar_tensor16"
    hardware_only = synthesis.build_scenarios(trends, constant_trend("algo", 8.0))[0]
    assert hardware_only.compute.name == "tensor16"
    del trends["hardware_flops_per_dollar_tensor16"]
    assert synthesis.price_performance_key(trends) == "hardware_flops_per_dollar"


def test_frontier_draws_widen_the_projection_and_include_e():
    anchor = synthetic_trend("frontier_lm_compute", 6.0, n_boot=300)
    scenarios = synthesis.build_scenarios({"hardware_flops_per_dollar": constant_trend("hw", 30.0, n=300),
                                           "frontier_lm_compute": anchor}, constant_trend("algo", 8.0, n=300))
    fixed = dataclasses.replace(EPOCH_CHINCHILLA, draws=None)
    years = np.arange(2025, 2036)
    with_draws = synthesis.project(EPOCH_CHINCHILLA, scenarios, anchor, 2025, years)
    without = synthesis.project(fixed, scenarios, anchor, 2025, years)
    width = lambda frame: (frame["loss_hi"] - frame["loss_lo"]).to_numpy()  # noqa: E731
    assert (width(with_draws) > width(without)).all()
    # E's own spread (0.10 nats) is in the band: the 2035 band is wider than E's interval's half-width.
    late = with_draws[with_draws["year"] == 2035]
    assert (late["loss_hi"] - late["loss_lo"] > 0.05).all()
    # Same point estimates either way; the fixed frontier's band comes from the trends alone.
    np.testing.assert_allclose(with_draws["loss"], without["loss"])
    rates_draws = synthesis.scenario_rates(EPOCH_CHINCHILLA, scenarios[2], 300)["loss_halving_years_ci"]
    rates_fixed = synthesis.scenario_rates(fixed, scenarios[2], 300)["loss_halving_years_ci"]
    assert rates_draws[1] - rates_draws[0] > rates_fixed[1] - rates_fixed[0]


def test_projection_states_extrapolation_and_saturates_at_the_limits():
    anchor = doubling.fit_trend([2020.0, 2021.0, 2022.0, 2023.0], [1e24, 2e24, 4e24, 8e24], n_boot=20)
    scenarios = synthesis.build_scenarios({"hardware_flops_per_dollar": constant_trend("hw", 24.0, n=20),
                                           "frontier_lm_compute": anchor}, constant_trend("algo", 8.0, n=20))
    proj = synthesis.project(EPOCH_CHINCHILLA, scenarios, anchor, 2025, np.arange(2025, 2046))
    trend = proj[proj.scenario == "compute_trend"].set_index("year")
    np.testing.assert_allclose(trend["extrapolation_factor"], trend["effective_compute"] / 1.3e22)
    capped = trend["compute_saturating"]
    assert capped.max() == pytest.approx(2e29) and (capped <= trend["compute"] + 1).all()
    assert (trend["d_saturating"] <= 3e14 * (1 + 1e-12)).all()
    # Saturating never does better than the exponential, and equals it before any limit binds.
    assert (trend["loss_saturating"] >= trend["loss"] - 1e-12).all()
    assert trend.loc[2025.0, "loss_saturating"] == pytest.approx(trend.loc[2025.0, "loss"])
