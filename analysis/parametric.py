"""Approach 3 and VPNLS: L(N, D) = E + A/N^alpha + B/D^beta, and the quantities derived from it.

Approach 3 follows Besiroglu et al. (2024): parameters (a, b, e, alpha, beta) with A = e^a, B = e^b,
E = e^e; prediction log L = LSE(a - alpha log N, b - beta log D, e); objective = sum of
Huber_delta(prediction - log L) (delta = 1e-3); minimised from every point of Hoffmann's grid of starts
at once (analysis.optimize: batched damped Newton, float64).

VPNLS (variable projection with non-negative least squares): for fixed (alpha, beta) the model is
linear in (E, A, B), so they are solved exactly by NNLS on the losses; only (alpha, beta) is searched,
over a grid and then by Newton from the best grid points. Two nonlinear parameters instead of five.
`loss="huber"` makes the VPNLS objective Huber on the residuals of L (not log L), with (E, A, B) found by
iteratively reweighted NNLS, as the reference VPNLS package does (Open-Athena/vpnls).

Both methods take `tie="alpha=beta"`: one exponent for both terms (approach 3 then searches (a, b, e,
alpha), VPNLS alpha alone), so a = b = 1/2. The tie is recorded in `spec.options` and refits honour it.
"""

from __future__ import annotations

import itertools
import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from analysis import frontier
from analysis.loading import RunTable, drop_highest_loss
from analysis.optimize import CONVERGED, MAX_ITER, STALLED, SolverOptions, autodiff_fgh, minimize, x64
from analysis.result import FitResult, FitSpec
from scaling.errors import DataError

PARAMS = ("E", "A", "B", "alpha", "beta")

# Hoffmann et al. (2022) grid, as used by Besiroglu et al. (2024): 5 x 5 x 5 x 6 x 6 = 4,500 starts.
HOFFMANN_GRID = {
    "name": "hoffmann",
    "alpha": [0.0, 0.5, 1.0, 1.5, 2.0],
    "beta": [0.0, 0.5, 1.0, 1.5, 2.0],
    "e": [-1.0, -0.5, 0.0, 0.5, 1.0],
    "a": [0.0, 5.0, 10.0, 15.0, 20.0, 25.0],
    "b": [0.0, 5.0, 10.0, 15.0, 20.0, 25.0],
}

# (alpha, beta) grid for VPNLS: 0.02..2.0 in steps of 0.02 each.
VPNLS_GRID = {"name": "vpnls", "alpha": [0.02, 2.0, 100], "beta": [0.02, 2.0, 100]}

# Bootstrap refits start from this many of the full fit's best distinct local minima.
BOOTSTRAP_STARTS = 4

TIE = "alpha=beta"  # the one tie on offer: a shared exponent for N and D
VPNLS_LOSSES = ("mse", "huber")
# Huber VPNLS follows the reference package (Open-Athena/vpnls, `huber()` and its grid solver): residuals
# L - prediction in loss units, unscaled; delta 1.0 by default; (E, A, B) by NNLS, then 10 NNLS steps
# reweighted by min(1, delta/|r|).
VPNLS_HUBER_DELTA = 1.0
IRLS_STEPS = 10


def grid_points(grid: dict) -> np.ndarray:
    """Starts as rows (a, b, e, alpha, beta), iterated in Epoch's order (alpha, beta, e, a, b)."""
    rows = [(a, b, e, al, be) for al, be, e, a, b in
            itertools.product(grid["alpha"], grid["beta"], grid["e"], grid["a"], grid["b"])]
    return np.asarray(rows, float)


def chinchilla_fgh(x_WxP, w_WxN, data):
    """Weighted sum of Huber(LSE prediction - log L) per lane, its gradient and Newton matrix.

    With u = (a - alpha lN, b - beta lD, e), p = softmax(u), r = LSE(u) - log L:
    dr = sum_k p_k du_k and d2r = sum_k p_k du_k du_k^T - dr dr^T, and the Newton matrix is
    H = sum w [h2(r) dr dr^T + h'(r) d2r], the same as `analysis.optimize.huber_fgh` builds by autodiff.
    Written out because this is the inner loop of every fit: 22 weighted sums over points per lane.
    """
    lN, lD, lL, delta = data["log_n"], data["log_d"], data["log_loss"], data["delta"]
    a, b, e, alpha, beta = (x_WxP[:, k:k + 1] for k in range(5))
    u1 = a - alpha * lN
    u2 = b - beta * lD
    m = jnp.maximum(jnp.maximum(u1, u2), e)
    e1, e2, e3 = jnp.exp(u1 - m), jnp.exp(u2 - m), jnp.exp(e - m)
    z = e1 + e2 + e3
    r = m + jnp.log(z) - lL
    iz = 1.0 / z
    p1, p2, p3 = e1 * iz, e2 * iz, e3 * iz
    ar = jnp.abs(r)
    inside = ar <= delta
    F = jnp.sum(w_WxN * jnp.where(inside, 0.5 * r * r, delta * (ar - 0.5 * delta)), axis=1)
    psi = w_WxN * jnp.clip(r, -delta, delta)  # w h'(r)
    # dr dr^T coefficient: w (curvature - h'(r)), curvature = 1 inside, secant h'(r)/r outside.
    c = jnp.where(inside, w_WxN, w_WxN * delta / jnp.maximum(ar, delta)) - psi
    sm = lambda t: jnp.sum(t, axis=1)
    c11, c22, c12 = c * p1 * p1, c * p2 * p2, c * p1 * p2
    c13, c23 = c * p1 * p3, c * p2 * p3
    q1, q2, q3 = psi * p1, psi * p2, psi * p3
    g_a, g_b, g_e = sm(q1), sm(q2), sm(q3)
    g = jnp.stack([g_a, g_b, g_e, -sm(q1 * lN), -sm(q2 * lD)], -1)
    h_aa, h_bb, h_ee = sm(c11) + g_a, sm(c22) + g_b, sm(c * p3 * p3) + g_e
    h_ab, h_ae, h_be = sm(c12), sm(c13), sm(c23)
    k1, k2 = c11 + q1, c22 + q2
    h_a_al, h_b_be = -sm(k1 * lN), -sm(k2 * lD)
    h_al_al, h_be_be = sm(k1 * lN * lN), sm(k2 * lD * lD)
    h_a_be, h_b_al, h_al_be = -sm(c12 * lD), -sm(c12 * lN), sm(c12 * lN * lD)
    h_e_al, h_e_be = -sm(c13 * lN), -sm(c23 * lD)
    H = jnp.stack([
        jnp.stack([h_aa, h_ab, h_ae, h_a_al, h_a_be], -1),
        jnp.stack([h_ab, h_bb, h_be, h_b_al, h_b_be], -1),
        jnp.stack([h_ae, h_be, h_ee, h_e_al, h_e_be], -1),
        jnp.stack([h_a_al, h_b_al, h_e_al, h_al_al, h_al_be], -1),
        jnp.stack([h_a_be, h_b_be, h_e_be, h_al_be, h_be_be], -1)], axis=-2)
    return F, g, H


def chinchilla_residual(x_P, data):
    """Log-space residuals of one parameter vector (the autodiff reference for `chinchilla_fgh`)."""
    a, b, e, alpha, beta = x_P
    pred = jax.nn.logsumexp(jnp.stack([a - alpha * data["log_n"], b - beta * data["log_d"],
                                       jnp.broadcast_to(e, data["log_n"].shape)]), axis=0)
    return pred - data["log_loss"]


# Tied raw parameters (a, b, e, alpha) -> (a, b, e, alpha, beta = alpha): x5 = M x4.
_TIE_5x4 = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1]], float)


def chinchilla_tied_fgh(x_WxP, w_WxN, data):
    """`chinchilla_fgh` with beta = alpha: the map to five parameters is linear, so the chain rule is
    exact: g4 = M^T g5, H4 = M^T H5 M (the tied alpha collects both exponents' terms)."""
    M = jnp.asarray(_TIE_5x4, x_WxP.dtype)
    F_W, g_Wx5, H_Wx5x5 = chinchilla_fgh(x_WxP @ M.T, w_WxN, data)
    return F_W, g_Wx5 @ M, jnp.einsum("pi,wpq,qj->wij", M, H_Wx5x5, M)


def tied_starts(starts_Tx5: np.ndarray) -> np.ndarray:
    """Starts for the tied fit: each distinct (a, b, e, alpha) of a 5-parameter grid once, in grid order
    (dropping beta from Hoffmann's grid leaves 900 of its 4,500 starts)."""
    x_Tx4 = starts_Tx5[:, :4]
    _, first = np.unique(x_Tx4, axis=0, return_index=True)
    return x_Tx4[np.sort(first)]


def fit_parametric(table: RunTable, delta: float = 1e-3, grid: dict | None = None, drop_highest: int = 0,
                   solver: SolverOptions | None = None, tie: str | None = None) -> FitResult:
    """Approach 3: Huber on log-loss residuals from every start of `grid` (Hoffmann's by default).
    `tie="alpha=beta"` fits one exponent for both terms, from the grid's distinct (a, b, e, alpha)."""
    grid = grid or HOFFMANN_GRID
    solver = solver or SolverOptions()
    if not delta > 0:
        raise DataError(f"Huber delta must be > 0, got {delta}")
    _check_tie(tie)
    fit_table, dropped = drop_highest_loss(table, drop_highest)
    n_params = 4 if tie else 5
    _need_points(fit_table, n_params + 1, f"approach 3 ({n_params} parameters)")
    starts = tied_starts(grid_points(grid)) if tie else grid_points(grid)
    data = _log_data(fit_table, delta)
    sol = minimize(_a3_fgh(tie), starts, np.ones((1, len(fit_table))), data, options=solver)
    best, minima = _best_and_minima(sol.x_TxP, sol.f_T, sol.status_T)
    params = _to_params(sol.x_TxP[best])
    n_at_best = int(np.sum(sol.f_T <= sol.f_T[best] * (1 + 1e-6)))
    details = {
        "n_starts": len(starts), "status": sol.counts(), "starts_reaching_best": n_at_best,
        "best_start": dict(zip(_raw_names(tie), starts[best].tolist())),
        "best_iterations": int(sol.n_iter_T[best]), "local_minima": minima, "solver": solver.to_dict(),
    }
    spec = _spec(fit_table, table, "parametric", "huber_log", delta, {**grid, "n_starts": len(starts)}, dropped,
                 {"drop_highest": drop_highest, "tie": tie})
    return FitResult(spec=spec, params=params, objective=float(sol.f_T[best]),
                     derived=_derived(params), details=details, notes=table.notes)


def refit_parametric(fit_table: RunTable, weights_RxN: np.ndarray, result: FitResult,
                     solver: SolverOptions | None = None) -> dict[str, np.ndarray]:
    """Refit approach 3 once per weight row (bootstrap replicate), each from the full fit's best few
    distinct local minima: every (replicate, start) pair is one task of the batched solver. A tied fit
    is refitted tied."""
    solver = solver or SolverOptions()
    tie = result.spec.options.get("tie")
    _check_tie(tie)
    minima = result.details.get("local_minima") or [result.params]
    starts = np.asarray([_to_raw(m, tie) for m in minima[:BOOTSTRAP_STARTS]])
    R, S = len(weights_RxN), len(starts)
    data = _log_data(fit_table, result.spec.delta)
    sol = minimize(_a3_fgh(tie), np.tile(starts, (R, 1)), weights_RxN, data,
                   task_replicate_T=np.repeat(np.arange(R), S), options=solver)
    f_RxS = np.where(np.isin(sol.status_T, (CONVERGED, STALLED, MAX_ITER)), sol.f_T, np.inf).reshape(R, S)
    pick = np.argmin(f_RxS, axis=1)
    x_RxP = sol.x_TxP.reshape(R, S, -1)[np.arange(R), pick]
    out = _to_params(x_RxP)
    out["objective"] = f_RxS[np.arange(R), pick]
    return out


def fit_vpnls(table: RunTable, grid: dict | None = None, drop_highest: int = 0, polish: int = 8,
              solver: SolverOptions | None = None, loss: str = "mse", delta: float | None = None,
              tie: str | None = None) -> FitResult:
    """VPNLS: E, A, B >= 0 solved for each (alpha, beta); (alpha, beta) from a grid, then Newton from the
    `polish` best grid points. `loss="mse"`: least squares on L, (E, A, B) by exact NNLS. `loss="huber"`:
    sum of Huber_delta(L - prediction), residuals in loss units and delta 1.0 unless given, as the
    reference package has them. A delta of 1.0 is above nearly every residual of a language-model fit,
    which makes Huber least squares again: to resist outliers set it near the noise (e.g. 0.01).
    (E, A, B) then come from `IRLS_STEPS` reweighted NNLS solves, and the objective searched over the
    exponents is the Huber loss at that IRLS solution. `tie="alpha=beta"` searches alpha alone."""
    grid = grid or VPNLS_GRID
    solver = solver or SolverOptions()
    delta = _vpnls_delta(loss, delta)
    _check_tie(tie)
    fit_table, dropped = drop_highest_loss(table, drop_highest)
    n_params = 4 if tie else 5
    _need_points(fit_table, n_params + 1, f"VPNLS ({n_params} parameters)")
    data = _linear_data(fit_table, delta)
    x_GxP = _vp_grid_points(grid, tie)
    w = np.ones(len(fit_table))
    sol, best, order = _vp_search(x_GxP, w, data, polish, solver)
    alpha, beta = sol.x_TxP[best][0], sol.x_TxP[best][-1]  # one column when tied: beta = alpha
    with x64():
        _, theta = _vp_inner_jit(jnp.asarray(alpha), jnp.asarray(beta), jnp.asarray(w), data)
    E, A, B = (float(t) for t in np.asarray(theta))
    params = {"E": E, "A": A, "B": B, "alpha": float(alpha), "beta": float(beta)}
    notes = table.notes
    if min(E, A, B) == 0.0:
        notes += (f"a coefficient sits on its bound 0 (E={E:.4g}, A={A:.4g}, B={B:.4g}): the data do not "
                  "pin down that term",)
    details = {"n_grid": len(x_GxP), "grid_best": x_GxP[order[0]].tolist(), "polish_starts": polish,
               "status": sol.counts(), "solver": solver.to_dict()}
    if delta is not None:
        details["irls_steps"] = IRLS_STEPS
    spec = _spec(fit_table, table, "vpnls", "mse_linear" if delta is None else "huber_linear", delta,
                 {**grid, "n_points": len(x_GxP)}, dropped,
                 {"drop_highest": drop_highest, "polish": polish, "loss": loss, "tie": tie})
    return FitResult(spec=spec, params=params, objective=float(sol.f_T[best]), derived=_derived(params),
                     details=details, notes=notes)


def refit_vpnls(fit_table: RunTable, weights_RxN: np.ndarray, result: FitResult,
                solver: SolverOptions | None = None) -> dict[str, np.ndarray]:
    """Bootstrap VPNLS: Newton on the exponents from the full fit, then (E, A, B), per weight row, with
    the fit's loss, delta and tie (read from `result.spec`)."""
    solver = solver or SolverOptions()
    tie = result.spec.options.get("tie")
    _check_tie(tie)
    delta = result.spec.delta if result.spec.loss == "huber_linear" else None
    data = _linear_data(fit_table, delta)
    R = len(weights_RxN)
    x0_P = [result.params["alpha"]] if tie else [result.params["alpha"], result.params["beta"]]
    with x64():
        sol = minimize(_vp_fgh, np.tile(x0_P, (R, 1)), weights_RxN, data, task_replicate_T=np.arange(R),
                       options=solver)
        _, theta = _vp_inner_R(jnp.asarray(sol.x_TxP[:, 0]), jnp.asarray(sol.x_TxP[:, -1]),
                               jnp.asarray(weights_RxN), data)
    theta = np.asarray(theta)
    return {"E": theta[:, 0], "A": theta[:, 1], "B": theta[:, 2], "alpha": sol.x_TxP[:, 0].copy(),
            "beta": sol.x_TxP[:, -1].copy(), "objective": sol.f_T}


def derived_from_samples(samples: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return _derived(samples)


# --- internals -------------------------------------------------------------------------------------

_SUBSETS = np.array([m for m in itertools.product((0.0, 1.0), repeat=3)])  # all 8 active sets of (E, A, B)


def _vp_inner(alpha, beta, w_N, data):
    """(E, A, B) >= 0 at fixed exponents and the objective there: exact weighted NNLS for least squares;
    for Huber (when `data` carries a delta) the IRLS solution and its weighted Huber loss."""
    X_Nx3 = jnp.stack([jnp.ones_like(data["log_n"]), jnp.exp(-alpha * data["log_n"]),
                       jnp.exp(-beta * data["log_d"])], axis=-1)
    if "delta" in data:
        return _huber_irls(X_Nx3, data["loss"], w_N, data["delta"])
    return _nnls(X_Nx3, data["loss"], w_N)


def _nnls(X_Nx3, y_N, w_N):
    """Exact weighted NNLS: the best feasible least-squares solution over all 8 active sets (3 unknowns,
    so enumerating them is exact and vectorises). Columns are scaled to unit weighted RMS first because
    N^-alpha can be 1e-20 when alpha is large. Returns (sum w r^2, theta_3)."""
    scale = jnp.sqrt(jnp.sum(w_N[:, None] * X_Nx3 * X_Nx3, axis=0) / jnp.sum(w_N)) + 1e-300
    Xs = X_Nx3 / scale
    M = Xs.T @ (w_N[:, None] * Xs)
    v = Xs.T @ (w_N * y_N)
    masks = jnp.asarray(_SUBSETS)

    def solve(mask):
        Mm = M * jnp.outer(mask, mask) + jnp.diag(1.0 - mask)
        theta = jnp.linalg.solve(Mm, v * mask)
        r = y_N - Xs @ theta
        return jnp.sum(w_N * r * r), theta

    obj_K, theta_Kx3 = jax.vmap(solve)(masks)
    feasible = jnp.all(theta_Kx3 >= 0.0, axis=1) & jnp.isfinite(obj_K)
    k = jnp.argmin(jnp.where(feasible, obj_K, jnp.inf))
    return obj_K[k], theta_Kx3[k] / scale


def _huber_irls(X_Nx3, y_N, w_N, delta):
    """Huber (E, A, B) >= 0 by IRLS: NNLS, then `IRLS_STEPS` NNLS solves with weights w min(1, delta/|r|).
    Returns (sum w Huber(r), theta_3). A fixed number of steps (no convergence test) keeps the result a
    smooth function of the exponents between active-set changes, so the grid and Newton search work.
    Only the last solve is differentiated, its weights held fixed: once IRLS has converged that is the
    exact variable-projection gradient, and the Newton matrix gets the IRLS (secant) curvature in place
    of Huber's zero beyond delta, as in `analysis.optimize`. Differentiating through every step gave the
    same gradient and compiled much more slowly."""
    X0_Nx3 = jax.lax.stop_gradient(X_Nx3)

    def irls_weights(theta_3):
        return w_N * delta / jnp.maximum(jnp.abs(y_N - X0_Nx3 @ theta_3), delta)

    theta_3 = jax.lax.fori_loop(0, IRLS_STEPS - 1, lambda _, t: _nnls(X0_Nx3, y_N, irls_weights(t))[1],
                                _nnls(X0_Nx3, y_N, w_N)[1])
    theta_3 = _nnls(X_Nx3, y_N, jax.lax.stop_gradient(irls_weights(theta_3)))[1]
    ar_N = jnp.abs(y_N - X_Nx3 @ theta_3)
    huber_N = jnp.where(ar_N <= delta, 0.5 * ar_N * ar_N, delta * (ar_N - 0.5 * delta))
    return jnp.sum(w_N * huber_N), theta_3


def _vp_objective(x_P, w_N, data):
    # x_P is (alpha, beta), or (alpha,) when tied: x_P[-1] is beta either way.
    return _vp_inner(x_P[0], x_P[-1], w_N, data)[0]


_vp_fgh = autodiff_fgh(_vp_objective)
_vp_inner_jit = jax.jit(_vp_inner)  # op by op, the IRLS loop took longer than compiling it
_vp_inner_R = jax.jit(jax.vmap(_vp_inner, in_axes=(0, 0, 0, None)))  # one replicate per weight row


@jax.jit
def _vp_grid(x_GxP, w_N, data):
    return jax.vmap(lambda x_P: _vp_objective(x_P, w_N, data))(x_GxP)


def _vp_grid_points(grid: dict, tie: str | None) -> np.ndarray:
    """Exponent grid rows: (alpha, beta) pairs, or alpha alone when tied."""
    axis = lambda k: np.linspace(*map(float, grid[k][:2]), int(grid[k][2]))  # [start, stop, count]
    alphas = axis("alpha")
    if tie:
        return alphas[:, None]
    betas = axis("beta")
    return np.stack(np.meshgrid(alphas, betas, indexing="ij"), -1).reshape(-1, 2)


def _vp_search(x_GxP, w_N, data, polish: int, solver: SolverOptions):
    """Objective at every grid row, then Newton from the `polish` best: (solution, best task, grid order)."""
    with x64():
        obj_G = np.asarray(_vp_grid(jnp.asarray(x_GxP), jnp.asarray(w_N), data))
    order = np.argsort(np.where(np.isfinite(obj_G), obj_G, np.inf))[:polish]
    sol = minimize(_vp_fgh, x_GxP[order], w_N[None], data, options=solver)
    ok = np.isin(sol.status_T, (CONVERGED, STALLED, MAX_ITER)) & np.isfinite(sol.f_T)
    if not ok.any():
        raise DataError("VPNLS: no start converged to a finite objective; check the data")
    return sol, int(np.argmin(np.where(ok, sol.f_T, np.inf))), order


def _vpnls_delta(loss: str, delta) -> float | None:
    """The Huber delta VPNLS will use (None for least squares), after checking loss and delta."""
    if loss not in VPNLS_LOSSES:
        raise DataError(f"unknown VPNLS loss {loss!r}; use 'mse' or 'huber'")
    if loss == "mse":
        if delta is not None:
            raise DataError(f"delta={delta} is the Huber threshold; it needs loss='huber' (got loss='mse')")
        return None
    delta = VPNLS_HUBER_DELTA if delta is None else delta
    if not (isinstance(delta, numbers.Real) and math.isfinite(delta) and delta > 0):
        raise DataError(f"Huber delta must be a finite number > 0 (in loss units), got {delta!r}")
    return float(delta)


def _log_data(table: RunTable, delta) -> dict:
    return {"log_n": np.log(table.N), "log_d": np.log(table.D), "log_loss": np.log(table.loss),
            "delta": np.float64(delta)}


def _linear_data(table: RunTable, delta: float | None = None) -> dict:
    """VPNLS data; a "delta" entry makes the objective Huber (`_vp_inner`)."""
    data = {"log_n": np.log(table.N), "log_d": np.log(table.D), "loss": np.asarray(table.loss, float)}
    return data if delta is None else {**data, "delta": np.float64(delta)}


def _to_params(x):
    """Raw (a, b, e, alpha, beta) rows -> named E, A, B, alpha, beta (floats, or arrays for many rows).
    Tied rows (a, b, e, alpha) end in alpha, so beta (the last column either way) comes out = alpha."""
    x = np.asarray(x, float)
    conv = (lambda v: float(v)) if x.ndim == 1 else (lambda v: v)
    return {"E": conv(np.exp(x[..., 2])), "A": conv(np.exp(x[..., 0])), "B": conv(np.exp(x[..., 1])),
            "alpha": conv(x[..., 3]), "beta": conv(x[..., -1])}


def _to_raw(p: dict, tie: str | None = None) -> list[float]:
    raw = [np.log(p["A"]), np.log(p["B"]), np.log(p["E"]), p["alpha"], p["beta"]]
    return raw[:4] if tie else raw


def _raw_names(tie: str | None) -> tuple[str, ...]:
    return ("a", "b", "e", "alpha") if tie else ("a", "b", "e", "alpha", "beta")


def _a3_fgh(tie: str | None):
    return chinchilla_tied_fgh if tie else chinchilla_fgh


def _check_tie(tie) -> None:
    if tie not in (None, TIE):
        raise DataError(f"unknown tie {tie!r}; the one tie on offer is {TIE!r} (or none)")


def _best_and_minima(x_TxP, f_T, status_T, keep: int = 8) -> tuple[int, list[dict]]:
    """Index of the best start, and the best `keep` distinct local minima (for bootstrap starts)."""
    usable = np.isin(status_T, (CONVERGED, STALLED, MAX_ITER)) & np.isfinite(f_T)
    if not usable.any():
        raise DataError("approach 3: no start converged to a finite objective; check the data")
    f = np.where(usable, f_T, np.inf)
    order = np.argsort(f, kind="stable")
    minima, seen = [], []
    for t in order:
        if not np.isfinite(f[t]) or len(minima) >= keep:
            break
        if any(np.max(np.abs(x_TxP[t] - s)) < 0.05 for s in seen):
            continue
        seen.append(x_TxP[t])
        minima.append({"objective": float(f[t]), **_to_params(x_TxP[t])})
    return int(order[0]), minima


def _derived(p: dict) -> dict:
    a, b = frontier.chinchilla_exponents(p["alpha"], p["beta"])
    G = frontier.chinchilla_G(p["A"], p["B"], p["alpha"], p["beta"])
    conv = (lambda v: float(v)) if np.ndim(a) == 0 else (lambda v: v)
    return {"a": conv(a), "b": conv(b), "G": conv(G)}


def _need_points(table: RunTable, n: int, what: str) -> None:
    if len(table) < n:
        raise DataError(f"{what} needs at least {n} points, got {len(table)}")


def _spec(fit_table: RunTable, table: RunTable, method, loss, delta, grid, dropped, options) -> FitSpec:
    return FitSpec(method=method, form="chinchilla", loss=loss, delta=delta, init_grid=grid,
                   n_convention=table.n_convention, flops=table.flops, data_hash=table.data_hash,
                   n_points=len(fit_table), dropped=tuple(dropped), d_derived=table.d_derived,
                   source=table.source, options=dict(options))
