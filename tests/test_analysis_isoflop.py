import numpy as np
import pytest

from analysis_helpers import CHINCHILLA_BUDGETS, chinchilla_surface, epoch_table
from analysis.frontier import optimum_from_params
from analysis.isoflop import fit_isoflop, nominal_budgets
from analysis.loading import from_arrays
from scaling.errors import DataError


def test_epoch_points_give_a_close_to_one_half():
    fit = fit_isoflop(epoch_table(), budgets=CHINCHILLA_BUDGETS, drop_highest=5)
    assert fit.params["a"] == pytest.approx(0.50, abs=0.03)
    assert len(fit.details["per_budget"]) == 9
    assert fit.spec.options["parabola"] == "loss"  # the variant is part of the result


def test_parabola_variants_agree_on_epoch_points():
    table = epoch_table()
    a_loss = fit_isoflop(table, budgets=CHINCHILLA_BUDGETS, parabola="loss").params["a"]
    a_log = fit_isoflop(table, budgets=CHINCHILLA_BUDGETS, parabola="log_loss").params["a"]
    assert a_loss == pytest.approx(a_log, abs=0.02)


def test_known_bias_on_asymmetric_surfaces():
    """Approach 2 is exact when alpha = beta; when they differ the isoFLOP curve is skewed in log N
    and every parabola vertex misses N_opt by the same factor (the intercept is biased)."""
    errors = {}
    for alpha, beta in [(0.34, 0.34), (0.4, 0.2)]:
        table, truth = chinchilla_surface(alpha=alpha, beta=beta)
        fit = fit_isoflop(table)
        C = np.array([r["C"] for r in fit.details["per_budget"]])
        found = np.array([r["N_opt"] for r in fit.details["per_budget"]])
        errors[(alpha, beta)] = found / optimum_from_params("chinchilla", truth, C)["N_opt"] - 1
        assert fit.params["a"] == pytest.approx(beta / (alpha + beta), abs=1e-3)
    assert np.abs(errors[(0.34, 0.34)]).max() < 1e-3
    assert np.abs(errors[(0.4, 0.2)]).min() > 0.10


def test_a_parabola_from_two_sizes_is_refused():
    N = np.array([1e8, 2e8, 1e8, 2e8, 4e8, 1e8, 2e8])
    C = np.array([1e18, 1e18, 1e19, 1e19, 1e19, 1e20, 1e20])
    loss = np.array([3.0, 3.1, 2.8, 2.7, 2.75, 2.6, 2.5])
    with pytest.raises(DataError, match="needs at least 2 budgets with 3 or more sizes"):
        fit_isoflop(from_arrays(N, C / (6 * N), loss, C=C, budget=C))


def test_budgets_are_snapped_to_nominal_values():
    C = np.array([0.9e19, 1.1e19, 2.8e19, 3.3e19, 1.05e20])
    table = from_arrays(np.full(5, 1e8), C / 6e8, np.full(5, 3.0), C=C)
    given, _ = nominal_budgets(table, [1e19, 3e19, 1e20])
    np.testing.assert_allclose(given, [1e19, 1e19, 3e19, 3e19, 1e20])
    auto, how = nominal_budgets(table)  # clusters at their geometric means, never rounded values
    np.testing.assert_allclose(auto, [np.sqrt(0.99e38)] * 2 + [np.sqrt(2.8e19 * 3.3e19)] * 2 + [1.05e20])
    assert "clusters" in how
    labelled = from_arrays(np.full(5, 1e8), C / 6e8, np.full(5, 3.0), C=C, budget=[5e18] * 5)
    assert nominal_budgets(labelled)[0].tolist() == [5e18] * 5
