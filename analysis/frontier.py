"""The compute-optimal frontier implied by a fit: N_opt(C), D_opt(C), L_opt(C), tokens per parameter.

Works on parameter dicts whose values are floats or arrays (bootstrap replicates), so the same code
gives point estimates and intervals. C = 6 N D throughout, as in the fits' own derivations.
"""

from __future__ import annotations

import numpy as np

from analysis.result import FitResult
from scaling.chinchilla import chinchilla_G, chinchilla_K, chinchilla_exponents, chinchilla_loss_exponent


def chinchilla_loss(p: dict, N, D):
    return p["E"] + p["A"] / np.power(N, p["alpha"]) + p["B"] / np.power(D, p["beta"])


def chinchilla_n_opt(p: dict, C):
    """N_opt = G (C/6)^a."""
    a, _ = chinchilla_exponents(p["alpha"], p["beta"])
    return chinchilla_G(p["A"], p["B"], p["alpha"], p["beta"]) * (np.asarray(C, float) / 6.0) ** a


def chinchilla_d_opt(p: dict, C):
    """D_opt = (C/6)^b / G."""
    _, b = chinchilla_exponents(p["alpha"], p["beta"])
    return (np.asarray(C, float) / 6.0) ** b / chinchilla_G(p["A"], p["B"], p["alpha"], p["beta"])


def chinchilla_reducible_opt(p: dict, C):
    """L_opt(C) - E in closed form (no cancellation against E, so it stays exact far out in C)."""
    gamma = chinchilla_loss_exponent(p["alpha"], p["beta"])
    return chinchilla_K(p["A"], p["B"], p["alpha"], p["beta"]) * (np.asarray(C, float) / 6.0) ** -gamma


def kaplan_nd_loss(p: dict, N, D):
    r = p["alpha_N"] / p["alpha_D"]
    return ((p["N_c"] / N) ** r + p["D_c"] / D) ** p["alpha_D"]


def optimum_from_params(form: str, p: dict, C) -> dict:
    """N_opt, D_opt, L_opt and D/N at budget(s) C for a fitted form (arrays broadcast)."""
    C = np.asarray(C, float)
    if form == "chinchilla":
        n, d = chinchilla_n_opt(p, C), chinchilla_d_opt(p, C)
        loss = p["E"] + chinchilla_reducible_opt(p, C)
    elif form == "kaplan_nd":
        # minimise (N_c/N)^r + 6 D_c N / C over N: N^(r+1) = r N_c^r C / (6 D_c)
        r = p["alpha_N"] / p["alpha_D"]
        n = (r * p["N_c"] ** r * C / (6.0 * p["D_c"])) ** (1.0 / (r + 1.0))
        d = C / (6.0 * n)
        loss = kaplan_nd_loss(p, n, d)
    elif form == "power_law":
        # Stay on budget: D from C = 6 N D, not from the separately fitted D_opt(C) power law.
        n = p["k_N"] * C ** p["a"]
        d = C / (6.0 * n)
        loss = np.full(np.broadcast(n, d).shape, np.nan)
    else:
        raise ValueError(f"form {form!r} has no compute-optimal frontier")
    return {"N_opt": n, "D_opt": d, "L_opt": loss, "tokens_per_param": d / n}


def has_frontier(form: str) -> bool:
    return form in ("chinchilla", "kaplan_nd", "power_law")


def has_loss_surface(form: str) -> bool:
    return form in ("chinchilla", "kaplan_nd")


def predicted_loss(result: FitResult, N, D):
    """L(N, D) from a fit with a loss surface."""
    form = result.spec.form
    if form == "chinchilla":
        return chinchilla_loss(result.params, np.asarray(N, float), np.asarray(D, float))
    if form == "kaplan_nd":
        return kaplan_nd_loss(result.params, np.asarray(N, float), np.asarray(D, float))
    raise ValueError(f"a {result.spec.method} fit ({form}) predicts N_opt(C), not L(N, D)")


def optimum(result: FitResult, C) -> dict:
    """Point estimates at budget(s) C."""
    return optimum_from_params(result.spec.form, result.params, C)


def optimum_intervals(result: FitResult, C, level: float | None = None) -> dict[str, tuple]:
    """Bootstrap percentile intervals of N_opt, D_opt, L_opt, D/N at budget(s) C; {} if not resampled."""
    if not result.samples:
        return {}
    level = level if level is not None else (result.bootstrap or {}).get("level", 0.95)
    samples = {k: np.asarray(v, float)[:, None] for k, v in result.samples.items()}
    at = optimum_from_params(result.spec.form, samples, np.atleast_1d(np.asarray(C, float))[None, :])
    lo, hi = 50 * (1 - level), 50 * (1 + level)
    out = {}
    for name, values in at.items():
        if np.all(np.isnan(values)):
            continue
        out[name] = (np.nanpercentile(values, lo, axis=0), np.nanpercentile(values, hi, axis=0))
    return out


def default_budgets(C_max: float) -> list[float]:
    """Budgets to report predictions at: the largest budget in the data, then 10x, 100x, 1000x it."""
    return [float(f"{C_max * 10 ** k:.1e}") for k in range(4)]


def predictions(result: FitResult, budgets) -> list[dict[str, float]]:
    """One row per budget: point estimates, and percentile bounds when bootstrapped."""
    budgets = np.asarray(budgets, float)
    point = optimum(result, budgets)
    bounds = optimum_intervals(result, budgets)
    rows = []
    for i, c in enumerate(budgets):
        row = {"C": float(c)}
        for name, values in point.items():
            v = float(np.asarray(values)[i]) if np.ndim(values) else float(values)
            if np.isnan(v):
                continue
            row[name] = v
            if name in bounds:
                row[f"{name}_lo"] = float(np.asarray(bounds[name][0])[i])
                row[f"{name}_hi"] = float(np.asarray(bounds[name][1])[i])
        rows.append(row)
    return rows
