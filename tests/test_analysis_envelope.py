import numpy as np
import pytest

from analysis.envelope import fit_envelope
from analysis.loading import from_arrays
from scaling.errors import DataError


def _grid_table(alpha, beta, sizes=13, tokens=12):
    N = np.repeat(np.logspace(7, 10, sizes), tokens)
    D = np.tile(np.logspace(8, 12, tokens), sizes)
    return from_arrays(N, D, 1.69 + 406.4 / N ** alpha + 410.7 / D ** beta)


@pytest.mark.parametrize("alpha,beta", [(0.34, 0.28), (0.34, 0.34)])
def test_envelope_recovers_the_compute_optimal_exponent(alpha, beta):
    fit = fit_envelope(_grid_table(alpha, beta))
    assert fit.params["a"] == pytest.approx(beta / (alpha + beta), abs=0.03)
    assert fit.params["b"] == pytest.approx(alpha / (alpha + beta), abs=0.03)
    assert fit.details["n_envelope_points"] >= 10


def test_sizes_with_one_run_are_left_out_and_too_few_curves_refused():
    N = np.array([1e8, 1e8, 2e8, 4e8])
    table = from_arrays(N, [1e9, 2e9, 1e9, 1e9], [3.0, 2.9, 2.8, 2.7])
    with pytest.raises(DataError, match="at least 2 model sizes with 2 or more runs"):
        fit_envelope(table)
