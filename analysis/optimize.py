"""Batched damped-Newton minimisation: many starts (and bootstrap replicates) solved at once in JAX.

Every task is one start point paired with one row of per-point weights (a bootstrap replicate is a
weight row: how often each point was drawn). Tasks run in a fixed pool of `lanes` slots inside a
single `lax.while_loop`; a slot whose task has converged takes the next task from the queue, so the
cost follows the total number of iterations, not the slowest start times the number of starts.

Each iteration takes a Levenberg-Marquardt-damped Newton step (eigen-decomposition of the small
Newton matrix, shifted to be positive definite) and keeps it only if the objective falls. Newton rather
than L-BFGS: the parameter vectors are tiny (2-5), so second derivatives are cheap, and a vmapped
L-BFGS with line search spends most of its time in the slowest lanes' line searches (optax's L-BFGS
under vmap was far slower on the 4,500-start Epoch fit; BENCHMARKS.md, Fit speed).

For Huber objectives (`huber_fgh`) the Newton matrix is exact except for Huber's own second derivative,
which is 0 beyond +-delta: it is replaced there by the secant slope h'(r)/r = delta/|r| (the IRLS
weight). With delta = 1e-3 most residuals sit beyond delta, the exact Hessian is nearly flat, and
Newton steps stall; with the secant curvature nearly all of Hoffmann's starts reach the best Epoch fit,
against a few with the exact Hessian (BENCHMARKS.md, Fit speed). Objective and gradient stay exact, so
the minimum is unchanged.
`minimize` runs in float64 inside `x64()` (jax.enable_x64 as a context manager), which leaves the rest
of the process, training included, in float32.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

CONVERGED, STALLED, MAX_ITER, DIVERGED, BAD_START = range(5)
STATUS_NAMES = ("converged", "stalled", "max_iter", "diverged", "bad_start")

# fgh(x_WxP, w_WxN, data) -> (F_W, g_WxP, H_WxPxP): objective, gradient and Hessian per lane.
FGH = Callable[[jax.Array, jax.Array, Any], tuple[jax.Array, jax.Array, jax.Array]]


def x64():
    """Scope float64 to the fits: the rest of the process (training) keeps float32 defaults."""
    return jax.enable_x64(True)


@dataclasses.dataclass(frozen=True)
class SolverOptions:
    """Stopping rules. A lane stops when an accepted step lowers F by at most `ftol * |F|` or F falls
    below `fatol` (an exact fit, to rounding), when no damped step can lower it any more (damping above
    `mu_max`: a minimum to rounding), after `max_iter` iterations, or when a parameter leaves
    `[-bound, bound]` (running off to a degenerate limit)."""

    max_iter: int = 200
    ftol: float = 1e-10
    fatol: float = 1e-24
    mu0: float = 1e-3
    mu_max: float = 1e10
    bound: float = 1e3
    lanes: int = 256

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Solution:
    """One row per task: final parameters, objective, iterations used and a status code."""

    x_TxP: np.ndarray
    f_T: np.ndarray
    n_iter_T: np.ndarray
    status_T: np.ndarray

    def counts(self) -> dict[str, int]:
        return {name: int(np.sum(self.status_T == code)) for code, name in enumerate(STATUS_NAMES)}


def huber_fgh(residual: Callable[[jax.Array, Any], jax.Array]) -> FGH:
    """Batched fgh for sum_n w_n Huber_delta(r_n(x)) from a residual function r(x_P, data) -> r_N;
    `data["delta"]` is the Huber delta. Newton matrix as in the module docstring."""

    def one(x, w, data):
        delta = data["delta"]
        r = residual(x, data)
        J_NxP = jax.jacfwd(residual)(x, data)
        ar = jnp.abs(r)
        inside = ar <= delta
        F = jnp.sum(w * jnp.where(inside, 0.5 * r * r, delta * (ar - 0.5 * delta)))
        psi = w * jnp.clip(r, -delta, delta)
        curvature = jnp.where(inside, w, w * delta / jnp.maximum(ar, delta))
        second = jax.hessian(lambda x_: jnp.dot(jax.lax.stop_gradient(psi), residual(x_, data)))(x)
        return F, J_NxP.T @ psi, J_NxP.T @ (curvature[:, None] * J_NxP) + second

    return jax.vmap(one, in_axes=(0, 0, None))


def autodiff_fgh(objective: Callable[[jax.Array, jax.Array, Any], jax.Array]) -> FGH:
    """Lift a per-lane objective f(x_P, w_N, data) -> scalar into a batched fgh by autodiff."""

    def one(x, w, data):
        f = lambda x_: objective(x_, w, data)
        return f(x), jax.grad(f)(x), jax.hessian(f)(x)

    return jax.vmap(one, in_axes=(0, 0, None))


def minimize(fgh: FGH, x0_TxP, weights_RxN, data, task_replicate_T=None,
             options: SolverOptions = SolverOptions()) -> Solution:
    """Minimise from every start x0_TxP[t] with weights weights_RxN[task_replicate_T[t]].

    `fgh` must be a module-level function (it is a static jit argument, so the same function object
    reuses the compiled loop). `data` is a pytree of arrays shared by all tasks.
    """
    with x64():
        x0 = jnp.asarray(x0_TxP, dtype=jnp.float64)
        w = jnp.asarray(weights_RxN, dtype=jnp.float64)
        T = x0.shape[0]
        rep = jnp.zeros(T, jnp.int32) if task_replicate_T is None else jnp.asarray(task_replicate_T, jnp.int32)
        data = jax.tree.map(lambda a: jnp.asarray(a, dtype=jnp.float64), data)
        o = options
        out = _pool(fgh, int(min(o.lanes, T)), o.max_iter, o.ftol, o.fatol, o.mu0, o.mu_max, o.bound,
                    x0, w, rep, data)
        x, f, n_iter, status = (np.asarray(a) for a in out)
    return Solution(x, f, n_iter, status)


def _newton_step(g_WxP, H_WxPxP, mu_W):
    """Damped Newton step: shift the Hessian's spectrum to be positive, then scale the damping with it."""
    lam_WxP, V_WxPxP = jnp.linalg.eigh(H_WxPxP)
    # Where the objective is locally linear (H ~ 0) the gradient sets the scale: the step is then
    # gradient descent of length 1/mu.
    scale_W = jnp.maximum(jnp.max(jnp.abs(lam_WxP), axis=1), jnp.linalg.norm(g_WxP, axis=1)) + 1e-300
    shift_W = jnp.maximum(0.0, -lam_WxP[:, 0]) + mu_W * scale_W
    gv_WxP = jnp.einsum("wpq,wp->wq", V_WxPxP, g_WxP)
    return -jnp.einsum("wpq,wq->wp", V_WxPxP, gv_WxP / (lam_WxP + shift_W[:, None]))


@jax.jit(static_argnums=(0, 1, 2, 3, 4, 5, 6, 7))
def _pool(fgh, lanes, max_iter, ftol, fatol, mu0, mu_max, bound, x0_TxP, w_RxN, rep_T, data):
    T, P = x0_TxP.shape
    eye = jnp.eye(P, dtype=x0_TxP.dtype)

    def fresh(task_W, keep_W, state):
        """Load tasks into the lanes where keep_W is False. A fresh lane has F = inf and a zero
        gradient, so its first 'step' is zero and evaluates the start point itself."""
        x, F, g, H, mu, it, w = state
        t = jnp.minimum(task_W, T - 1)
        x = jnp.where(keep_W[:, None], x, x0_TxP[t])
        F = jnp.where(keep_W, F, jnp.inf)
        g = jnp.where(keep_W[:, None], g, 0.0)
        H = jnp.where(keep_W[:, None, None], H, eye)
        mu = jnp.where(keep_W, mu, mu0)
        it = jnp.where(keep_W, it, 0)
        w = jnp.where(keep_W[:, None], w, w_RxN[rep_T[t]])
        return x, F, g, H, mu, it, w

    W = lanes
    task0 = jnp.arange(W)
    zeros = (jnp.zeros((W, P)), jnp.zeros(W), jnp.zeros((W, P)), jnp.zeros((W, P, P)),
             jnp.zeros(W), jnp.zeros(W, jnp.int32), jnp.zeros((W, w_RxN.shape[1])))
    lanes_state = fresh(task0, jnp.zeros(W, bool), zeros)
    out = (jnp.full((T, P), jnp.nan), jnp.full(T, jnp.nan), jnp.zeros(T, jnp.int32),
           jnp.full(T, BAD_START, jnp.int32))
    carry = (lanes_state, task0, task0 < T, jnp.asarray(W), out)

    def cond(carry):
        return jnp.any(carry[2])

    def body(carry):
        (x, F, g, H, mu, it, w), task, active, next_task, (ox, of, oit, ost) = carry
        step = _newton_step(g, H, mu)
        xt = x + step
        Ft, gt, Ht = fgh(xt, w, data)
        ok = jnp.isfinite(Ft) & (Ft < F)
        x = jnp.where(ok[:, None], xt, x)
        small = ok & jnp.isfinite(F) & ((F - Ft <= ftol * jnp.abs(F)) | (Ft <= fatol))
        F = jnp.where(ok, Ft, F)
        g = jnp.where(ok[:, None], gt, g)
        H = jnp.where(ok[:, None, None], Ht, H)
        mu = jnp.where(ok, mu * 0.3, mu * 4.0)
        it = it + 1
        wild = jnp.max(jnp.abs(x), axis=1) > bound
        stalled = mu > mu_max
        status = jnp.select([~jnp.isfinite(F), wild, small, stalled, it >= max_iter],
                            [BAD_START, DIVERGED, CONVERGED, STALLED, MAX_ITER], -1)
        finished = active & (status >= 0)
        # Write finished lanes' results; index T is out of range and dropped.
        slot = jnp.where(finished, task, T)
        ox = ox.at[slot].set(x, mode="drop")
        of = of.at[slot].set(F, mode="drop")
        oit = oit.at[slot].set(it, mode="drop")
        ost = ost.at[slot].set(status, mode="drop")
        # Refill finished lanes from the queue, in lane order.
        new_task = next_task + jnp.cumsum(finished) - 1
        got = finished & (new_task < T)
        task = jnp.where(got, new_task, task)
        next_task = next_task + jnp.sum(finished)
        state = (x, F, g, H, mu, it, w)
        # Most iterations finish no lane: skip the gathers then.
        state = jax.lax.cond(jnp.any(got), lambda s: fresh(task, ~got, s), lambda s: s, state)
        active = (active & ~finished) | got
        return state, task, active, next_task, (ox, of, oit, ost)

    carry = jax.lax.while_loop(cond, body, carry)
    return carry[4]
