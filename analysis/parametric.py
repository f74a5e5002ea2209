"""Approach 3 and VPNLS: L(N, D) = E + A/N^alpha + B/D^beta, and the quantities derived from it.

Approach 3 follows Besiroglu et al. (2024): parameters (a, b, e, alpha, beta) with A = e^a, B = e^b,
E = e^e; prediction log L = LSE(a - alpha log N, b - beta log D, e); objective = sum of
Huber_delta(prediction - log L) (delta = 1e-3); minimised from every point of Hoffmann's grid of starts
at once (analysis.optimize: batched damped Newton, float64).

VPNLS (variable projection with non-negative least squares): for fixed (alpha, beta) the model is
linear in (E, A, B), so they are solved exactly by NNLS on the losses; only (alpha, beta) is searched,
over a grid and then by Newton from the best grid points. Two nonlinear parameters instead of five.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from analysis import frontier
from analysis.load import RunTable, drop_highest_loss
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


def fit_parametric(table: RunTable, delta: float = 1e-3, grid: dict | None = None, drop_highest: int = 0,
                   solver: SolverOptions | None = None) -> FitResult:
    """Approach 3: Huber on log-loss residuals from every start of `grid` (Hoffmann's by default)."""
    grid = grid or HOFFMANN_GRID
    solver = solver or SolverOptions()
    if not delta > 0:
        raise DataError(f"Huber delta must be > 0, got {delta}")
    fit_table, dropped = drop_highest_loss(table, drop_highest)
    _need_points(fit_table, 6, "approach 3 (5 parameters)")
    starts = grid_points(grid)
    data = _log_data(fit_table, delta)
    sol = minimize(chinchilla_fgh, starts, np.ones((1, len(fit_table))), data, options=solver)
    best, minima = _best_and_minima(sol.x_TxP, sol.f_T, sol.status_T)
    params = _to_params(sol.x_TxP[best])
    n_at_best = int(np.sum(sol.f_T <= sol.f_T[best] * (1 + 1e-6)))
    details = {
        "n_starts": len(starts), "status": sol.counts(), "starts_reaching_best": n_at_best,
        "best_start": dict(zip(("a", "b", "e", "alpha", "beta"), starts[best].tolist())),
        "best_iterations": int(sol.n_iter_T[best]), "local_minima": minima, "solver": solver.to_dict(),
    }
    spec = _spec(fit_table, table, "parametric", "huber_log", delta, {**grid, "n_starts": len(starts)}, dropped,
                 {"drop_highest": drop_highest})
    return FitResult(spec=spec, params=params, objective=float(sol.f_T[best]),
                     derived=_derived(params), details=details, notes=table.notes)


def refit_parametric(fit_table: RunTable, weights_RxN: np.ndarray, result: FitResult,
                     solver: SolverOptions | None = None) -> dict[str, np.ndarray]:
    """Refit approach 3 once per weight row (bootstrap replicate), each from the full fit's best few
    distinct local minima: every (replicate, start) pair is one task of the batched solver."""
    solver = solver or SolverOptions()
    minima = result.details.get("local_minima") or [result.params]
    starts = np.asarray([_to_raw(m) for m in minima[:BOOTSTRAP_STARTS]])
    R, S = len(weights_RxN), len(starts)
    data = _log_data(fit_table, result.spec.delta)
    sol = minimize(chinchilla_fgh, np.tile(starts, (R, 1)), weights_RxN, data,
                   task_replicate_T=np.repeat(np.arange(R), S), options=solver)
    f_RxS = np.where(np.isin(sol.status_T, (CONVERGED, STALLED, MAX_ITER)), sol.f_T, np.inf).reshape(R, S)
    pick = np.argmin(f_RxS, axis=1)
    x_RxP = sol.x_TxP.reshape(R, S, -1)[np.arange(R), pick]
    out = _to_params(x_RxP)
    out["objective"] = f_RxS[np.arange(R), pick]
    return out


def fit_vpnls(table: RunTable, grid: dict | None = None, drop_highest: int = 0, polish: int = 8,
              solver: SolverOptions | None = None) -> FitResult:
    """VPNLS: least squares on L with E, A, B >= 0 solved exactly for each (alpha, beta); (alpha, beta)
    from a grid, then Newton from the `polish` best grid points."""
    grid = grid or VPNLS_GRID
    solver = solver or SolverOptions()
    fit_table, dropped = drop_highest_loss(table, drop_highest)
    _need_points(fit_table, 6, "VPNLS (5 parameters)")
    data = _linear_data(fit_table)
    alphas, betas = (np.linspace(*map(float, grid[k][:2]), int(grid[k][2])) for k in ("alpha", "beta"))
    ab_Gx2 = np.stack(np.meshgrid(alphas, betas, indexing="ij"), -1).reshape(-1, 2)
    w = np.ones(len(fit_table))
    with x64():
        obj_G = np.asarray(_vp_grid(jnp.asarray(ab_Gx2), jnp.asarray(w), data))
        order = np.argsort(np.where(np.isfinite(obj_G), obj_G, np.inf))[:polish]
        sol = minimize(_vp_fgh, ab_Gx2[order], w[None], data, options=solver)
        ok = np.isin(sol.status_T, (CONVERGED, STALLED, MAX_ITER)) & np.isfinite(sol.f_T)
        best = int(np.argmin(np.where(ok, sol.f_T, np.inf)))
        alpha, beta = sol.x_TxP[best]
        _, theta = _vp_inner(jnp.asarray(alpha), jnp.asarray(beta), jnp.asarray(w), data)
    E, A, B = (float(t) for t in np.asarray(theta))
    params = {"E": E, "A": A, "B": B, "alpha": float(alpha), "beta": float(beta)}
    notes = table.notes
    if min(E, A, B) == 0.0:
        notes += (f"a coefficient sits on its bound 0 (E={E:.4g}, A={A:.4g}, B={B:.4g}): the data do not "
                  "pin down that term",)
    details = {"n_grid": len(ab_Gx2), "grid_best": ab_Gx2[order[0]].tolist(), "polish_starts": polish,
                   "status": sol.counts(), "solver": solver.to_dict()}
    spec = _spec(fit_table, table, "vpnls", "mse_linear", None, {**grid, "n_points": len(ab_Gx2)}, dropped,
                 {"drop_highest": drop_highest, "polish": polish})
    return FitResult(spec=spec, params=params, objective=float(sol.f_T[best]), derived=_derived(params),
                     details=details, notes=notes)


def refit_vpnls(fit_table: RunTable, weights_RxN: np.ndarray, result: FitResult,
                solver: SolverOptions | None = None) -> dict[str, np.ndarray]:
    """Bootstrap VPNLS: Newton on (alpha, beta) from the full fit, then NNLS, per weight row."""
    solver = solver or SolverOptions()
    data = _linear_data(fit_table)
    R = len(weights_RxN)
    start = np.tile([result.params["alpha"], result.params["beta"]], (R, 1))
    with x64():
        sol = minimize(_vp_fgh, start, weights_RxN, data, task_replicate_T=np.arange(R), options=solver)
        inner = jax.vmap(_vp_inner, in_axes=(0, 0, 0, None))
        _, theta = inner(jnp.asarray(sol.x_TxP[:, 0]), jnp.asarray(sol.x_TxP[:, 1]),
                         jnp.asarray(weights_RxN), data)
    theta = np.asarray(theta)
    return {"E": theta[:, 0], "A": theta[:, 1], "B": theta[:, 2], "alpha": sol.x_TxP[:, 0],
            "beta": sol.x_TxP[:, 1], "objective": sol.f_T}


def derived_from_samples(samples: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return _derived(samples)


# --- internals -------------------------------------------------------------------------------------

_SUBSETS = np.array([m for m in itertools.product((0.0, 1.0), repeat=3)])  # all 8 active sets of (E, A, B)


def _vp_inner(alpha, beta, w_N, data):
    """Exact NNLS for (E, A, B) at fixed exponents: the best feasible least-squares solution over all
    8 active sets (3 unknowns, so enumerating them is exact and vectorises). Columns are scaled to unit
    weighted RMS first because N^-alpha can be 1e-20 when alpha is large."""
    X = jnp.stack([jnp.ones_like(data["log_n"]), jnp.exp(-alpha * data["log_n"]),
                   jnp.exp(-beta * data["log_d"])], axis=-1)
    y = data["loss"]
    scale = jnp.sqrt(jnp.sum(w_N[:, None] * X * X, axis=0) / jnp.sum(w_N)) + 1e-300
    Xs = X / scale
    M = Xs.T @ (w_N[:, None] * Xs)
    v = Xs.T @ (w_N * y)
    masks = jnp.asarray(_SUBSETS)

    def solve(mask):
        Mm = M * jnp.outer(mask, mask) + jnp.diag(1.0 - mask)
        theta = jnp.linalg.solve(Mm, v * mask)
        r = y - Xs @ theta
        return jnp.sum(w_N * r * r), theta

    obj_K, theta_Kx3 = jax.vmap(solve)(masks)
    feasible = jnp.all(theta_Kx3 >= 0.0, axis=1) & jnp.isfinite(obj_K)
    k = jnp.argmin(jnp.where(feasible, obj_K, jnp.inf))
    return obj_K[k], theta_Kx3[k] / scale


def _vp_objective(x_P, w_N, data):
    return _vp_inner(x_P[0], x_P[1], w_N, data)[0]


_vp_fgh = autodiff_fgh(_vp_objective)


@jax.jit
def _vp_grid(ab_Gx2, w_N, data):
    return jax.vmap(lambda ab: _vp_objective(ab, w_N, data))(ab_Gx2)


def _log_data(table: RunTable, delta) -> dict:
    return {"log_n": np.log(table.N), "log_d": np.log(table.D), "log_loss": np.log(table.loss),
            "delta": np.float64(delta)}


def _linear_data(table: RunTable) -> dict:
    return {"log_n": np.log(table.N), "log_d": np.log(table.D), "loss": np.asarray(table.loss, float)}


def _to_params(x):
    """Raw (a, b, e, alpha, beta) rows -> named E, A, B, alpha, beta (floats, or arrays for many rows)."""
    x = np.asarray(x, float)
    conv = (lambda v: float(v)) if x.ndim == 1 else (lambda v: v)
    return {"E": conv(np.exp(x[..., 2])), "A": conv(np.exp(x[..., 0])), "B": conv(np.exp(x[..., 1])),
            "alpha": conv(x[..., 3]), "beta": conv(x[..., 4])}


def _to_raw(p: dict) -> list[float]:
    return [np.log(p["A"]), np.log(p["B"]), np.log(p["E"]), p["alpha"], p["beta"]]


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
