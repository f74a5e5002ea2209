import numpy as np
import pytest

from analysis.powerlaw import fit_power_law
from scaling.errors import DataError


def test_recovers_an_exact_power_law_and_respects_weights():
    x = np.logspace(18, 22, 5)
    k, p = fit_power_law(x, 0.3 * x ** 0.49)
    assert p == pytest.approx(0.49) and k == pytest.approx(0.3)
    y = 0.3 * x ** 0.49
    y[0] *= 10  # an outlier with zero weight changes nothing
    assert fit_power_law(x, y, weights=[0, 1, 1, 1, 1])[1] == pytest.approx(0.49)


def test_one_distinct_point_is_an_error():
    with pytest.raises(DataError, match="at least 2 distinct points, got 1"):
        fit_power_law([1e20, 1e20], [1e9, 2e9])
