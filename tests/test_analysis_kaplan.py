import numpy as np
import pytest

from analysis.kaplan import fit_kaplan
from analysis.loading import from_arrays
from scaling.errors import DataError

KAPLAN = {"N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.076, "alpha_D": 0.095}


def _kaplan_table():
    N = np.repeat(np.logspace(7, 9, 6), 6)
    D = np.tile(np.logspace(8, 11, 6), 6)
    loss = ((KAPLAN["N_c"] / N) ** (KAPLAN["alpha_N"] / KAPLAN["alpha_D"]) + KAPLAN["D_c"] / D) ** KAPLAN["alpha_D"]
    return from_arrays(N, D, loss)


def test_kaplan_nd_form_recovers_its_parameters_and_allocation_exponents():
    fit = fit_kaplan(_kaplan_table(), form="nd")
    for name, value in KAPLAN.items():
        assert fit.params[name] == pytest.approx(value, rel=1e-6), name
    assert fit.derived["a"] == pytest.approx(0.095 / 0.171)
    assert fit.spec.form == "kaplan_nd"


@pytest.mark.parametrize("irreducible", [False, True])
def test_single_variable_power_laws(irreducible):
    N = np.logspace(6, 10, 12)
    E = 1.5 if irreducible else 0.0
    table = from_arrays(N, 20 * N, E + (8.8e13 / N) ** 0.076)
    fit = fit_kaplan(table, form="n", irreducible=irreducible)
    assert fit.params["alpha_N"] == pytest.approx(0.076, rel=1e-4)
    assert fit.params["N_c"] == pytest.approx(8.8e13, rel=1e-3)
    if irreducible:
        assert fit.params["E"] == pytest.approx(1.5, rel=1e-4)


def test_kaplan_option_errors():
    with pytest.raises(DataError, match="no irreducible term"):
        fit_kaplan(_kaplan_table(), form="nd", irreducible=True)
    N = np.array([1e7, 1e8, 1e9])
    with pytest.raises(DataError, match="needs at least 4 points, got 3"):
        fit_kaplan(from_arrays(N, 20 * N, [4.0, 3.5, 3.0]), form="n", irreducible=True)
