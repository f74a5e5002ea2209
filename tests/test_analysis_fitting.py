"""analysis.fitting: the method registry, fit()'s option checks and refusals, finish(), fitted_rows and
quiet_numerics, on synthetic tables whose truth and shape the tests build."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import warnings

import numpy as np
import pytest

from analysis.fitting import (METHODS, SURFACE_METHODS, check_surface_data, finish, fit, fitted_rows, method,
                          quiet_numerics, refitter)
from analysis.loading import from_arrays
from analysis_helpers import chinchilla_surface
from scaling.errors import DataError


def test_every_registered_method_resolves_to_its_fit_and_refit_functions():
    assert set(SURFACE_METHODS) <= set(METHODS)
    for name, m in METHODS.items():
        assert m.name == name and m.resample in ("cases", "residuals")
        module = importlib.import_module(m.module)
        assert m.fitter() is getattr(module, m.fit_function)
        assert refitter(name) is getattr(module, m.refit_function)
        assert "table" not in m.options() and m.options() <= set(inspect.signature(m.fitter()).parameters)


def test_an_unknown_method_is_refused_naming_the_known_ones():
    with pytest.raises(DataError, match="unknown method 'chinchilla'") as err:
        method("chinchilla")
    assert all(name in str(err.value) for name in METHODS)


def test_an_option_the_method_does_not_take_is_an_error_and_a_none_option_is_ignored():
    table, _ = chinchilla_surface()
    with pytest.raises(DataError, match=r"takes no option\(s\) \['parabola'\]"):
        fit(table, "vpnls", parabola="loss")
    assert fit(table, "isoflop", tie=None).spec.method == "isoflop"  # None: not given


@pytest.mark.parametrize("case, match", [
    ("repeated", "distinct .N, D. point"), ("one_size", "same model size"), ("one_budget", "one compute budget")])
def test_tables_that_cannot_identify_a_surface_are_refused(case, match):
    if case == "repeated":
        table = from_arrays(np.full(20, 1e8), np.full(20, 2e9), np.full(20, 3.0))
    elif case == "one_size":
        table = from_arrays(np.full(6, 1e8), np.logspace(9, 10, 6), np.linspace(3.2, 3.0, 6))
    else:
        N = np.logspace(7, 9, 8)
        table = from_arrays(N, 1e18 / (6 * N), 3.0 + 0.1 * (np.log10(N) - 8) ** 2, C=np.full(8, 1e18))
    with pytest.raises(DataError, match=match):
        fit(table, "parametric")


def test_the_surface_check_names_the_method_and_passes_an_identifiable_design():
    table, _ = chinchilla_surface(budgets=(1e18, 1e19), sizes_per_budget=3)  # 6 distinct points, 2 budgets
    check_surface_data(table, "vpnls")  # no error
    five = table.subset(np.arange(len(table)) < 5)
    with pytest.raises(DataError, match=r"^kaplan: only 5 distinct"):
        check_surface_data(five, "kaplan")


def test_one_budget_is_refused_for_the_surface_but_not_for_a_one_variable_kaplan_law():
    N = np.logspace(7, 9, 8)
    table = from_arrays(N, 1e18 / (6 * N), 3.0 + 0.1 * (np.log10(N) - 8) ** 2, C=np.full(8, 1e18))
    with pytest.raises(DataError, match="one compute budget"):
        fit(table, "kaplan")
    assert fit(table, "kaplan", form="n").spec.form != "nd"  # form n: the check does not apply


def test_fitted_rows_leave_out_exactly_the_dropped_rows():
    table, _ = chinchilla_surface(noise=0.01)
    result = fit(table, "vpnls", drop_highest=2)
    highest = set(table.labels[np.argsort(table.loss)[-2:]].tolist())
    assert set(result.spec.dropped) == highest
    rows = fitted_rows(table, result)
    assert len(rows) == len(table) - 2 and not highest & set(rows.labels.tolist())


def test_fitted_rows_refuse_a_table_the_fit_did_not_use():
    table, _ = chinchilla_surface()
    other, _ = chinchilla_surface(alpha=0.3)
    with pytest.raises(DataError, match="is not the one the fit used"):
        fitted_rows(other, fit(table, "vpnls"))


def test_finish_records_the_fitted_range_labels_and_checks():
    table, _ = chinchilla_surface()
    table = dataclasses.replace(table, loss_label="val_loss", vocab_size=50304)
    raw = METHODS["vpnls"].fitter()(table)
    assert raw.fit_range is None and "log_residual_sd" not in raw.details
    done = finish(raw, table)
    assert (done.spec.loss_label, done.spec.vocab_size) == ("val_loss", 50304)
    assert done.fit_range == {k: [float(v.min()), float(v.max())] for k, v in
                              (("N", table.N), ("D", table.D), ("C", table.C))}
    assert done.details["log_residual_sd"] < 1e-6  # noise-free data on the fitted form
    assert done.params == raw.params and len(done.diagnostics) >= len(raw.diagnostics)


def test_quiet_numerics_silences_overflow_inside_and_restores_settings_after():
    before = np.geterr()
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with quiet_numerics():
            assert np.isinf(np.exp(np.array([1000.0])))[0]
            warnings.warn("a wild start overflowed", RuntimeWarning)
        assert shown == []
        warnings.warn("after the block", RuntimeWarning)
        assert [str(w.message) for w in shown] == ["after the block"]  # the filter is restored
    assert np.geterr() == before
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        with quiet_numerics():
            pass
        np.exp(np.array([1000.0]))  # the caller's own setting is back
