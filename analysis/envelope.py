"""Approach 1: the lower envelope of loss against compute over model sizes, then power laws.

Each model size's runs (several token counts, or checkpoints) give a curve of loss against log C,
interpolated linearly between its points. On a grid of budgets, the size with the lowest interpolated
loss among sizes whose curve covers that budget is compute-optimal there, provided a smaller and a
larger covering size lose to it (else the optimum may lie outside the sizes trained: left out);
N_opt = k_N C^a and D_opt = k_D C^b are fitted over those envelope points, with D read off the winning
size's own curve. Sizes with a single point give no curve and are left out (said in the notes).

The bootstrap keeps the design (which sizes were trained at which budgets) and resamples the misfit:
resampling runs would drop sizes from the envelope, and with them the budgets they cover, so most
replicates of a small sweep would fail for reasons that have nothing to do with noise in the losses.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from analysis.loading import RunTable, drop_highest_loss
from analysis.powerlaw import fit_power_law
from analysis.result import FitResult, FitSpec
from scaling.errors import DataError

GRID_POINTS = 64


def fit_envelope(table: RunTable, drop_highest: int = 0, grid_points: int = GRID_POINTS) -> FitResult:
    fit_table, dropped = drop_highest_loss(table, drop_highest)
    points, notes = _envelope(fit_table, np.ones(len(fit_table), bool), grid_points)
    params = _power_laws(points)
    spec = FitSpec(method="envelope", form="power_law", loss="ols_loglog", delta=None, init_grid=None,
                   n_convention=table.n_convention, flops=table.flops, data_hash=table.data_hash,
                   n_points=len(fit_table), dropped=dropped, d_derived=table.d_derived, source=table.source,
                   options={"grid_points": grid_points, "drop_highest": drop_highest})
    winners = sorted({float(n) for n in points["N"]})
    return FitResult(spec=spec, params=params, derived={"a": params["a"], "b": params["b"]},
                     details={"n_envelope_points": len(points["C"]), "winning_sizes": winners,
                              "n_power_law_points": len(winners),
                                  "C_range": [float(points["C"].min()), float(points["C"].max())]},
                     notes=table.notes + tuple(notes))


def refit_envelope(fit_table: RunTable, weights_RxN: np.ndarray, result: FitResult,
                   loss_RxN: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Approach 1 on each replicate: its drawn rows (a row drawn twice adds nothing to an envelope), or
    its resampled losses."""
    out = {k: np.full(len(weights_RxN), np.nan) for k in ("k_N", "a", "k_D", "b")}
    for i, w in enumerate(weights_RxN):
        table = fit_table if loss_RxN is None else dataclasses.replace(fit_table, loss=loss_RxN[i])
        try:
            points, _ = _envelope(table, w > 0, result.spec.options["grid_points"])
            params = _power_laws(points)
        except DataError:
            continue
        for k in out:
            out[k][i] = params[k]
    return out


def replicate_losses(fit_table: RunTable, result: FitResult, n: int, seed: int) -> np.ndarray:
    """n resampled loss vectors: each size's learning curve plus residuals pooled over sizes.

    A size with 4 or more compute values is smoothed by a quadratic in (log C, log L), which follows the
    curve's bend towards its floor (a straight line does not, and the replicates' envelope then moved
    away from the data's); its residuals are scaled by sqrt(m / (m - 3)). A size with 3 values lends
    the scatter about its line to the pool but keeps its observed losses as the centre; sizes with
    fewer take the pooled noise about their observed losses."""
    fitted, pool = np.array(fit_table.loss, float), []
    for size in np.unique(fit_table.N):
        idx = np.nonzero(fit_table.N == size)[0]
        m = len(np.unique(fit_table.C[idx]))
        if m < 3:
            continue
        degree = 2 if m >= 4 else 1
        x, y = np.log(fit_table.C[idx]), np.log(fit_table.loss[idx])
        yhat = np.polyval(np.polyfit(x, y, degree), x)
        if degree == 2:
            fitted[idx] = np.exp(yhat)
        pool.extend((y - yhat) * np.sqrt(len(idx) / (len(idx) - degree - 1)))
    if len(pool) < 3:
        raise DataError("approach 1's bootstrap resamples the scatter of each size's learning curve, and no "
                        "size has 3 or more compute values; train each size at 3 or more token counts")
    draws_RxN = np.random.default_rng(seed).choice(np.asarray(pool), size=(n, len(fit_table)), replace=True)
    return fitted[None, :] * np.exp(draws_RxN)


def _envelope(table: RunTable, keep: np.ndarray, grid_points: int):
    curves, single = [], []
    for n in np.unique(table.N[keep]):
        rows = keep & (table.N == n)
        if len(np.unique(table.C[rows])) < 2:
            single.append(n)
            continue
        order = np.argsort(table.C[rows])
        curves.append((n, np.log(table.C[rows][order]), table.loss[rows][order], np.log(table.D[rows][order])))
    notes = [f"{len(single)} model size(s) with a single compute value give no curve and are left out of "
             f"approach 1 (e.g. N = {single[0]:.4g})"] if single else []
    if len(curves) < 2:
        raise DataError(f"approach 1 needs at least 2 model sizes with 2 or more runs each; got {len(curves)}")
    lo = min(c[1][0] for c in curves)
    hi = max(c[1][-1] for c in curves)
    grid = np.linspace(lo, hi, grid_points)
    loss_SxG = np.full((len(curves), grid_points), np.inf)
    logd_SxG = np.full((len(curves), grid_points), np.nan)
    for s, (_, logc, loss, logd) in enumerate(curves):
        inside = (grid >= logc[0]) & (grid <= logc[-1])
        loss_SxG[s, inside] = np.interp(grid[inside], logc, loss)
        logd_SxG[s, inside] = np.interp(grid[inside], logc, logd)
    finite = np.isfinite(loss_SxG)
    best_G = np.argmin(loss_SxG, axis=0)
    # A budget counts only when the winner has a covering size on each side: where the smallest or
    # largest size available wins, the true optimum may lie beyond the sizes trained.
    sizes_S = np.array([c[0] for c in curves])
    smaller = np.array([(finite[:, g] & (sizes_S < sizes_S[best_G[g]])).any() for g in range(grid_points)])
    larger = np.array([(finite[:, g] & (sizes_S > sizes_S[best_G[g]])).any() for g in range(grid_points)])
    covered = smaller & larger
    if covered.sum() < 2:
        raise DataError("approach 1: fewer than 2 budgets have a winning model size with smaller and larger "
                        "sizes beside it; train more sizes or each size over a wider range of tokens")
    best = best_G[covered]
    if len(np.unique(best)) < 2:
        raise DataError(f"approach 1: the same size (N = {curves[best[0]][0]:.4g}) has the lowest loss at every "
                        "budget where it has smaller and larger sizes beside it, so N_opt(C) has no slope to fit; "
                        "train sizes whose optima fall at different budgets")
    cols = np.nonzero(covered)[0]
    points = {"C": np.exp(grid[covered]), "N": np.array([curves[s][0] for s in best]),
              "D": np.exp(logd_SxG[best, cols]), "loss": loss_SxG[best, cols]}
    return points, notes


def _power_laws(points) -> dict[str, float]:
    k_N, a = fit_power_law(points["C"], points["N"], what="approach 1 N_opt(C)")
    k_D, b = fit_power_law(points["C"], points["D"], what="approach 1 D_opt(C)")
    return {"k_N": k_N, "a": a, "k_D": k_D, "b": b}
