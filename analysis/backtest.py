"""Backtests: fit on the small end of a sweep, predict the held-out large end, report the errors.

Split by budget (`by="C"`: budgets up to `cutoff` train, larger ones are held out) or by model size
(`by="N"`: the `train_sizes` smallest sizes train). Errors are relative, (predicted - observed) /
observed, for the loss at every held-out point (methods with a loss surface) and for N_opt at every
held-out budget with at least 3 model sizes (observed N_opt: the vertex of that budget's parabola).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from analysis import frontier
from analysis.fit import fit
from analysis.isoflop import nominal_budgets, parabola_minimum
from analysis.load import RunTable
from analysis.result import FitResult
from scaling.errors import DataError


@dataclasses.dataclass(frozen=True)
class Backtest:
    method: str
    split: str
    n_train: int
    n_test: int
    fit: FitResult
    loss_errors: list[dict]  # per held-out row: label, N, D, loss, predicted, rel_error
    n_opt_errors: list[dict]  # per held-out budget: C, observed, predicted, rel_error
    summary: dict

    def to_dict(self) -> dict:
        return {"method": self.method, "split": self.split, "n_train": self.n_train, "n_test": self.n_test,
                "params": self.fit.params, "derived": self.fit.derived, "loss_errors": self.loss_errors,
                "n_opt_errors": self.n_opt_errors, "summary": self.summary}


def backtest(table: RunTable, method: str = "parametric", by: str = "C", cutoff: float | None = None,
             train_sizes: int | None = None, budgets=None, **fit_options) -> Backtest:
    nominal, _ = nominal_budgets(table, budgets)
    if by == "C":
        if cutoff is None:
            raise DataError("a backtest by budget needs a cutoff: the largest budget to fit on")
        train = nominal <= cutoff
        split = f"fit on budgets <= {cutoff:.3g}, predict larger"
    elif by == "N":
        sizes = np.unique(table.N)
        if train_sizes is None or not 1 <= train_sizes < len(sizes):
            raise DataError(f"a backtest by size needs train_sizes between 1 and {len(sizes) - 1}")
        train = table.N <= sizes[train_sizes - 1]
        split = f"fit on the {train_sizes} smallest sizes, predict the {len(sizes) - train_sizes} largest"
    else:
        raise DataError(f"backtest split must be 'C' or 'N', got {by!r}")
    if train.all() or not train.any():
        raise DataError(f"backtest split ({split}) leaves {'nothing' if train.all() else 'no data'} to "
                        f"{'predict' if train.all() else 'fit on'}")
    if method == "isoflop" and budgets is not None:
        fit_options.setdefault("budgets", budgets)
    result = fit(table.subset(train), method, **fit_options)
    test = table.subset(~train)
    loss_errors = []
    if frontier.has_loss_surface(result.spec.form):
        pred = frontier.predicted_loss(result, test.N, test.D)
        loss_errors = [{"label": str(lab), "N": float(n), "D": float(d), "loss": float(obs),
                        "predicted": float(p), "rel_error": float((p - obs) / obs)}
                       for lab, n, d, obs, p in zip(test.labels, test.N, test.D, test.loss, pred)]
    n_opt_errors = _n_opt_errors(test, nominal[~train], result) if frontier.has_frontier(result.spec.form) else []
    summary = {}
    if loss_errors:
        rel = np.abs([e["rel_error"] for e in loss_errors])
        summary.update(loss_mean_abs_rel_error=float(rel.mean()), loss_max_abs_rel_error=float(rel.max()))
    if n_opt_errors:
        rel = np.abs([e["rel_error"] for e in n_opt_errors])
        summary.update(n_opt_mean_abs_rel_error=float(rel.mean()), n_opt_max_abs_rel_error=float(rel.max()))
    return Backtest(method=method, split=split, n_train=int(train.sum()), n_test=int((~train).sum()),
                    fit=result, loss_errors=loss_errors, n_opt_errors=n_opt_errors, summary=summary)


def _n_opt_errors(test: RunTable, nominal: np.ndarray, result: FitResult) -> list[dict]:
    rows = []
    for c in np.unique(nominal):
        here = nominal == c
        if len(np.unique(test.N[here])) < 3:
            continue
        vertex = parabola_minimum(np.log(test.N[here]), test.loss[here])
        if vertex is None:
            continue
        observed = float(np.exp(vertex[0]))
        predicted = float(frontier.optimum(result, c)["N_opt"])
        rows.append({"C": float(c), "observed": observed, "predicted": predicted,
                     "rel_error": (predicted - observed) / observed})
    return rows
