"""Kaplan et al. (2020) forms: L(X) = (X_c/X)^alpha_X for X in N, D, C, optionally + E, and
L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D.

All are fitted like approach 3 (Huber on log-loss residuals, batched Newton from a grid of starts), in
log form: log L = k - alpha log X, or LSE(k - alpha log X, e) with E, where k = alpha log X_c; and
log L = alpha_D LSE(p - r log N, q - log D) with r = alpha_N/alpha_D, p = r log N_c, q = log D_c.

Points used: L(N, D) uses every row. L(N) uses the lowest loss at each N and L(D) the lowest at each D
(Kaplan fit them on runs where the other resource was not the bottleneck: use tables built that way);
L(C) uses the compute frontier, the rows with lower loss than every row of smaller compute.
"""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np

from analysis.loading import RunTable, drop_highest_loss
from analysis.optimize import CONVERGED, MAX_ITER, STALLED, SolverOptions, huber_fgh, minimize
from analysis.result import FitResult, FitSpec
from scaling.errors import DataError

FORMS = ("nd", "n", "d", "c")
_VAR = {"n": "N", "d": "D", "c": "C"}


def _single(x_P, data):
    k, alpha = x_P[0], x_P[1]
    return k - alpha * data["log_x"] - data["log_loss"]


def _single_e(x_P, data):
    k, alpha, e = x_P[0], x_P[1], x_P[2]
    return jnp.logaddexp(k - alpha * data["log_x"], e) - data["log_loss"]


def _nd(x_P, data):
    p, q, r, alpha_d = x_P[0], x_P[1], x_P[2], x_P[3]
    return alpha_d * jnp.logaddexp(p - r * data["log_n"], q - data["log_d"]) - data["log_loss"]


_FGH = {"single": huber_fgh(_single), "single_e": huber_fgh(_single_e), "nd": huber_fgh(_nd)}


def fit_kaplan(table: RunTable, form: str = "nd", irreducible: bool = False, delta: float = 1e-3,
               drop_highest: int = 0, solver: SolverOptions | None = None) -> FitResult:
    """Fit one Kaplan form. `irreducible` adds E to the single-variable forms (not to "nd")."""
    if form not in FORMS:
        raise DataError(f"unknown Kaplan form {form!r}; use one of {FORMS}")
    if form == "nd" and irreducible:
        raise DataError("Kaplan's L(N, D) has no irreducible term; drop --irreducible or pick a form n, d, c")
    solver = solver or SolverOptions()
    fit_table, dropped = drop_highest_loss(table, drop_highest)
    rows = _select(fit_table, form)
    kind = "nd" if form == "nd" else ("single_e" if irreducible else "single")
    n_params = {"nd": 4, "single": 2, "single_e": 3}[kind]
    if rows.sum() <= n_params:
        raise DataError(f"Kaplan L({_label(form)}) has {n_params} parameters: needs at least {n_params + 1} "
                        f"points, got {int(rows.sum())}")
    data = _data(fit_table, rows, form, delta)
    starts = _starts(kind, data)
    sol = minimize(_FGH[kind], starts, np.ones((1, int(rows.sum()))), data, options=solver)
    ok = np.isin(sol.status_T, (CONVERGED, STALLED, MAX_ITER)) & np.isfinite(sol.f_T)
    if not ok.any():
        raise DataError(f"Kaplan L({_label(form)}): no start converged; check the data")
    best = int(np.argmin(np.where(ok, sol.f_T, np.inf)))
    params = _named(kind, form, sol.x_TxP[best])
    spec = FitSpec(method="kaplan", form=f"kaplan_{form}", loss="huber_log", delta=delta,
                   init_grid={"name": "kaplan_data_centred", "n_starts": len(starts)},
                   n_convention=table.n_convention, flops=table.flops, data_hash=table.data_hash,
                   n_points=int(rows.sum()), dropped=dropped, d_derived=table.d_derived, source=table.source,
                   options={"form": form, "irreducible": irreducible, "drop_highest": drop_highest})
    return FitResult(spec=spec, params=params, objective=float(sol.f_T[best]), derived=_derived(params),
                     details={"status": sol.counts(), "raw": sol.x_TxP[best].tolist(),
                                  "solver": solver.to_dict()},
                     notes=table.notes)


def refit_kaplan(fit_table: RunTable, weights_RxN: np.ndarray, result: FitResult,
                 solver: SolverOptions | None = None) -> dict[str, np.ndarray]:
    """Refit per weight row from the full fit's optimum; rows outside the form's selection are ignored."""
    solver = solver or SolverOptions()
    form, irreducible = result.spec.options["form"], result.spec.options["irreducible"]
    kind = "nd" if form == "nd" else ("single_e" if irreducible else "single")
    rows = _select(fit_table, form)
    data = _data(fit_table, rows, form, result.spec.delta)
    R = len(weights_RxN)
    sol = minimize(_FGH[kind], np.tile(result.details["raw"], (R, 1)), weights_RxN[:, rows], data,
                   task_replicate_T=np.arange(R), options=solver)
    bad = ~np.isin(sol.status_T, (CONVERGED, STALLED, MAX_ITER))
    x = np.where(bad[:, None], np.nan, sol.x_TxP)
    return _named(kind, form, x)


def _label(form):
    return "N, D" if form == "nd" else _VAR[form]


def _select(table: RunTable, form: str) -> np.ndarray:
    """Boolean mask of the rows a form is fitted on (see module docstring)."""
    if form == "nd":
        return np.ones(len(table), bool)
    if form == "c":
        order = np.argsort(table.C, kind="stable")
        running = np.minimum.accumulate(table.loss[order])
        frontier = np.zeros(len(table), bool)
        frontier[order] = table.loss[order] <= running
        return frontier
    x = getattr(table, _VAR[form])
    keep = np.zeros(len(table), bool)
    for v in np.unique(x):
        idx = np.nonzero(x == v)[0]
        keep[idx[np.argmin(table.loss[idx])]] = True
    return keep


def _data(table, rows, form, delta):
    d = {"log_loss": np.log(table.loss[rows]), "delta": np.float64(delta)}
    if form == "nd":
        d.update(log_n=np.log(table.N[rows]), log_d=np.log(table.D[rows]))
    else:
        d["log_x"] = np.log(getattr(table, _VAR[form])[rows])
    return d


def _starts(kind, data) -> np.ndarray:
    """Data-centred starts: each start's prediction matches the mean log-loss at the mean log X."""
    lm = float(np.mean(data["log_loss"]))
    if kind == "nd":
        rows = []
        for r, alpha_d, share in itertools.product((0.5, 0.8, 1.25, 2.0), (0.05, 0.1, 0.2, 0.4), (0.2, 0.5, 0.8)):
            inner = lm / alpha_d  # log of the bracket at the data's centre
            p = inner + np.log(share) + r * np.mean(data["log_n"])
            q = inner + np.log(1 - share) + np.mean(data["log_d"])
            rows.append((p, q, r, alpha_d))
        return np.asarray(rows)
    xm = float(np.mean(data["log_x"]))
    alphas = (0.02, 0.05, 0.1, 0.2, 0.5)
    if kind == "single":
        return np.asarray([(lm + al * xm, al) for al in alphas])
    lmin = float(np.min(data["log_loss"]))
    rows = []
    for al, frac in itertools.product(alphas, (0.25, 0.5, 0.75, 0.9)):
        e = lmin + np.log(frac)
        rest = np.log(max(np.exp(lm) - np.exp(e), 1e-6))
        rows.append((rest + al * xm, al, e))
    return np.asarray(rows)


def _named(kind, form, x) -> dict:
    x = np.asarray(x, float)
    conv = (lambda v: float(v)) if x.ndim == 1 else (lambda v: v)
    if kind == "nd":
        p, q, r, alpha_d = (x[..., i] for i in range(4))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = {"N_c": np.exp(p / r), "D_c": np.exp(q), "alpha_N": r * alpha_d, "alpha_D": alpha_d}
    else:
        var = _VAR[form]
        k, alpha = x[..., 0], x[..., 1]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = {f"{var}_c": np.exp(k / alpha), f"alpha_{var}": alpha}
        if kind == "single_e":
            out["E"] = np.exp(x[..., 2])
    return {k: conv(v) for k, v in out.items()}


def _derived(params: dict) -> dict:
    if "alpha_N" in params and "alpha_D" in params:
        total = params["alpha_N"] + params["alpha_D"]
        return {"a": params["alpha_D"] / total, "b": params["alpha_N"] / total}
    return {}


def derived_from_samples(samples: dict) -> dict:
    return _derived(samples)

