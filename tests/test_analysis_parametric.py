import functools
import json

import jax.numpy as jnp
import numpy as np
import pytest

from analysis_helpers import EPOCH_TARGET, chinchilla_surface, epoch_fit, epoch_table
from analysis import frontier
from analysis.loading import from_arrays
from analysis.parametric import (HOFFMANN_GRID, fit_parametric, fit_vpnls, grid_points, refit_parametric,
                                 refit_vpnls)
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


# --- loss and tie options ---------------------------------------------------------------------------

TRUTH = {"E": 1.8, "A": 400.0, "B": 1500.0, "alpha": 0.34, "beta": 0.28}
OUTLIERS = {4: 0.8, 13: 0.5, 27: -0.4}  # loss units, 200-400x the noise


@functools.lru_cache(maxsize=None)
def grid_table(alpha=0.34, beta=0.28, outliers=False):
    """5 x 7 grid of N and D on L = E + A/N^alpha + B/D^beta, multiplicative noise of sd 0.05%. 35 points,
    as `chinchilla_surface`, so the untied fits reuse that test's compiled solvers."""
    N = np.repeat(np.logspace(7.5, 9.5, 5), 7)
    D = np.tile(np.logspace(9, 11.5, 7), 5)
    p = {**TRUTH, "alpha": alpha, "beta": beta}
    loss = frontier.chinchilla_loss(p, N, D) * np.exp(0.0005 * np.random.default_rng(0).standard_normal(len(N)))
    if outliers:
        loss[list(OUTLIERS)] += list(OUTLIERS.values())
    return from_arrays(N, D, loss)


@functools.lru_cache(maxsize=None)
def option_fit(method, table_key=(), **options):
    fitter = fit_parametric if method == "parametric" else fit_vpnls
    return fitter(grid_table(*table_key), **options)


def test_vpnls_huber_resists_outliers_that_pull_least_squares():
    mse = option_fit("vpnls", (0.34, 0.28, True))
    huber = option_fit("vpnls", (0.34, 0.28, True), loss="huber", delta=0.01)
    err_mse = abs(mse.params["alpha"] - TRUTH["alpha"])
    err_huber = abs(huber.params["alpha"] - TRUTH["alpha"])
    assert err_huber < 0.005 and abs(huber.params["beta"] - TRUTH["beta"]) < 0.005
    assert err_huber < err_mse / 3, (err_huber, err_mse)
    assert huber.params["E"] == pytest.approx(TRUTH["E"], abs=0.02)
    assert (huber.spec.loss, huber.spec.delta, huber.spec.options["loss"]) == ("huber_linear", 0.01, "huber")
    assert (mse.spec.loss, mse.spec.delta, mse.spec.options["loss"]) == ("mse_linear", None, "mse")
    # The reference package's default delta, 1.0 loss units, sits above every residual here: least squares.
    default = fit_vpnls(grid_table(0.34, 0.28, True), loss="huber")
    assert default.spec.delta == 1.0
    assert default.params["alpha"] == pytest.approx(mse.params["alpha"], abs=1e-3)


@pytest.mark.parametrize("method", ["parametric", "vpnls"])
def test_tied_fits_recover_a_shared_exponent(method):
    fit = option_fit(method, (0.3, 0.3), tie="alpha=beta")
    assert fit.params["alpha"] == pytest.approx(0.3, abs=0.005)
    assert fit.params["beta"] == fit.params["alpha"]
    assert fit.derived["a"] == 0.5 and fit.spec.options["tie"] == "alpha=beta"
    if method == "parametric":
        assert fit.details["n_starts"] == 900  # Hoffmann's grid less its beta axis
        assert set(fit.details["best_start"]) == {"a", "b", "e", "alpha"}
        assert all(m["beta"] == m["alpha"] for m in fit.details["local_minima"])


@pytest.mark.parametrize("method", ["parametric", "vpnls"])
def test_tying_exponents_that_differ_costs_objective(method):
    tied, free = option_fit(method, tie="alpha=beta"), option_fit(method)
    assert tied.objective > 2 * free.objective
    assert free.params["alpha"] == pytest.approx(TRUTH["alpha"], abs=0.01)
    assert free.spec.options["tie"] is None


def test_refits_honour_loss_and_tie_from_the_saved_spec():
    """Row 0 weighs every point once, so it must land on the fit itself; the fit goes through JSON first,
    as a bootstrap of a saved fit would."""
    w_RxN = np.stack([np.ones(35), np.random.default_rng(1).multinomial(35, np.full(35, 1 / 35))]).astype(float)
    table = grid_table(0.34, 0.28, True)
    huber = FitResult.from_dict(json.loads(option_fit("vpnls", (0.34, 0.28, True), loss="huber",
                                                      delta=0.01).to_json()))
    out = refit_vpnls(table, w_RxN, huber)
    assert out["alpha"][0] == pytest.approx(huber.params["alpha"], abs=1e-6)
    assert out["objective"][0] == pytest.approx(huber.objective, rel=1e-6)
    assert abs(out["alpha"][1] - TRUTH["alpha"]) < 0.01  # a least-squares refit would be pulled off
    for method, refit in (("vpnls", refit_vpnls), ("parametric", refit_parametric)):
        tied = option_fit(method, (0.3, 0.3), tie="alpha=beta")
        tied = FitResult.from_dict(json.loads(tied.to_json()))
        out = refit(grid_table(0.3, 0.3), w_RxN, tied)
        np.testing.assert_array_equal(out["beta"], out["alpha"])
        assert out["alpha"][0] == pytest.approx(tied.params["alpha"], abs=1e-6), method
        assert np.all(np.isfinite(out["objective"]))


@pytest.mark.parametrize("call,match", [
    (lambda t: fit_vpnls(t, loss="l1"), "unknown VPNLS loss 'l1'; use 'mse' or 'huber'"),
    (lambda t: fit_vpnls(t, loss="huber", delta=0.0), "delta must be a finite number > 0"),
    (lambda t: fit_vpnls(t, loss="huber", delta=-1), "delta must be a finite number > 0"),
    (lambda t: fit_vpnls(t, loss="huber", delta=float("nan")), "delta must be a finite number > 0"),
    (lambda t: fit_vpnls(t, delta=0.1), "needs loss='huber'"),
    (lambda t: fit_vpnls(t, tie="alpha=2beta"), "unknown tie 'alpha=2beta'; .* 'alpha=beta'"),
    (lambda t: fit_parametric(t, tie="beta=alpha"), "unknown tie 'beta=alpha'; .* 'alpha=beta'"),
])
def test_bad_loss_delta_or_tie_is_a_one_line_data_error(call, match):
    with pytest.raises(DataError, match=match) as err:
        call(grid_table())
    assert "\n" not in str(err.value)
