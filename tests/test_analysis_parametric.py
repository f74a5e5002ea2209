import json

import jax.numpy as jnp
import numpy as np
import pytest

from analysis_helpers import EPOCH_TARGET, chinchilla_surface, epoch_fit, epoch_table
from analysis.load import from_arrays
from analysis.parametric import HOFFMANN_GRID, fit_parametric, fit_vpnls, grid_points
from analysis.result import FitResult
from scaling.errors import DataError


def test_hoffmann_grid_has_4500_starts_in_the_published_ranges():
    starts = grid_points(HOFFMANN_GRID)
    assert starts.shape == (4500, 5)
    np.testing.assert_allclose(starts.min(0), [0, 0, -1, 0, 0])
    np.testing.assert_allclose(starts.max(0), [25, 25, 1, 2, 2])


def test_epoch_refit_reproduces_besiroglu_et_al():
    fit = epoch_fit()
    p = fit.params
    for name in ("E", "alpha", "beta"):
        assert p[name] == pytest.approx(EPOCH_TARGET[name], rel=0.01), name
    assert p["A"] == pytest.approx(EPOCH_TARGET["A"], rel=0.05)
    assert p["B"] == pytest.approx(EPOCH_TARGET["B"], rel=0.10)
    assert fit.objective == pytest.approx(EPOCH_TARGET["objective"], rel=0.01)
    assert fit.derived["a"] == pytest.approx(0.513, abs=0.005)
    assert fit.spec.n_points == 240 and len(fit.spec.dropped) == 5
    assert fit.details["starts_reaching_best"] > 10  # not a lucky single start
    assert jnp.zeros(1).dtype == jnp.float32  # the float64 fit did not leak


def test_epoch_fit_serialises_its_full_specification():
    fit = epoch_fit()
    d = json.loads(fit.to_json())
    spec = d["spec"]
    assert spec["method"] == "parametric" and spec["loss"] == "huber_log" and spec["delta"] == 1e-3
    assert spec["init_grid"]["name"] == "hoffmann" and spec["init_grid"]["n_starts"] == 4500
    assert spec["n_convention"] == "total" and spec["d_derived"] is True
    assert spec["data_hash"] == epoch_table().data_hash and len(spec["dropped"]) == 5
    back = FitResult.from_dict(d)
    assert back.params == fit.params and back.spec == fit.spec


@pytest.mark.parametrize("alpha,beta", [(0.34, 0.34), (0.4, 0.2)])
def test_approach3_and_vpnls_recover_exponents_of_noise_free_surfaces(alpha, beta):
    table, truth = chinchilla_surface(alpha=alpha, beta=beta)
    for fit in (fit_parametric(table), fit_vpnls(table)):
        for name in ("E", "A", "B", "alpha", "beta"):
            assert fit.params[name] == pytest.approx(truth[name], rel=1e-4), (fit.spec.method, name)


def test_approach3_and_vpnls_recover_exponents_under_noise():
    table, truth = chinchilla_surface(alpha=0.34, beta=0.28, noise=0.005, seed=3)
    p3, vp = fit_parametric(table).params, fit_vpnls(table).params
    for p in (p3, vp):
        assert p["alpha"] == pytest.approx(truth["alpha"], abs=0.04)
        assert p["beta"] == pytest.approx(truth["beta"], abs=0.04)
        assert p["beta"] / (p["alpha"] + p["beta"]) == pytest.approx(0.4516, abs=0.03)


def test_too_few_points_is_an_error_saying_how_many():
    N = np.array([1e8, 2e8, 4e8, 8e8])
    table = from_arrays(N, 20 * N, [3.0, 2.9, 2.8, 2.7])
    with pytest.raises(DataError, match="at least 6 points, got 4"):
        fit_parametric(table)
