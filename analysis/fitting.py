"""One entry point for every method: `fit(table, method, **options) -> FitResult`, and the registry of
methods (how each fits, refits a bootstrap replicate, resamples, and is titled) that every caller uses."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import warnings

import numpy as np

from analysis import diagnostics, frontier
from analysis.loading import RunTable
from analysis.result import FitResult
from scaling.errors import DataError


@dataclasses.dataclass(frozen=True)
class Method:
    """A fitting method. `resample` is how its bootstrap draws replicates: "cases" resamples runs (the
    units are exchangeable), "residuals" keeps the design (the sizes at each budget) and resamples the
    misfit, for methods whose estimate needs every designed size present (approaches 1 and 2)."""

    name: str
    title: str
    module: str
    fit_function: str
    refit_function: str
    resample: str = "cases"

    def fitter(self):
        return getattr(importlib.import_module(self.module), self.fit_function)

    def refitter(self):
        return getattr(importlib.import_module(self.module), self.refit_function)

    def options(self) -> set[str]:
        return set(inspect.signature(self.fitter()).parameters) - {"table"}


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("parametric", "Approach 3: parametric L(N, D) = E + A/N^alpha + B/D^beta", "analysis.parametric",
           "fit_parametric", "refit_parametric"),
    Method("vpnls", "Approach 3 (VPNLS): parametric L(N, D), variable projection", "analysis.parametric",
           "fit_vpnls", "refit_vpnls"),
    Method("isoflop", "Approach 2: isoFLOP parabolas, then power laws", "analysis.isoflop", "fit_isoflop",
           "refit_isoflop", resample="residuals"),
    Method("envelope", "Approach 1: lower envelope of loss against compute", "analysis.envelope", "fit_envelope",
           "refit_envelope", resample="residuals"),
    Method("kaplan", "Kaplan et al. (2020) form", "analysis.kaplan", "fit_kaplan", "refit_kaplan"),
)}


def method(name: str) -> Method:
    if name not in METHODS:
        raise DataError(f"unknown method {name!r}; use one of {', '.join(METHODS)}")
    return METHODS[name]


def refitter(name: str):
    """The batched refit used by the bootstrap: (fit_table, weights_RxN, result) -> {param: array_R}."""
    return method(name).refitter()


def fit(table: RunTable, method_name: str = "parametric", **options) -> FitResult:
    """Fit `method_name` to `table`, with its diagnostics. Options not taken by that method are an error
    (not silently ignored)."""
    m = method(method_name)
    accepted = m.options()
    unknown = sorted(k for k, v in options.items() if k not in accepted and v is not None)
    if unknown:
        raise DataError(f"method {method_name!r} takes no option(s) {unknown}; it takes {sorted(accepted)}")
    if m.name in SURFACE_METHODS and options.get("form", "nd") == "nd":
        check_surface_data(table, m.name)
    with quiet_numerics():
        result = m.fitter()(table, **{k: v for k, v in options.items() if v is not None})
        return finish(result, fitted_rows(table, result))


SURFACE_METHODS = ("parametric", "vpnls", "kaplan")
ONE_BUDGET = 1.25  # max C / min C below which all runs sit on one budget


def check_surface_data(table: RunTable, name: str) -> None:
    """Refuse tables from which no L(N, D) surface can be identified, before fitting one to them."""
    pairs = len({(n, d) for n, d in zip(table.N.tolist(), table.D.tolist())})
    if pairs < 6:
        raise DataError(f"{name}: only {pairs} distinct (N, D) point(s) among {len(table)} rows (the rest repeat "
                        "them); an L(N, D) surface needs at least 6 distinct points")
    for var, values, what in (("N", table.N, "model size"), ("D", table.D, "token count")):
        if len(np.unique(values)) < 2:
            raise DataError(f"{name}: every run has the same {what} {var} = {values[0]:.4g}, so the surface's "
                            f"{var} term cannot be fitted; train at least 3 {what}s, or fit a one-variable law "
                            "(--method kaplan --kaplan-form n|d|c)")
    if table.C.max() / table.C.min() < ONE_BUDGET:
        raise DataError(f"{name}: every run is at one compute budget (C = {table.C.min():.3g} to {table.C.max():.3g}); "
                        "along one budget N and D move together, so the surface's N and D terms cannot be told "
                        "apart; train at least 2 budgets, or use --method isoflop with several budgets")


def finish(result: FitResult, fit_table: RunTable) -> FitResult:
    """Record what later steps need (range, vocabulary, loss label, scatter) and run the checks."""
    spec = dataclasses.replace(result.spec, loss_label=fit_table.loss_label, vocab_size=fit_table.vocab_size)
    result = dataclasses.replace(result, spec=spec, fit_range=diagnostics.fit_range(fit_table))
    if frontier.has_loss_surface(spec.form):
        details = {**result.details, "log_residual_sd": diagnostics.log_residual_sd(result, fit_table)}
        result = dataclasses.replace(result, details=details)
    found = diagnostics.diagnose(result, fit_table)
    return dataclasses.replace(result, diagnostics=tuple(result.diagnostics) + found)


def fitted_rows(table: RunTable, result: FitResult) -> RunTable:
    """The rows the fit used: the table it was given, less the rows it dropped."""
    if table.data_hash != result.spec.data_hash:
        raise DataError(f"this table (hash {table.data_hash}) is not the one the fit used "
                        f"({result.spec.data_hash}); load the same data with the same options")
    return table.subset(~np.isin(table.labels, list(result.spec.dropped)))


class quiet_numerics:
    """Overflow in a wild start or replicate is expected and handled (it shows as inf and is rejected):
    keep numpy's RuntimeWarnings off the user's terminal; the diagnostics say what matters."""

    def __enter__(self):
        self._err = np.seterr(all="ignore")
        self._warn = warnings.catch_warnings()
        self._warn.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)
        return self

    def __exit__(self, *exc):
        self._warn.__exit__(*exc)
        np.seterr(**self._err)
        return False
