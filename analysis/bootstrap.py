"""Bootstrap uncertainty for any fit: resample runs with replacement, refit, take percentiles.

A resample is a row of weights (how often each point was drawn), so every method refits all
replicates in one batched call (the JAX methods solve replicates x starts as one pool of tasks).
When a run contributes several rows (checkpoints, cooldown branches of one parent run), whole runs
are resampled: the unit is `RunTable.group`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from analysis import frontier
from analysis.fit import refitter
from analysis.load import RunTable
from analysis.result import FitResult
from scaling.errors import DataError


def resample_weights(groups: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n x len(groups) draw counts: groups drawn with replacement, each row weighted by its group's count."""
    rng = np.random.default_rng(seed)
    unique, index = np.unique(groups, return_inverse=True)
    counts_RxG = rng.multinomial(len(unique), np.full(len(unique), 1.0 / len(unique)), size=n)
    return counts_RxG[:, index].astype(float)


def fitted_table(table: RunTable, result: FitResult) -> RunTable:
    """The rows the fit used: the table it was given, less the rows it dropped."""
    if table.data_hash != result.spec.data_hash:
        raise DataError(f"this table (hash {table.data_hash}) is not the one the fit used "
                        f"({result.spec.data_hash}); load the same data with the same options")
    return table.subset(~np.isin(table.labels, list(result.spec.dropped)))


def bootstrap(table: RunTable, result: FitResult, n: int = 1000, seed: int = 0, level: float = 0.95,
              predict_at=None) -> FitResult:
    """`result` with percentile intervals for every parameter and derived quantity, the replicates'
    parameters (`samples`) and predictions of N_opt, D_opt, L_opt at `predict_at` with intervals."""
    if n < 2:
        raise DataError(f"--bootstrap needs at least 2 resamples, got {n}")
    if not 0 < level < 1:
        raise DataError(f"interval level must be between 0 and 1, got {level}")
    fit_table = fitted_table(table, result)
    unit = "run" if fit_table.has_repeated_groups() else "row"
    weights = resample_weights(fit_table.group, n, seed)
    raw = refitter(result.spec.method)(fit_table, weights, result)
    samples = {k: np.asarray(raw[k], float) for k in result.params}
    ok = np.all([np.isfinite(v) for v in samples.values()], axis=0)
    if ok.sum() < 2:
        raise DataError(f"bootstrap: only {int(ok.sum())} of {n} refits succeeded; the fit is too fragile "
                        "to resample")
    samples = {k: v[ok] for k, v in samples.items()}
    lo, hi = 50 * (1 - level), 50 * (1 + level)
    named = {**samples, **_derived(result, samples)}
    intervals = {k: (float(np.percentile(v, lo)), float(np.percentile(v, hi))) for k, v in named.items()}
    info = {"n": n, "n_ok": int(ok.sum()), "seed": seed, "level": level, "unit": unit,
            "n_units": int(len(np.unique(fit_table.group))),
            "sd": {k: float(np.std(v, ddof=1)) for k, v in named.items()}}
    out = dataclasses.replace(result, intervals=intervals, bootstrap=info,
                              samples={k: v.tolist() for k, v in samples.items()})
    if frontier.has_frontier(result.spec.form):
        budgets = predict_at if predict_at is not None else frontier.default_budgets(float(fit_table.C.max()))
        out = dataclasses.replace(out, predictions=frontier.predictions(out, budgets))
    return out


def _derived(result: FitResult, samples: dict) -> dict:
    if result.spec.form == "chinchilla":
        from analysis.parametric import derived_from_samples
        return derived_from_samples(samples)
    if result.spec.form.startswith("kaplan"):
        from analysis.kaplan import derived_from_samples
        return derived_from_samples(samples)
    return {}
