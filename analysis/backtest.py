"""Backtests: fit on the small end of a sweep, predict the held-out large end, report the errors.

Split by budget (`by="budget"` or "C": budgets up to `cutoff` train, larger ones are held out) or by model
size (`by="size"` or "N": the `train_sizes` smallest sizes train); without a cutoff or train_sizes the
`holdout` largest budgets (sizes) are held out. Errors are relative, (predicted - observed) / observed, for
the loss at every held-out point (methods with a loss surface) and for N_opt at every held-out budget with
at least 3 model sizes (observed N_opt: the vertex of that budget's parabola).

With `n_boot` >= 2 the training fit is bootstrapped and each held-out run gets the prediction interval of
analysis.prediction; `coverage` is the share of held-out runs inside theirs. Near the nominal level the
intervals are honest; far below it they are too narrow for extrapolating this far.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from analysis import frontier
from analysis.resampling import bootstrap
from analysis.fitting import fit
from analysis.isoflop import nominal_budgets, parabola_minimum
from analysis.loading import RunTable
from analysis.prediction import predict
from analysis.result import FitResult, _clean
from scaling.errors import DataError


@dataclasses.dataclass(frozen=True)
class Backtest:
    method: str
    split: str
    n_train: int
    n_test: int
    fit: FitResult
    loss_errors: list[dict]  # per held-out row: label, N, D, loss, predicted, rel_error (+ lo, hi, inside)
    n_opt_errors: list[dict]  # per held-out budget: C, observed, predicted, rel_error
    summary: dict  # loss_mean_abs_rel_error (MAPE), ..., coverage and coverage_level when bootstrapped
    by: str = "C"
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return _clean({"method": self.method, "by": SPLIT_NAMES[self.by], "split": self.split,
                       "n_train": self.n_train, "n_test": self.n_test, "params": self.fit.params,
                       "derived": self.fit.derived, "fit_range": self.fit.fit_range,
                       "loss_errors": self.loss_errors, "n_opt_errors": self.n_opt_errors,
                       "summary": self.summary, "notes": list(self.notes)})


SPLITS = {"C": "C", "budget": "C", "N": "N", "size": "N"}
SPLIT_NAMES = {"C": "budget", "N": "size"}


def backtest(table: RunTable, method: str = "parametric", by: str = "C", cutoff: float | None = None,
             train_sizes: int | None = None, budgets=None, holdout: int | None = None, n_boot: int = 0,
             level: float = 0.95, seed: int = 0, **fit_options) -> Backtest:
    """Fit `method` on the smaller part of `table`, predict the held-out larger part (see the module doc)."""
    if by not in SPLITS:
        raise DataError(f"backtest split must be 'budget' or 'size' (or 'C', 'N'), got {by!r}")
    by = SPLITS[by]
    if not 0 < level < 1:
        raise DataError(f"interval level must be between 0 and 1 (e.g. 0.95), got {level}")
    nominal, _ = nominal_budgets(table, budgets)
    train, split = _split(table, nominal, by, cutoff, train_sizes, holdout)
    if method == "isoflop" and budgets is not None:
        fit_options.setdefault("budgets", budgets)
    train_table, test = table.subset(train), table.subset(~train)
    result = fit(train_table, method, **fit_options)
    loss_errors, notes = [], []
    if frontier.has_loss_surface(result.spec.form):
        loss_errors = _loss_errors(train_table, test, result, n_boot, level, seed, notes)
    n_opt_errors = _n_opt_errors(test, nominal[~train], result) if frontier.has_frontier(result.spec.form) else []
    return Backtest(method=method, split=split, n_train=int(train.sum()), n_test=int((~train).sum()),
                    fit=result, loss_errors=loss_errors, n_opt_errors=n_opt_errors,
                    summary=_summary(loss_errors, n_opt_errors, level), by=by, notes=tuple(notes))


def _split(table: RunTable, nominal: np.ndarray, by: str, cutoff, train_sizes, holdout: int):
    """The training mask and a sentence saying how the table was split. By default one budget is held out,
    or the largest fifth of the sizes (an isoFLOP table has a size per run: one size would be one run)."""
    if holdout is None:
        holdout = 1 if by == "C" else max(1, round(0.2 * len(np.unique(table.N))))
    if holdout < 1:
        raise DataError(f"--holdout must be at least 1 (the number of largest budgets or sizes to hold out), "
                        f"got {holdout}")
    if by == "C":
        levels = np.unique(nominal)
        if cutoff is None:
            if holdout >= len(levels):
                raise DataError(f"holding out {holdout} of {len(levels)} budget(s) leaves no data to fit on; "
                                "hold out fewer (--holdout) or split by size")
            cutoff = float(levels[-holdout - 1])
        train = nominal <= cutoff
        split = f"fit on budgets <= {cutoff:.3g}, predict larger"
    else:
        sizes = np.unique(table.N)
        if train_sizes is None:
            train_sizes = len(sizes) - holdout
        if not 1 <= train_sizes < len(sizes):
            raise DataError(f"a backtest by size needs between 1 and {len(sizes) - 1} training size(s) of the "
                            f"{len(sizes)} in the table, got {train_sizes}; hold out fewer (--holdout)")
        train = table.N <= sizes[train_sizes - 1]
        split = f"fit on the {train_sizes} smallest sizes, predict the {len(sizes) - train_sizes} largest"
    if train.all() or not train.any():
        raise DataError(f"backtest split ({split}) leaves {'nothing' if train.all() else 'no data'} to "
                        f"{'predict' if train.all() else 'fit on'}")
    return train, split


def _loss_errors(train_table: RunTable, test: RunTable, result: FitResult, n_boot: int, level: float,
                 seed: int, notes: list) -> list[dict]:
    """Per held-out run: observed and predicted loss, and the prediction interval when bootstrapped."""
    pred = frontier.predicted_loss(result, test.N, test.D)
    rows = [{"label": str(lab), "N": float(n), "D": float(d), "loss": float(obs), "predicted": float(p),
             "rel_error": float((p - obs) / obs)}
            for lab, n, d, obs, p in zip(test.labels, test.N, test.D, test.loss, pred)]
    if n_boot < 2:
        notes.append("no coverage: the training fit was not bootstrapped (bootstrap resamples < 2)")
        return rows
    try:
        resampled = bootstrap(train_table, result, n=n_boot, seed=seed, level=level)
    except DataError as err:
        notes.append(f"no coverage: the training fit could not be bootstrapped ({err})")
        return rows
    prediction = predict(resampled, test.N, test.D, level=level, seed=seed)
    notes += [n for n in prediction.notes if not n.startswith("extrapolation unknown")]
    for row, point in zip(rows, prediction.points):
        lo, hi = point["lo"], point["hi"]
        inside = lo is not None and hi is not None and lo <= row["loss"] <= hi
        row.update(lo=lo, hi=hi, inside=bool(inside))
    return rows


def _summary(loss_errors: list[dict], n_opt_errors: list[dict], level: float) -> dict:
    summary = {}
    if loss_errors:
        rel = np.abs([e["rel_error"] for e in loss_errors])
        summary.update(loss_mean_abs_rel_error=float(rel.mean()), loss_max_abs_rel_error=float(rel.max()))
        if all("inside" in e for e in loss_errors):
            summary.update(coverage=float(np.mean([e["inside"] for e in loss_errors])), coverage_level=level)
    if n_opt_errors:
        rel = np.abs([e["rel_error"] for e in n_opt_errors])
        summary.update(n_opt_mean_abs_rel_error=float(rel.mean()), n_opt_max_abs_rel_error=float(rel.max()))
    return summary


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
