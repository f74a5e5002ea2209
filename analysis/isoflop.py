"""Approach 2 (isoFLOP profiles): per budget, a parabola in log N (and one in log D); their minima; then
power laws N_opt = k_N C^a and D_opt = k_D C^b over budgets. (The two parabolas are fitted
independently, so a + b need not be 1 when C is not 6ND; `allocate` takes D = C / (6 N_opt) to stay on
budget.)

A budget's minimum is only a measurement when it lies among the sizes trained at that budget: a minimum
beyond them is an extrapolation of the parabola, and a few such budgets can move a far from the truth.
So budgets whose minimum lies outside their sizes, or whose parabola opens downwards, are left out by
default, each named in a diagnostic (`keep_extrapolated` keeps the outside ones). `window` fits each
parabola to the K sizes nearest the budget's lowest loss, where a parabola in log N is a fair
approximation of the profile.

Budgets come from the table's `budget` column (sweeps record each run's nominal budget), else the nearest
of `budgets` in log space, else clusters of runs whose sorted C values lie within `budget_tolerance` of
their neighbours; a cluster's nominal budget is its geometric mean (never a rounded value, which would
move a and b). Parabola variants: "loss" fits L against log N (Hoffmann et al.), "log_loss" log L.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from analysis.diagnostics import RESIDUAL_RMS_WARNING, WARNING, diagnostic
from analysis.loading import RunTable, drop_highest_loss
from analysis.powerlaw import fit_power_law
from analysis.result import FitResult, FitSpec
from scaling.errors import DataError

PARABOLAS = ("loss", "log_loss")
MIN_POINTS = 3  # a parabola has 3 coefficients
BUDGET_TOLERANCE = 0.25
POWER_LAW_SCATTER = 0.25  # log RMS of the minima about the N_opt(C) power law (about 28%)


@dataclasses.dataclass(frozen=True)
class Options:
    parabola: str = "loss"
    window: int | None = None
    keep_extrapolated: bool = False


def nominal_budgets(table: RunTable, budgets=None, tolerance: float = BUDGET_TOLERANCE) -> tuple[np.ndarray, str]:
    """Nominal budget per row and how it was found."""
    if np.isfinite(table.budget).all():
        return table.budget.copy(), "budget column" + (" (--budgets ignored: the table records each run's budget)"
                                                       if budgets is not None else "")
    logc = np.log(table.C)
    if budgets is not None:
        nominal = np.asarray(sorted(budgets), float)
        pick = np.argmin(np.abs(logc[:, None] - np.log(nominal)[None, :]), axis=1)
        return nominal[pick], "snapped to the nearest given budget"
    if not tolerance > 0:
        raise DataError(f"--budget-tolerance must be > 0, got {tolerance}")
    order = np.argsort(logc)
    cluster = np.zeros(len(logc), int)
    cluster[order] = np.concatenate([[0], np.cumsum(np.diff(logc[order]) > np.log1p(tolerance))])
    out = np.empty(len(logc))
    for c in np.unique(cluster):
        members = cluster == c
        out[members] = float(np.exp(np.mean(logc[members])))
    return out, f"clusters of runs whose C lie within {tolerance:.0%} of a neighbour, each at its geometric mean"


def parabola_minimum(x, y, weights=None) -> tuple[float, float] | None:
    """(x_min, y_min) of the least-squares parabola, or None when it opens downwards."""
    coef = _parabola(x, y, weights)
    if coef is None:
        return None
    c2, c1, c0 = coef
    return float(-c1 / (2 * c2)), float(c0 - c1 * c1 / (4 * c2))


def _parabola(x, y, weights=None):
    w = np.ones_like(x) if weights is None else weights
    c2, c1, c0 = np.polyfit(x, y, 2, w=np.sqrt(w))
    return (c2, c1, c0) if c2 > 0 else None


def fit_isoflop(table: RunTable, budgets=None, parabola: str = "loss", drop_highest: int = 0,
                window: int | None = None, keep_extrapolated: bool = False,
                budget_tolerance: float = BUDGET_TOLERANCE) -> FitResult:
    """Approach 2 on a table of isoFLOP runs; each budget needs >= 3 distinct model sizes."""
    if parabola not in PARABOLAS:
        raise DataError(f"unknown parabola variant {parabola!r}; use one of {PARABOLAS}")
    if window is not None and window < MIN_POINTS:
        raise DataError(f"--window {window}: a parabola needs at least {MIN_POINTS} points")
    opts = Options(parabola, window, keep_extrapolated)
    fit_table, dropped = drop_highest_loss(table, drop_highest)
    nominal, how = nominal_budgets(fit_table, budgets, budget_tolerance)
    rows = profiles(fit_table, nominal, opts, np.ones(len(fit_table)))
    params = power_laws(rows, raise_why=True)
    used = [r for r in rows if r["used"]]
    found = tuple(budget_diagnostics(rows, opts)) + tuple(misfit_diagnostics(rows, params))
    if len(used) == 2:
        found += (diagnostic("two_budgets", WARNING, "power laws through 2 budgets pass exactly through both "
                             "minima: nothing checks the power-law form; train a third budget"),)
    spec = FitSpec(method="isoflop", form="power_law", loss="ols_loglog", delta=None, init_grid=None,
                   n_convention=table.n_convention, flops=table.flops, data_hash=table.data_hash,
                   n_points=int(sum(r["n_points"] for r in used)), dropped=dropped, d_derived=table.d_derived,
                   source=table.source,
                   options={"parabola": parabola, "budgets": how, "drop_highest": drop_highest, "window": window,
                            "keep_extrapolated": keep_extrapolated, "budget_tolerance": budget_tolerance,
                            "given_budgets": None if budgets is None else [float(b) for b in budgets]})
    return FitResult(spec=spec, params=params, derived={"a": params["a"], "b": params["b"]},
                     details={"per_budget": [_public(r) for r in rows], "n_power_law_points": len(used)},
                     notes=table.notes, diagnostics=found)


def _options(result: FitResult) -> Options:
    o = result.spec.options
    return Options(o.get("parabola", "loss"), o.get("window"), bool(o.get("keep_extrapolated", False)))


def refit_isoflop(fit_table: RunTable, weights_RxN: np.ndarray, result: FitResult,
                  loss_RxN: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Approach 2 once per replicate (a weight row, or a row of resampled losses), with the fit's own
    rules; NaN where a replicate is left with fewer than 2 usable budgets."""
    o = result.spec.options
    nominal, _ = nominal_budgets(fit_table, o.get("given_budgets"), o.get("budget_tolerance", BUDGET_TOLERANCE))
    opts = _options(result)
    out = {k: np.full(len(weights_RxN), np.nan) for k in ("k_N", "a", "k_D", "b")}
    for i, w in enumerate(weights_RxN):
        table = fit_table if loss_RxN is None else dataclasses.replace(fit_table, loss=loss_RxN[i])
        params = power_laws(profiles(table, nominal, opts, w))
        if params is not None:
            for k in out:
                out[k][i] = params[k]
    return out


def replicate_losses(fit_table: RunTable, result: FitResult, n: int, seed: int) -> np.ndarray:
    """n resampled loss vectors with the design fixed: each budget's parabola plus pooled residuals.

    Residuals are log(observed / parabola), scaled by sqrt(m / (m - 3)) for a budget of m points (a
    parabola through 3 points leaves no residual; those budgets lend no noise to the pool)."""
    o = result.spec.options
    nominal, _ = nominal_budgets(fit_table, o.get("given_budgets"), o.get("budget_tolerance", BUDGET_TOLERANCE))
    fitted, pool = parabola_fits(fit_table, nominal, _options(result))
    if len(pool) < 3:
        raise DataError("approach 2's bootstrap resamples parabola residuals, and no budget has more than 3 "
                        "sizes to leave one; train 4 or more sizes per budget")
    rng = np.random.default_rng(seed)
    draws_RxN = rng.choice(pool, size=(n, len(fit_table)), replace=True)
    return fitted[None, :] * np.exp(draws_RxN)


def parabola_fits(table: RunTable, nominal: np.ndarray, opts: Options) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the loss its budget's parabola gives (the observed loss where there is none, or outside
    the window), and the pool of scaled log residuals."""
    fitted, pool = np.array(table.loss, float), []
    for c in np.unique(nominal):
        idx = _window(table, np.nonzero(nominal == c)[0], opts.window)
        if len(np.unique(table.N[idx])) < MIN_POINTS:
            continue
        x, y = np.log(table.N[idx]), _y(table.loss[idx], opts.parabola)
        coef = np.polyfit(x, y, 2)
        yhat = np.polyval(coef, x)
        fitted[idx] = yhat if opts.parabola == "loss" else np.exp(yhat)
        if len(idx) > MIN_POINTS and np.all(fitted[idx] > 0):
            r = np.log(table.loss[idx] / fitted[idx])
            pool.extend(r * np.sqrt(len(idx) / (len(idx) - MIN_POINTS)))
    return fitted, np.asarray(pool)


def profiles(table: RunTable, nominal: np.ndarray, opts: Options, w: np.ndarray) -> list[dict]:
    """One row per budget: its parabolas' minima and whether the budget is used."""
    rows = []
    for c in np.unique(nominal):
        idx = np.nonzero((nominal == c) & (w > 0))[0]
        rows.append(_profile(table, float(c), _window(table, idx, opts.window), opts, w))
    return rows


def _window(table: RunTable, idx: np.ndarray, window: int | None) -> np.ndarray:
    """The `window` points nearest (in log N) the budget's minimum: the vertex of the parabola through all
    its points when that lies among them, else the lowest loss. All points without a window."""
    if window is None or len(idx) <= window:
        return idx
    log_n = np.log(table.N[idx])
    centre = log_n[np.argmin(table.loss[idx])]
    if len(np.unique(log_n)) >= MIN_POINTS:
        vertex = parabola_minimum(log_n, table.loss[idx])
        if vertex is not None and log_n.min() <= vertex[0] <= log_n.max():
            centre = vertex[0]
    return np.sort(idx[np.argsort(np.abs(log_n - centre), kind="stable")[:window]])


def _y(loss, parabola):
    return loss if parabola == "loss" else np.log(loss)


def _profile(table: RunTable, c: float, idx: np.ndarray, opts: Options, w: np.ndarray) -> dict:
    n_sizes = len(np.unique(table.N[idx]))
    row = {"C": c, "n_points": int(len(idx)), "n_sizes": n_sizes, "used": False}
    if n_sizes < MIN_POINTS:
        return {**row, "reason": "too_few_sizes"}
    y = _y(table.loss[idx], opts.parabola)
    # Each run's tokens scaled onto the nominal budget: a run a little off budget (digitised points, or
    # FLOPs matched within 1%) then sits on the budget's isoFLOP line, and the N and D profiles agree.
    log_n, log_d = np.log(table.N[idx]), np.log(table.D[idx] * c / table.C[idx])
    at_n = parabola_minimum(log_n, y, w[idx])
    at_d = parabola_minimum(log_d, y, w[idx])
    row.update(N_min=float(np.exp(log_n.min())), N_max=float(np.exp(log_n.max())))
    if at_n is None or at_d is None:
        return {**row, "reason": "opens_downwards"}
    inside = bool(log_n.min() <= at_n[0] <= log_n.max())
    fitted = np.polyval(np.polyfit(log_n, y, 2, w=np.sqrt(w[idx])), log_n)
    misfit = (table.loss[idx] / (fitted if opts.parabola == "loss" else np.exp(fitted))) - 1.0
    row["parabola_rms"] = float(np.sqrt(np.mean(misfit ** 2)))
    row.update(N_opt=float(np.exp(at_n[0])), D_opt=float(np.exp(at_d[0])), inside_range=inside,
               L_min=at_n[1] if opts.parabola == "loss" else float(np.exp(at_n[1])))
    if not inside and not opts.keep_extrapolated:
        return {**row, "reason": "minimum_outside_sizes"}
    return {**row, "used": True, "reason": None if inside else "minimum_outside_sizes"}


def power_laws(rows: list[dict], raise_why: bool = False) -> dict[str, float] | None:
    """N_opt(C) and D_opt(C) through the used budgets; None (or an error naming why) with fewer than 2."""
    used = [r for r in rows if r["used"]]
    if len(used) < 2:
        if not raise_why:
            return None
        why = "; ".join(_why(r) for r in rows if not r["used"])
        keep = any(r["reason"] == "minimum_outside_sizes" for r in rows)
        raise DataError(f"approach 2 needs at least 2 budgets with {MIN_POINTS} or more sizes whose parabola has a "
                        f"minimum among the sizes trained; got {len(used)} of {len(rows)} ({why}). Train sizes on "
                        "both sides of each budget's optimum" + (" (or pass --keep-extrapolated to use extrapolated "
                                                                  "minima, at the cost of a biased a)" if keep else ""))
    C = [r["C"] for r in used]
    k_N, a = fit_power_law(C, [r["N_opt"] for r in used], what="N_opt(C)")
    k_D, b = fit_power_law(C, [r["D_opt"] for r in used], what="D_opt(C)")
    return {"k_N": k_N, "a": a, "k_D": k_D, "b": b}


def _why(row: dict) -> str:
    c = f"budget {row['C']:.3g}"
    if row["reason"] == "too_few_sizes":
        return f"{c}: {row['n_sizes']} distinct size(s), a parabola needs {MIN_POINTS}"
    if row["reason"] == "opens_downwards":
        return f"{c}: the parabola opens downwards (no minimum among these sizes)"
    side = "below the smallest" if row["N_opt"] < row["N_min"] else "above the largest"
    edge = row["N_min"] if row["N_opt"] < row["N_min"] else row["N_max"]
    factor = max(row["N_opt"] / row["N_max"], row["N_min"] / row["N_opt"])
    return f"{c}: the minimum N = {row['N_opt']:.3g} lies {factor:.2f}x {side} size trained ({edge:.3g})"


def budget_diagnostics(rows: list[dict], opts: Options) -> list[dict]:
    out = []
    for row in rows:
        if row["reason"] is None:
            continue
        if row["reason"] == "minimum_outside_sizes":
            what = ("kept (--keep-extrapolated): an extrapolated minimum biases a" if row["used"] else
                    "budget left out (--keep-extrapolated keeps it)")
            out.append(diagnostic("minimum_outside_sizes", WARNING, f"{_why(row)}; {what}"))
        elif row["reason"] == "opens_downwards":
            out.append(diagnostic("parabola_opens_downwards", WARNING, f"{_why(row)}; budget left out"))
        else:
            out.append(diagnostic("too_few_sizes", WARNING, f"{_why(row)}; budget left out"))
    return out


def misfit_diagnostics(rows: list[dict], params: dict) -> list[dict]:
    """How badly the parabolas miss their budgets' runs, and the power law its minima."""
    out = []
    for row in rows:
        if row["used"] and row.get("parabola_rms", 0.0) > RESIDUAL_RMS_WARNING:
            out.append(diagnostic("parabola_misfit", WARNING, f"budget {row['C']:.3g}: the parabola misses its runs "
                                  f"by {row['parabola_rms']:.1%} RMS: the profile is not parabolic over these sizes "
                                  "(--window K fits it nearer the minimum)"))
    used = [r for r in rows if r["used"]]
    if len(used) >= 3:
        C = np.array([r["C"] for r in used])
        scatter = np.log([r["N_opt"] for r in used]) - np.log(params["k_N"] * C ** params["a"])
        rms = float(np.sqrt(np.sum(scatter ** 2) / (len(used) - 2)))
        if rms > POWER_LAW_SCATTER:
            out.append(diagnostic("power_law_scatter", WARNING, f"the budgets' minima scatter about N_opt = k C^a "
                                  f"by {rms:.0%} (log RMS {rms:.2f}): the power law describes them loosely"))
    return out


def _public(row: dict) -> dict:
    return {k: v for k, v in row.items() if v is not None or k == "reason"}
