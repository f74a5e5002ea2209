"""Approach 2 (isoFLOP profiles): per budget, a parabola in log N (and one in log D); their minima; then
power laws N_opt = k_N C^a and D_opt = k_D C^b over budgets. (The two parabolas are fitted
independently, so a + b need not be 1; `allocate` takes D = C / (6 N_opt) to stay on budget.)

Budgets are snapped to nominal values: the table's `budget` column when it has one (sweeps record the
nominal budget of each run), else the nearest of `budgets` in log space, else clusters of log10 C split
at gaps wider than 0.15 decades, each labelled by its geometric mean rounded to one significant figure.
Parabola variants: "loss" fits L against log N (Hoffmann et al.), "log_loss" fits log L against log N.
"""

from __future__ import annotations

import numpy as np

from analysis.load import RunTable, drop_highest_loss
from analysis.powerlaw import fit_power_law
from analysis.result import FitResult, FitSpec
from scaling.errors import DataError

PARABOLAS = ("loss", "log_loss")
MIN_POINTS = 3  # a parabola has 3 coefficients


def nominal_budgets(table: RunTable, budgets=None) -> tuple[np.ndarray, str]:
    """Nominal budget per row and how it was found."""
    if np.isfinite(table.budget).all():
        return table.budget.copy(), "budget column"
    logc = np.log10(table.C)
    if budgets is not None:
        nominal = np.asarray(sorted(budgets), float)
        pick = np.argmin(np.abs(logc[:, None] - np.log10(nominal)[None, :]), axis=1)
        return nominal[pick], "snapped to the nearest given budget"
    order = np.argsort(logc)
    cluster = np.zeros(len(logc), int)
    cluster[order] = np.concatenate([[0], np.cumsum(np.diff(logc[order]) > 0.15)])
    out = np.empty(len(logc))
    for c in np.unique(cluster):
        members = cluster == c
        out[members] = float(f"{10 ** np.mean(logc[members]):.0e}")
    return out, "clusters of log C (gaps > 0.15 decades), rounded to 1 significant figure"


def parabola_minimum(x, y, weights=None) -> tuple[float, float] | None:
    """(x_min, y_min) of the least-squares parabola, or None when it opens downwards."""
    w = np.ones_like(x) if weights is None else weights
    c2, c1, c0 = np.polyfit(x, y, 2, w=np.sqrt(w))
    if not c2 > 0:
        return None
    xm = -c1 / (2 * c2)
    return float(xm), float(c0 - c1 * c1 / (4 * c2))


def fit_isoflop(table: RunTable, budgets=None, parabola: str = "loss", drop_highest: int = 0) -> FitResult:
    """Approach 2 on a table of isoFLOP runs; each budget needs >= 3 distinct model sizes."""
    if parabola not in PARABOLAS:
        raise DataError(f"unknown parabola variant {parabola!r}; use one of {PARABOLAS}")
    fit_table, dropped = drop_highest_loss(table, drop_highest)
    nominal, how = nominal_budgets(fit_table, budgets)
    rows, params = _solve(fit_table, nominal, parabola, np.ones(len(fit_table)))
    notes = table.notes + tuple(r["skipped"] for r in rows if "skipped" in r)
    spec = FitSpec(method="isoflop", form="power_law", loss="ols_loglog", delta=None, init_grid=None,
                   n_convention=table.n_convention, flops=table.flops, data_hash=table.data_hash,
                   n_points=len(fit_table), dropped=dropped, d_derived=table.d_derived, source=table.source,
                   options={"parabola": parabola, "budgets": how, "drop_highest": drop_highest,
                            "given_budgets": None if budgets is None else [float(b) for b in budgets]})
    return FitResult(spec=spec, params=params, derived={"a": params["a"], "b": params["b"]},
                     details={"per_budget": rows}, notes=notes)


def refit_isoflop(fit_table: RunTable, weights_RxN: np.ndarray, result: FitResult) -> dict[str, np.ndarray]:
    """Approach 2 once per weight row (weighted parabolas); NaN where a replicate has too few budgets."""
    budgets = result.spec.options.get("given_budgets")
    nominal, _ = nominal_budgets(fit_table, budgets)
    out = {k: np.full(len(weights_RxN), np.nan) for k in ("k_N", "a", "k_D", "b")}
    for i, w in enumerate(weights_RxN):
        try:
            _, params = _solve(fit_table, nominal, result.spec.options["parabola"], w)
        except DataError:
            continue
        for k in out:
            out[k][i] = params[k]
    return out


def _solve(table: RunTable, nominal: np.ndarray, parabola: str, w: np.ndarray):
    rows = []
    for c in np.unique(nominal):
        here = (nominal == c) & (w > 0)
        n_sizes = len(np.unique(table.N[here]))
        row = {"C": float(c), "n_points": int(here.sum())}
        if n_sizes < MIN_POINTS:
            row["skipped"] = (f"budget {c:.3g}: a parabola needs {MIN_POINTS} distinct model sizes, "
                              f"got {n_sizes}; budget skipped")
            rows.append(row)
            continue
        y = table.loss[here] if parabola == "loss" else np.log(table.loss[here])
        log_n = np.log(table.N[here])
        at_n = parabola_minimum(log_n, y, w[here])
        at_d = parabola_minimum(np.log(table.D[here]), y, w[here])
        if at_n is None:
            row["skipped"] = f"budget {c:.3g}: the parabola in log N opens downwards (no minimum); budget skipped"
        else:
            row.update(N_opt=float(np.exp(at_n[0])), L_min=at_n[1] if parabola == "loss" else float(np.exp(at_n[1])),
                       inside_range=bool(log_n.min() <= at_n[0] <= log_n.max()))
        if at_d is not None:
            row["D_opt"] = float(np.exp(at_d[0]))
        rows.append(row)
    good = [r for r in rows if "N_opt" in r]
    good_d = [r for r in rows if "D_opt" in r]
    if len(good) < 2 or len(good_d) < 2:
        raise DataError(f"approach 2 needs at least 2 budgets with {MIN_POINTS} or more model sizes and a "
                        f"parabola minimum each; got {min(len(good), len(good_d))} of {len(rows)} budgets")
    k_N, a = fit_power_law([r["C"] for r in good], [r["N_opt"] for r in good], what="N_opt(C)")
    k_D, b = fit_power_law([r["C"] for r in good_d], [r["D_opt"] for r in good_d], what="D_opt(C)")
    return rows, {"k_N": k_N, "a": a, "k_D": k_D, "b": b}
