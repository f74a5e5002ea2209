"""Bootstrap uncertainty for any fit: draw replicates, refit, take percentiles of the usable refits.

Two schemes, chosen per method by the registry (analysis.fitting.METHODS):
  * cases (approach 3, VPNLS, Kaplan): runs drawn with replacement. A resample is a row of weights
    (how often each point was drawn), so every method refits all replicates in one batched call (the
    JAX methods solve replicates x starts as one pool of tasks). When a run contributes several rows
    (checkpoints, cooldown branches of one parent run), whole runs are resampled (`RunTable.group`).
  * residuals (approaches 1 and 2): the design is kept (every size trained at every budget) and the
    misfit about each budget's parabola (each size's learning curve) is resampled. Drawing runs would
    drop sizes, and a budget left with 2 distinct sizes has no parabola: on a 4-size sweep most
    replicates failed that way, and the survivors were not a random sample of the rest.
"""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np

from analysis import diagnostics, frontier
from analysis.fitting import fitted_rows, method, quiet_numerics
from analysis.loading import RunTable
from analysis.result import FitResult
from scaling.errors import DataError


def resample_weights(groups: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n x len(groups) draw counts: groups drawn with replacement, each row weighted by its group's count."""
    rng = np.random.default_rng(seed)
    unique, index = np.unique(groups, return_inverse=True)
    counts_RxG = rng.multinomial(len(unique), np.full(len(unique), 1.0 / len(unique)), size=n)
    return counts_RxG[:, index].astype(float)


def bootstrap(table: RunTable, result: FitResult, n: int = 1000, seed: int = 0, level: float = 0.95,
              predict_at=None, resample: str | None = None) -> FitResult:
    """`result` with percentile intervals for every parameter and derived quantity, the usable replicates'
    parameters (`samples`) and predictions of N_opt, D_opt, L_opt at `predict_at` with intervals.

    A replicate counts as failed when its refit is not finite or is `invalid` by the same checks as a fit
    (analysis.diagnostics.valid_samples); every interval states how many of n survived, and when more
    than 5% failed the intervals are marked unreliable (`bootstrap["reliable"]` false, a diagnostic)."""
    if n < 2:
        raise DataError(f"--bootstrap needs at least 2 resamples, got {n}")
    if not 0 < level < 1:
        raise DataError(f"interval level must be between 0 and 1, got {level}")
    fit_table = fitted_rows(table, result)
    scheme = resample or method(result.spec.method).resample
    with quiet_numerics():
        samples, unit = _replicates(fit_table, result, n, seed, scheme)
        derived = _derived(result, samples)
        ok = diagnostics.valid_samples(result, samples, derived)
    n_ok = int(ok.sum())
    if n_ok < 2:
        raise DataError(f"bootstrap: only {n_ok} of {n} refits gave a usable fit; the fit is too fragile to "
                        "resample (see its diagnostics)")
    named = {k: v[ok] for k, v in {**samples, **derived}.items()}
    lo, hi = 50 * (1 - level), 50 * (1 + level)
    intervals = {k: (float(np.percentile(v, lo)), float(np.percentile(v, hi))) for k, v in named.items()}
    # Intervals of an invalid fit describe the valid refits, not the fit: never present them as reliable.
    reliable = (n - n_ok) <= diagnostics.UNRELIABLE_FAILURES * n and not diagnostics.has_invalid(result.diagnostics)
    info = {"n": n, "n_ok": n_ok, "n_failed": n - n_ok, "reliable": bool(reliable), "seed": seed, "level": level,
            "scheme": scheme, "unit": unit, "n_units": int(len(np.unique(fit_table.group))),
            "sd": {k: float(np.std(v, ddof=1)) for k, v in named.items()}}
    kept = tuple(d for d in result.diagnostics if d["code"] not in BOOTSTRAP_CODES)
    out = dataclasses.replace(result, intervals=intervals, bootstrap=info,
                              samples={k: v[ok].tolist() for k, v in samples.items()},
                              diagnostics=kept + diagnostics.bootstrap_diagnostics(n, n_ok, level, intervals, result))
    if frontier.has_frontier(result.spec.form):
        budgets = predict_at if predict_at is not None else frontier.default_budgets(float(fit_table.C.max()))
        out = dataclasses.replace(out, predictions=frontier.predictions(out, budgets))
    return out


BOOTSTRAP_CODES = ("bootstrap_unreliable", "a_interval_wide", "intervals_of_invalid_fit", "estimate_outside_interval")


def _replicates(fit_table: RunTable, result: FitResult, n: int, seed: int, scheme: str):
    """Refit parameters of n replicates ({param: array_n}) and the unit resampled."""
    m = method(result.spec.method)
    if scheme == "residuals":
        replicate_losses = getattr(importlib.import_module(m.module), "replicate_losses")
        loss_RxN = replicate_losses(fit_table, result, n, seed)
        raw = m.refitter()(fit_table, np.ones((n, len(fit_table))), result, loss_RxN=loss_RxN)
        unit = "residual"
    elif scheme == "cases":
        unit = "run" if fit_table.has_repeated_groups() else "row"
        raw = m.refitter()(fit_table, resample_weights(fit_table.group, n, seed), result)
    else:
        raise DataError(f"unknown bootstrap scheme {scheme!r}; use 'cases' or 'residuals'")
    return {k: np.asarray(raw[k], float) for k in result.params}, unit


def _derived(result: FitResult, samples: dict) -> dict:
    if result.spec.form == "chinchilla":
        from analysis.parametric import derived_from_samples
        return derived_from_samples(samples)
    if result.spec.form.startswith("kaplan"):
        from analysis.kaplan import derived_from_samples
        return derived_from_samples(samples)
    return {}
