import json

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from analysis.trends import doubling, summary, synthesis
from analysis.trends.frontier_models import frontier_table
from analysis.trends.synthesis import EPOCH_CHINCHILLA, LossFrontier
from scaling.errors import DataError

CHINCHILLA_APPROACH3 = LossFrontier(1.69, 406.4, 410.7, 0.34, 0.28, "Hoffmann et al. 2022")
FRONTIERS = [EPOCH_CHINCHILLA, CHINCHILLA_APPROACH3, LossFrontier(0.5, 50.0, 3000.0, 0.2, 0.6)]


def brute_force(frontier: LossFrontier, C: float) -> tuple[float, float]:
    """argmin over N of L(N, C / (6N)), by bounded scalar minimisation on log N."""
    def loss(log_n):
        n = np.exp(log_n)
        return float(frontier.loss(n, C / (6 * n)))
    res = minimize_scalar(loss, bounds=(np.log(1e3), np.log(C / 6 / 1e3)), method="bounded",
                          options={"xatol": 1e-10, "maxiter": 500})
    return float(np.exp(res.x)), float(res.fun)


@pytest.mark.parametrize("frontier", FRONTIERS, ids=["epoch", "chinchilla", "lopsided"])
def test_closed_form_optimum_matches_brute_force(frontier):
    for C in (1e18, 1e21, 5.76e23, 1e27):
        n_star, loss_star = brute_force(frontier, C)
        assert float(frontier.n_opt(C)) == pytest.approx(n_star, rel=1e-4)
        assert float(frontier.n_opt(C) * frontier.d_opt(C)) == pytest.approx(C / 6, rel=1e-12)
        assert float(frontier.loss_opt(C)) == pytest.approx(loss_star, rel=1e-10)
        # ... and it really is the minimum along the 6ND = C curve
        for factor in (0.9, 1.1):
            n = float(frontier.n_opt(C)) * factor
            assert frontier.loss(n, C / (6 * n)) > frontier.loss_opt(C)


@pytest.mark.parametrize("frontier", FRONTIERS, ids=["epoch", "chinchilla", "lopsided"])
def test_reducible_loss_is_a_power_law_with_exponent_gamma(frontier):
    # Local log-log slope of the brute-force L_opt - E against C is -alpha*beta/(alpha+beta) everywhere.
    for C in (1e19, 1e23, 1e26):
        lo, hi = (brute_force(frontier, c)[1] - frontier.E for c in (C, C * 1.5))
        assert np.log(hi / lo) / np.log(1.5) == pytest.approx(-frontier.gamma, rel=1e-5)
    # So doubling C 1/gamma times halves it exactly.
    C = 1e22
    assert frontier.reducible_opt(C * 2 ** (1 / frontier.gamma)) == pytest.approx(frontier.reducible_opt(C) / 2)


def test_epoch_frontier_exponents():
    # Besiroglu et al. (2024): a = beta / (alpha + beta) = 0.513 for their headline fit.
    assert EPOCH_CHINCHILLA.a == pytest.approx(0.513, abs=0.0006)
    assert EPOCH_CHINCHILLA.gamma == pytest.approx(0.3478 * 0.3658 / (0.3478 + 0.3658))
    # Chinchilla itself (70B, 1.4T tokens) sits on Epoch's compute-optimal line: about 20 tokens/parameter.
    chinchilla = synthesis.place_models(EPOCH_CHINCHILLA, frontier_table()).set_index("model").loc["Chinchilla 70B"]
    assert chinchilla["verdict"] == "near compute-optimal"
    assert 0.8 < chinchilla["ratio_to_optimal"] < 1.25 and chinchilla["excess_loss"] < 1e-3


def test_model_placement_labels_over_and_under_training():
    placed = synthesis.place_models(EPOCH_CHINCHILLA, frontier_table()).set_index("model")
    assert placed.loc["GPT-3 175B", "verdict"] == "under-trained"  # 1.7 tokens per parameter
    assert placed.loc["Llama 3 8B", "verdict"] == "over-trained"  # 1,875 tokens per parameter
    assert (placed["excess_loss"] >= -1e-12).all()  # nothing beats the compute-optimal loss at its C
    assert placed.loc["Llama 3 8B", "excess_loss"] > placed.loc["Llama 3 70B", "excess_loss"] > 0


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
    # Exact compute trend: the only interval comes from Ho et al.'s, and it brackets the point value.
    lo, hi = rates["compute_plus_algorithms"]["loss_halving_years_ci"]
    assert lo < rates["compute_plus_algorithms"]["loss_halving_years"] < hi
    assert rates["compute_trend"]["loss_halving_years_ci"] == pytest.approx([1 / (f.gamma * s_c)] * 2)


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


def test_summary_on_builtin_data_has_the_contract_keys():
    result, *_ = summary.analyze(n_boot=50)
    for key in summary.HEADLINE_KEYS:
        assert isinstance(result["doubling_months"][key], float)
        assert len(result["doubling_months_ci"][key]) == 2
    assert set(result["loss_halving_years"]) == {"hardware_only", "hardware_plus_algorithms", "compute_trend",
                                                 "compute_plus_algorithms"}
    assert all(isinstance(s, str) and s.endswith(".") for s in result["answers"])
    json.dumps(result)  # plain JSON types throughout


def test_load_frontier_accepts_any_json_with_the_five_numbers(tmp_path):
    path = tmp_path / "fit.json"
    path.write_text(json.dumps({"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28, "approach": 3,
                                "bootstrap": {"alpha": [0.3, 0.4]}}))
    frontier = synthesis.load_frontier(path)
    assert frontier.a == pytest.approx(0.28 / 0.62) and str(path) in frontier.source


def test_load_frontier_reads_a_scaling_fit_result(tmp_path):
    from analysis.fit import fit
    from analysis_helpers import chinchilla_surface

    table, truth = chinchilla_surface(budgets=(1e18, 1e19, 1e20), sizes_per_budget=4)
    path = tmp_path / "fit.json"
    path.write_text(fit(table, "parametric").to_json())  # what `scaling fit --out` writes
    frontier = synthesis.load_frontier(path)
    assert frontier.alpha == pytest.approx(truth["alpha"], rel=1e-3) and frontier.E == pytest.approx(truth["E"], rel=1e-3)
    path.write_text(fit(table, "isoflop").to_json())
    with pytest.raises(DataError, match="Chinchilla-form fit"):
        synthesis.load_frontier(path)


@pytest.mark.parametrize("content, message", [
    ({"E": 1.7, "A": 400, "B": 400, "alpha": 0.3}, "'beta' is None"),
    ({"E": 1.7, "A": 400, "B": 400, "alpha": 0.3, "beta": "0.3"}, "'beta' is '0.3'"),
    ({"E": 1.7, "A": 400, "B": 400, "alpha": True, "beta": 0.3}, "'alpha' is True"),
    ({"E": 1.7, "A": -4, "B": 400, "alpha": 0.3, "beta": 0.3}, "must be > 0"),
    ([1, 2, 3], "not an object"),
])
def test_load_frontier_rejects_bad_fits(tmp_path, content, message):
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(content))
    with pytest.raises(DataError, match=message):
        synthesis.load_frontier(path)


def test_load_frontier_rejects_unreadable_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        synthesis.load_frontier(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{E: 1")
    with pytest.raises(DataError, match="not valid JSON"):
        synthesis.load_frontier(tmp_path / "bad.json")
