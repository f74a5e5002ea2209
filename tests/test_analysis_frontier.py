import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from analysis import frontier

CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


@pytest.mark.parametrize("C", [1e18, 1e21, 1e24])
def test_chinchilla_optimum_minimises_loss_on_the_budget(C):
    at = frontier.optimum_from_params("chinchilla", CHINCHILLA, C)
    res = minimize_scalar(lambda logn: frontier.chinchilla_loss(CHINCHILLA, np.exp(logn), C / (6 * np.exp(logn))),
                          bounds=(10, 35), method="bounded", options={"xatol": 1e-10})
    assert at["N_opt"] == pytest.approx(np.exp(res.x), rel=1e-5)
    assert at["N_opt"] * at["D_opt"] * 6 == pytest.approx(C)
    assert at["L_opt"] == pytest.approx(res.fun, rel=1e-10)
    assert at["tokens_per_param"] == pytest.approx(at["D_opt"] / at["N_opt"])


def test_exponents_and_G_follow_the_published_formulas():
    a, b = frontier.chinchilla_exponents(0.34, 0.28)
    assert a == pytest.approx(0.28 / 0.62) and a + b == pytest.approx(1.0)
    G = frontier.chinchilla_G(406.4, 410.7, 0.34, 0.28)
    at = frontier.optimum_from_params("chinchilla", CHINCHILLA, 6e20)
    assert at["N_opt"] == pytest.approx(G * 1e20 ** a)


def test_closed_form_reducible_loss_is_the_loss_at_the_optimum_less_E():
    C = np.array([1e18, 1e22, 1e26])
    n, d = frontier.chinchilla_n_opt(CHINCHILLA, C), frontier.chinchilla_d_opt(CHINCHILLA, C)
    np.testing.assert_allclose(frontier.chinchilla_reducible_opt(CHINCHILLA, C),
                               frontier.chinchilla_loss(CHINCHILLA, n, d) - CHINCHILLA["E"], rtol=1e-12)
    gamma = frontier.chinchilla_loss_exponent(0.34, 0.28)
    ratio = frontier.chinchilla_reducible_opt(CHINCHILLA, 2e20) / frontier.chinchilla_reducible_opt(CHINCHILLA, 1e20)
    assert ratio == pytest.approx(2 ** -gamma) and gamma == pytest.approx(0.34 * 0.28 / 0.62)


def test_kaplan_nd_optimum_minimises_loss_on_the_budget():
    p = {"N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.076, "alpha_D": 0.095}
    C = 1e21
    at = frontier.optimum_from_params("kaplan_nd", p, C)
    res = minimize_scalar(lambda logn: frontier.kaplan_nd_loss(p, np.exp(logn), C / (6 * np.exp(logn))),
                          bounds=(10, 35), method="bounded", options={"xatol": 1e-10})
    assert at["N_opt"] == pytest.approx(np.exp(res.x), rel=1e-5)


def test_power_law_frontier_stays_on_budget():
    at = frontier.optimum_from_params("power_law", {"k_N": 0.1, "a": 0.5, "k_D": 1.0, "b": 0.5}, 1e20)
    assert at["N_opt"] == pytest.approx(1e9) and at["D_opt"] * at["N_opt"] * 6 == pytest.approx(1e20)
    assert np.isnan(at["L_opt"])
