"""One entry point for every method: `fit(table, method, **options) -> FitResult`."""

from __future__ import annotations

import inspect

from analysis.load import RunTable
from analysis.result import FitResult
from scaling.errors import DataError

METHODS = ("parametric", "vpnls", "isoflop", "envelope", "kaplan")


def _fitter(method: str):
    if method == "parametric":
        from analysis.parametric import fit_parametric
        return fit_parametric
    if method == "vpnls":
        from analysis.parametric import fit_vpnls
        return fit_vpnls
    if method == "isoflop":
        from analysis.isoflop import fit_isoflop
        return fit_isoflop
    if method == "envelope":
        from analysis.envelope import fit_envelope
        return fit_envelope
    if method == "kaplan":
        from analysis.kaplan import fit_kaplan
        return fit_kaplan
    raise DataError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")


def refitter(method: str):
    """The batched refit used by the bootstrap: (fit_table, weights_RxN, result) -> {param: array_R}."""
    if method == "parametric":
        from analysis.parametric import refit_parametric
        return refit_parametric
    if method == "vpnls":
        from analysis.parametric import refit_vpnls
        return refit_vpnls
    if method == "isoflop":
        from analysis.isoflop import refit_isoflop
        return refit_isoflop
    if method == "envelope":
        from analysis.envelope import refit_envelope
        return refit_envelope
    if method == "kaplan":
        from analysis.kaplan import refit_kaplan
        return refit_kaplan
    raise DataError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")


def fit(table: RunTable, method: str = "parametric", **options) -> FitResult:
    """Fit `method` to `table`. Options not taken by that method are an error (not silently ignored)."""
    fn = _fitter(method)
    accepted = set(inspect.signature(fn).parameters) - {"table"}
    unknown = sorted(k for k, v in options.items() if k not in accepted and v is not None)
    if unknown:
        raise DataError(f"method {method!r} takes no option(s) {unknown}; it takes {sorted(accepted)}")
    return fn(table, **{k: v for k, v in options.items() if v is not None})
