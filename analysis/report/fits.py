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
from analysis.bootstrap import bootstrap
from analysis.fit import METHODS, fit, method as fit_method
from analysis.isoflop import nominal_budgets
from analysis.load import RunTable
from analysis.result import FitResult
from scaling.errors import DataError

TITLES = {
    "parametric": "Approach 3: parametric L(N, D) = E + A/N^alpha + B/D^beta",
    "vpnls": "Approach 3 (VPNLS): parametric L(N, D), variable projection",
    "isoflop": "Approach 2: isoFLOP parabolas, then power laws",
    "envelope": "Approach 1: lower envelope of loss against compute",
    "kaplan": "Kaplan et al. (2020) form",
}
WELL_DETERMINED = 15  # points below which 5 parameters are only loosely pinned down


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
    result: Backtest | None
    error: str | None = None


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
    return entries


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
    """What a reader should know before trusting the numbers: too few points, fragile bootstrap,
    exponents at the edge, minima outside the sizes trained."""
    out = []
    spec = result.spec
    if spec.form == "chinchilla" and spec.n_points < WELL_DETERMINED:
        out.append(f"5 parameters fitted to {spec.n_points} points: the surface is barely determined; read its "
                   f"parameters and intervals as illustrative (at least {WELL_DETERMINED} points spread over "
                   "sizes and budgets pin it down)")
    if spec.form == "chinchilla":
        for name in ("alpha", "beta"):
            value = result.params[name]
            if not 0.05 <= value <= 2.0:
                out.append(f"{name} = {value:.3g} is at the edge of the plausible range (0.05-2): one of the "
                           "power-law terms is not resolved by these data")
    if result.bootstrap and result.bootstrap["n_ok"] < 0.9 * result.bootstrap["n"]:
        out.append(f"only {result.bootstrap['n_ok']} of {result.bootstrap['n']} bootstrap refits succeeded")
    if result.intervals and "a" in result.intervals:
        lo, hi = result.intervals["a"]
        if hi - lo > 0.5:
            out.append(f"the 95% interval of a is wide ([{lo:.2f}, {hi:.2f}]): the data do not pin down how N_opt "
                       "grows with compute")
    if spec.method == "isoflop":
        rows = result.details.get("per_budget", [])
        outside = [r for r in rows if "N_opt" in r and not r.get("inside_range", True)]
        for r in outside:
            out.append(f"budget {r['C']:.3g}: the parabola's minimum N = {r['N_opt']:.3g} lies outside the sizes "
                       "trained (extrapolated)")
        if sum("N_opt" in r for r in rows) == 2:
            out.append("power laws through 2 budgets pass exactly through both minima: nothing checks the "
                       "power-law form")
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


def run_backtest(table: RunTable, surface: FitResult | None, budgets=None) -> BacktestEntry:
    """Fit the surface's method on all but the largest budget (or, failing that, all but the largest
    size) and predict the held-out runs' loss."""
    if surface is None:
        return BacktestEntry(None, "no fit with an L(N, D) surface, so no loss to predict")
    method = surface.spec.method
    accepted = fit_method(method).options()
    options = {k: v for k, v in surface.spec.options.items() if k in accepted}
    if "delta" in accepted and surface.spec.delta:
        options["delta"] = surface.spec.delta
    nominal, _ = nominal_budgets(table, budgets)
    levels = np.unique(nominal)
    reasons = []
    if len(levels) >= 2:
        try:
            return BacktestEntry(backtest(table, method, by="C", cutoff=float(levels[-2]), budgets=budgets, **options))
        except DataError as err:
            reasons.append(f"holding out the largest budget: {err}")
    sizes = np.unique(table.N)
    if len(sizes) >= 2:
        try:
            return BacktestEntry(backtest(table, method, by="N", train_sizes=len(sizes) - 1, budgets=budgets,
                                          **options))
        except DataError as err:
            reasons.append(f"holding out the largest size: {err}")
    return BacktestEntry(None, "; ".join(reasons) or "a single budget and a single size: nothing to hold out")
