import math

import numpy as np
import pytest

from analysis.trends import extrapolation
from scaling.errors import ConfigError

RANGE = {"N": [1e6, 1e8], "D": [1e8, 1e10], "C": [1e15, 1e18]}


def test_factor_is_one_inside_and_the_ratio_outside_on_either_side():
    np.testing.assert_allclose(extrapolation.factor([1e16, 1e18, 1e20, 1e13], (1e15, 1e18)), [1, 1, 100, 100])
    assert np.isnan(extrapolation.factor([1e16], None)).all()


def test_within_the_guard_nothing_is_stamped_and_nothing_refused():
    x = extrapolation.assess([1e16, 5e19], RANGE)  # 50x beyond
    assert x.factor == pytest.approx(50) and x.at_compute == 5e19 and not x.beyond and x.stamp == ""
    extrapolation.check(x, "test fit")
    assert x.as_dict()["stamp"] is None and x.as_dict()["orders_of_magnitude"] == pytest.approx(math.log10(50))


def test_beyond_the_guard_refuses_in_one_line_naming_the_factor_and_the_flag():
    x = extrapolation.assess([1e16, 1e22], RANGE)  # 1e4x: four orders of magnitude
    assert x.beyond
    with pytest.raises(ConfigError) as err:
        extrapolation.check(x, "fit from fit.json")
    message = str(err.value)
    assert "1e+04x" in message and "4.0 orders of magnitude" in message and "--allow-extrapolation" in message
    assert "--max-extrapolation" in message and "\n" not in message


def test_the_flag_runs_and_stamps_each_output_with_its_own_distance():
    x = extrapolation.assess([1e16, 1e22], RANGE, allowed=True)
    extrapolation.check(x, "fit")
    assert x.stamp == "extrapolated 4.0 orders of magnitude beyond the fit"
    assert x.stamp_at(1e3) == "extrapolated 3.0 orders of magnitude beyond the fit"
    # A larger configured limit puts the same run back inside the guard.
    assert not extrapolation.assess([1e16, 1e22], RANGE, max_factor=1e5).beyond


def test_an_unknown_range_counts_as_beyond():
    x = extrapolation.assess([1e20], None)
    assert x.beyond and math.isnan(x.factor)
    with pytest.raises(ConfigError, match="records no fit range"):
        extrapolation.check(x, "plain.json")
    assert "unknown distance" in extrapolation.assess([1e20], None, allowed=True).stamp
