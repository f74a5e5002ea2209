import json

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from analysis.trends import loss_frontier
from analysis.trends.loss_frontier import EPOCH_CHINCHILLA, LossFrontier
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
    assert EPOCH_CHINCHILLA.in_frontier_units and EPOCH_CHINCHILLA.fit_range["C"][1] == pytest.approx(1.3e22)


def test_epoch_draws_match_the_published_intervals_and_keep_the_data_pinned():
    draws = EPOCH_CHINCHILLA.draws
    for name, (lo, hi) in loss_frontier.EPOCH_CI.items():
        q_lo, q_hi = np.percentile(draws[name], [2.5, 97.5])
        assert q_lo == pytest.approx(lo, abs=0.006) and q_hi == pytest.approx(hi, abs=0.006), name
    # Independent alpha and beta still give a's spread close to Epoch's bootstrap SD of 0.020.
    assert 0.015 < np.std(draws["beta"] / (draws["alpha"] + draws["beta"])) < 0.025
    # Every draw predicts the headline's loss at the middle of the Chinchilla data ...
    n0, d0 = loss_frontier.EPOCH_PIVOT
    drawn = EPOCH_CHINCHILLA.drawn(len(draws["E"]))
    np.testing.assert_allclose(drawn.loss(n0, d0).ravel(), EPOCH_CHINCHILLA.loss(n0, d0), rtol=1e-12)
    # ... and spreads away from it: at 1e26 FLOPs the draws disagree by more than E's own spread.
    spread = np.ptp(np.percentile(drawn.loss_opt(1e26), [2.5, 97.5]))
    assert spread > 0.05


def test_drawn_without_draws_is_the_point_frontier():
    plain = LossFrontier(1.7, 400.0, 400.0, 0.3, 0.3)
    assert plain.drawn(10) is plain and plain.as_dict()["E_ci"] is None


def test_load_frontier_accepts_any_json_with_the_five_numbers(tmp_path):
    path = tmp_path / "fit.json"
    path.write_text(json.dumps({"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28, "approach": 3,
                                "bootstrap": {"alpha": [0.3, 0.4]}}))
    frontier = loss_frontier.load_frontier(path)
    assert frontier.a == pytest.approx(0.28 / 0.62) and str(path) in frontier.source


def test_load_frontier_reads_a_scaling_fit_result(tmp_path):
    from analysis.fitting import fit
    from analysis_helpers import chinchilla_surface

    table, truth = chinchilla_surface(budgets=(1e18, 1e19, 1e20), sizes_per_budget=4)
    path = tmp_path / "fit.json"
    path.write_text(fit(table, "parametric").to_json())  # what `scaling fit --out` writes
    frontier = loss_frontier.load_frontier(path)
    assert frontier.alpha == pytest.approx(truth["alpha"], rel=1e-3)
    assert frontier.E == pytest.approx(truth["E"], rel=1e-3)
    path.write_text(fit(table, "isoflop").to_json())
    with pytest.raises(DataError, match="Chinchilla-form fit"):
        loss_frontier.load_frontier(path)


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
        loss_frontier.load_frontier(path)


def test_load_frontier_rejects_unreadable_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        loss_frontier.load_frontier(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{E: 1")
    with pytest.raises(DataError, match="not valid JSON"):
        loss_frontier.load_frontier(tmp_path / "bad.json")


def test_load_frontier_carries_range_units_and_bootstrap_draws(tmp_path):
    from analysis.fitting import fit
    from analysis_helpers import chinchilla_surface

    table, _ = chinchilla_surface(budgets=(1e18, 1e19, 1e20), sizes_per_budget=4)
    from analysis.resampling import bootstrap

    result = bootstrap(table, fit(table, "parametric"), n=12)
    path = tmp_path / "fit.json"
    path.write_text(result.to_json())
    frontier = loss_frontier.load_frontier(path)
    assert frontier.fit_range["C"] == pytest.approx(result.fit_range["C"])
    assert not frontier.in_frontier_units and "other units" in frontier.units
    assert frontier.draws is not None and len(frontier.draws["alpha"]) >= 10
    assert "bootstrap draws" in frontier.draws_note
    # A plain JSON may carry a fit_range; a malformed one is refused.
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"E": 1.7, "A": 400, "B": 400, "alpha": 0.3, "beta": 0.3,
                                 "fit_range": {"N": [1, 2], "D": [1, 2], "C": [1e18, 1e20]}}))
    assert loss_frontier.load_frontier(plain).fit_range["C"] == [1e18, 1e20]
    plain.write_text(json.dumps({"E": 1.7, "A": 400, "B": 400, "alpha": 0.3, "beta": 0.3, "fit_range": [1, 2]}))
    with pytest.raises(DataError, match="fit_range"):
        loss_frontier.load_frontier(plain)
