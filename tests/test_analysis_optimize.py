import jax
import jax.numpy as jnp
import numpy as np
import pytest

from analysis.optimize import CONVERGED, DIVERGED, STALLED, SolverOptions, autodiff_fgh, huber_fgh, minimize, x64
from analysis.parametric import chinchilla_fgh, chinchilla_residual


def _weighted_square(x_P, w_N, data):
    return jnp.sum(w_N * (x_P[0] - data["y"]) ** 2)


def _rosenbrock(x_P, w_N, data):
    return (1.0 - x_P[0]) ** 2 + 100.0 * (x_P[1] - x_P[0] ** 2) ** 2


def _runaway(x_P, w_N, data):
    return jnp.exp(-x_P[0])  # infimum at x -> +inf


SQUARE = autodiff_fgh(_weighted_square)
ROSENBROCK = autodiff_fgh(_rosenbrock)
RUNAWAY = autodiff_fgh(_runaway)


def test_x64_is_scoped_to_the_fit():
    with x64():
        assert jnp.zeros(1).dtype == jnp.float64
        minimize(SQUARE, np.zeros((2, 1)), np.ones((1, 3)), {"y": np.array([1.0, 2.0, 3.0])})
    assert jnp.zeros(1).dtype == jnp.float32
    assert not jax.config.jax_enable_x64


def test_fit_leaves_process_in_float32():
    from analysis.kaplan import fit_kaplan
    from analysis.loading import from_arrays
    N = np.logspace(6, 9, 8)
    fit_kaplan(from_arrays(N, 20 * N, 3.0 * (1e6 / N) ** 0.07), form="n")
    assert jnp.zeros(1).dtype == jnp.float32
    assert jnp.asarray(1.0).dtype == jnp.float32


def test_every_task_gets_its_own_answer_when_tasks_outnumber_lanes():
    # 40 tasks through 8 lanes: each replicate's weights give a different weighted mean.
    rng = np.random.default_rng(0)
    y = rng.normal(size=12)
    w = rng.integers(0, 4, size=(40, 12)).astype(float)
    w[:, 0] += 1  # no all-zero rows
    with x64():
        sol = minimize(SQUARE, np.full((40, 1), 5.0), w, {"y": y}, task_replicate_T=np.arange(40),
                       options=SolverOptions(lanes=8))
    np.testing.assert_allclose(sol.x_TxP[:, 0], w @ y / w.sum(1), rtol=1e-6)
    assert np.all(np.isin(sol.status_T, (CONVERGED, STALLED)))


def test_newton_solves_rosenbrock_from_far_starts():
    starts = np.array([[-1.5, 2.0], [2.0, -1.0], [0.0, 0.0], [-3.0, -3.0]])
    with x64():
        sol = minimize(ROSENBROCK, starts, np.ones((1, 1)), {}, options=SolverOptions(max_iter=500))
    np.testing.assert_allclose(sol.x_TxP, np.ones_like(starts), atol=1e-6)


def test_a_start_running_off_to_infinity_is_reported_diverged():
    with x64():
        sol = minimize(RUNAWAY, np.zeros((1, 1)), np.ones((1, 1)), {}, options=SolverOptions(bound=50.0))
    assert sol.status_T[0] == DIVERGED


def _huber_sum(r, w, delta):
    ar = np.abs(r)
    return float(np.sum(w * np.where(ar <= delta, 0.5 * r * r, delta * (ar - 0.5 * delta))))


def test_analytic_chinchilla_derivatives_match_autodiff():
    rng = np.random.default_rng(1)
    n = 40
    data = {"log_n": np.log(rng.uniform(1e7, 1e10, n)), "log_d": np.log(rng.uniform(1e9, 1e12, n)),
            "log_loss": np.log(rng.uniform(2.0, 3.5, n)), "delta": 0.05}  # wide delta: both Huber pieces
    x = np.column_stack([rng.uniform(3, 8, 6), rng.uniform(3, 8, 6), rng.uniform(0, 1, 6),
                         rng.uniform(0.2, 0.5, 6), rng.uniform(0.2, 0.5, 6)])
    w = rng.integers(0, 3, size=(6, n)).astype(float)
    with x64():
        jdata = {k: jnp.asarray(v) for k, v in data.items()}
        F, g, H = chinchilla_fgh(jnp.asarray(x), jnp.asarray(w), jdata)
        Fa, ga, Ha = jax.jit(huber_fgh(chinchilla_residual))(jnp.asarray(x), jnp.asarray(w), jdata)
        r0 = np.asarray(chinchilla_residual(jnp.asarray(x[0]), jdata))
        objective = lambda x_: jnp.sum(jnp.asarray(w[0]) * jnp.where(
            jnp.abs(chinchilla_residual(x_, jdata)) <= 0.05, 0.5 * chinchilla_residual(x_, jdata) ** 2,
            0.05 * (jnp.abs(chinchilla_residual(x_, jdata)) - 0.025)))
        g_exact = np.asarray(jax.grad(objective)(jnp.asarray(x[0])))
    assert 0 < (np.abs(r0) <= 0.05).sum() < n  # both pieces are exercised
    assert float(F[0]) == pytest.approx(_huber_sum(r0, w[0], 0.05), rel=1e-12)
    np.testing.assert_allclose(g[0], g_exact, rtol=1e-9, atol=1e-12)  # gradient exact, not approximated
    np.testing.assert_allclose(F, Fa, rtol=1e-12)
    np.testing.assert_allclose(g, ga, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(H, Ha, rtol=1e-9, atol=1e-10)


def test_huber_newton_matrix_is_the_exact_hessian_when_all_residuals_are_inside_delta():
    rng = np.random.default_rng(2)
    n = 30
    data = {"log_n": np.log(rng.uniform(1e7, 1e10, n)), "log_d": np.log(rng.uniform(1e9, 1e12, n)),
            "log_loss": np.log(rng.uniform(2.0, 3.5, n)), "delta": 1e3}
    x = np.array([[5.0, 6.0, 0.5, 0.3, 0.3]])
    with x64():
        jdata = {k: jnp.asarray(v) for k, v in data.items()}
        _, _, H = chinchilla_fgh(jnp.asarray(x), jnp.ones((1, n)), jdata)
        exact = jax.jit(jax.hessian(lambda x_: 0.5 * jnp.sum(chinchilla_residual(x_, jdata) ** 2)))(jnp.asarray(x[0]))
    np.testing.assert_allclose(H[0], exact, rtol=1e-9)
