"""The fits a report shows, each with its bootstrap, warnings and failure reason, and the backtest.

Without a given fit: approach 3 (parametric L(N, D)), approach 2 (isoFLOP parabolas) and approach 1
(lower envelope), each where the data allow it. With a given FIT.json: that fit first, plus approaches
2 and 1 (cheap), plus approach 3 when the given fit has no L(N, D) surface to draw. A fit that cannot be
made is kept as an entry with its reason, so the page says why it is missing instead of failing.
"""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np

from analysis import frontier
from analysis.backtest import Backtest, backtest
from analysis.resampling import bootstrap
from analysis.diagnostics import compare_methods
from analysis.fitting import METHODS, fit, method as fit_method
from analysis.isoflop import nominal_budgets
from analysis.loading import RunTable
from analysis.result import FitResult
from scaling.errors import DataError

TITLES = {name: m.title for name, m in METHODS.items()}


@dataclasses.dataclass(frozen=True)
class FitEntry:
    key: str  # the method, or "given"
    title: str
    result: FitResult | None = None
    error: str | None = None  # why there is no result
    warnings: tuple[str, ...] = ()
    given: bool = False


@dataclasses.dataclass(frozen=True)
class BacktestEntry:
    """The backtests by budget and by size, each with the reason when it could not be made."""

    by_budget: Backtest | None = None
    by_size: Backtest | None = None
    budget_error: str | None = None
    size_error: str | None = None

    @property
    def result(self) -> Backtest | None:
        """The one the figure and report.json's "backtest" show: by budget, else by size."""
        return self.by_budget if self.by_budget is not None else self.by_size

    @property
    def error(self) -> str | None:
        if self.result is not None:
            return None
        reasons = dict.fromkeys(e for e in (self.budget_error, self.size_error) if e)  # the same reason once
        return "; ".join(reasons) or "unknown reason"

    def splits(self) -> list[tuple[str, Backtest | None, str | None]]:
        return [("budget", self.by_budget, self.budget_error), ("size", self.by_size, self.size_error)]


def compute_fits(table: RunTable, given: FitResult | None = None, given_path: str | None = None,
                 n_boot: int = 200, seed: int = 0, drop_highest: int = 0, budgets=None) -> list[FitEntry]:
    entries = []
    if given is not None:
        entries.append(given_entry(table, given, given_path, n_boot, seed))
    methods = ["parametric", "isoflop", "envelope"]
    if given is not None:
        methods = [m for m in methods if m != given.spec.method]
        if frontier.has_loss_surface(given.spec.form):
            methods = [m for m in methods if m != "parametric"]
    for method in methods:
        options = {"drop_highest": drop_highest}
        if method == "isoflop":
            options["budgets"] = budgets
        entries.append(fit_entry(table, method, options, n_boot, seed))
    return with_comparison(entries, table)


def fit_entry(table: RunTable, method: str, options: dict, n_boot: int, seed: int) -> FitEntry:
    title = TITLES[method]
    try:
        result = fit(table, method, **options)
    except DataError as err:
        return FitEntry(method, title, error=str(err))
    result, warnings = _with_bootstrap(table, result, n_boot, seed)
    return FitEntry(method, title, result, warnings=tuple(warnings + fit_warnings(result)))


def given_entry(table: RunTable, given: FitResult, path: str | None, n_boot: int, seed: int) -> FitEntry:
    title = f"Given fit ({path or 'FIT.json'}): {TITLES.get(given.spec.method, given.spec.method)}"
    warnings = []
    if given.spec.data_hash != table.data_hash:
        warnings.append(f"this fit was made on other data (hash {given.spec.data_hash}, {given.spec.n_points} "
                        f"points of {given.spec.source}) than this report's table (hash {table.data_hash}): "
                        "residuals and the backtest compare it with these points")
    elif not given.intervals:
        given, more = _with_bootstrap(table, given, n_boot, seed)
        warnings += more
    if given.predictions is None and frontier.has_frontier(given.spec.form):
        given = dataclasses.replace(given, predictions=frontier.predictions(
            given, frontier.default_budgets(float(table.C.max()))))
    return FitEntry("given", title, given, warnings=tuple(warnings + fit_warnings(given)), given=True)


def _with_bootstrap(table: RunTable, result: FitResult, n_boot: int, seed: int) -> tuple[FitResult, list[str]]:
    budgets = frontier.default_budgets(float(table.C.max()))
    if n_boot >= 2:
        try:
            return bootstrap(table, result, n=n_boot, seed=seed, predict_at=budgets), []
        except DataError as err:
            warning = f"no bootstrap intervals: {err}"
    else:
        warning = "no bootstrap intervals (--bootstrap 0)"
    if frontier.has_frontier(result.spec.form):
        result = dataclasses.replace(result, predictions=frontier.predictions(result, budgets))
    return result, [warning]


def fit_warnings(result: FitResult) -> list[str]:
    """The fit's own diagnostics (one source for the CLI, the JSON and the page), as lines to show."""
    return [diagnostic_line(d) for d in result.diagnostics]


def diagnostic_line(d: dict) -> str:
    return f"{'INVALID' if d['severity'] == 'invalid' else 'warning'} [{d['code']}]: {d['message']}"


def with_comparison(entries: list[FitEntry], table: RunTable | None = None) -> list[FitEntry]:
    """Several methods on one table: each entry involved also shows where the exponents disagree and, with
    the table, how far the design alone moves it."""
    results = [e.result for e in entries if e.result is not None]
    compared = compare_methods(results, table)
    out = []
    for e in entries:
        method = None if e.result is None else e.result.spec.method
        mine = [diagnostic_line(d) for d in compared if method is not None and any(
            f"{method}{tail}" in d["message"] for tail in (" gives", " a =", " reads a =", " cannot be fitted"))]
        out.append(dataclasses.replace(e, warnings=e.warnings + tuple(mine)) if mine else e)
    return out


def primary(entries: list[FitEntry]) -> FitEntry | None:
    """The fit the headline numbers come from: the given one, else approach 3, else any with a frontier."""
    usable = [e for e in entries if e.result is not None and frontier.has_frontier(e.result.spec.form)]
    for key in ("given", "parametric", "vpnls", "isoflop", "envelope"):
        for e in usable:
            if e.key == key:
                return e
    return usable[0] if usable else None


def surface_entry(entries: list[FitEntry]) -> FitEntry | None:
    """The first fit with an L(N, D) surface (for the contour, residual and backtest figures)."""
    for e in entries:
        if e.result is not None and frontier.has_loss_surface(e.result.spec.form):
            return e
    return None


def entry(entries: list[FitEntry], key: str) -> FitEntry | None:
    for e in entries:
        if e.key == key or (e.result is not None and e.result.spec.method == key):
            return e
    return None


def run_backtest(table: RunTable, surface: FitResult | None, budgets=None, n_boot: int | None = None,
                 seed: int = 0) -> BacktestEntry:
    """Fit the surface's method on all but the largest budget, and on all but the largest size, and predict
    the held-out runs' loss; each with prediction intervals from `n_boot` bootstrap refits (default: as many
    as the surface's own bootstrap, so `--bootstrap 0` costs the backtest nothing either)."""
    if surface is None:
        reason = "no fit with an L(N, D) surface, so no loss to predict"
        return BacktestEntry(budget_error=reason, size_error=reason)
    method = surface.spec.method
    accepted = fit_method(method).options()
    options = {k: v for k, v in surface.spec.options.items() if k in accepted}
    if "delta" in accepted and surface.spec.delta:
        options["delta"] = surface.spec.delta
    boot = surface.bootstrap or {}
    options.update(n_boot=boot.get("n", 0) if n_boot is None else n_boot, level=boot.get("level", 0.95), seed=seed)
    nominal, _ = nominal_budgets(table, budgets)
    out = {}
    for by, count in (("budget", len(np.unique(nominal))), ("size", len(np.unique(table.N)))):
        if count < 2:
            out[f"{by}_error"] = f"a single {by}: nothing to hold out"
            continue
        try:
            out[f"by_{by}"] = backtest(table, method, by=by, budgets=budgets, **options)
        except DataError as err:
            out[f"{by}_error"] = f"holding out the largest {by}: {err}"
    return BacktestEntry(**out)
