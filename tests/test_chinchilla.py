import math

import pytest

from scaling.chinchilla import chinchilla_G, chinchilla_K, chinchilla_exponents, chinchilla_loss_exponent

E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28  # Hoffmann et al. 2022, approach 3


def loss(N, D):
    return E + A * N ** -ALPHA + B * D ** -BETA


@pytest.mark.parametrize("C", [1e18, 1e22, 1e26])
def test_the_constants_give_the_minimum_loss_on_the_budget(C):
    a, b = chinchilla_exponents(ALPHA, BETA)
    G = chinchilla_G(A, B, ALPHA, BETA)
    n, d = G * (C / 6) ** a, (C / 6) ** b / G
    assert n * d == pytest.approx(C / 6, rel=1e-12)
    for factor in (0.97, 1.03):  # off the optimum along 6ND = C the loss rises
        assert loss(n * factor, d / factor) > loss(n, d)
    reducible = chinchilla_K(A, B, ALPHA, BETA) * (C / 6) ** -chinchilla_loss_exponent(ALPHA, BETA)
    assert reducible == pytest.approx(loss(n, d) - E, rel=1e-12)


def test_a_degenerate_fit_gives_inf_or_nan_not_an_exception():
    """A fit with alpha + beta < 0 or A = 0 must reach the diagnostics, not crash the fit (Python floats
    raise ZeroDivisionError for 0.0 ** -x and turn negative bases complex)."""
    assert math.isinf(chinchilla_G(0.0, 1.0, -0.5, 0.2))
    assert math.isnan(chinchilla_G(-1.0, 1.0, 0.5, 0.2))
    assert all(math.isnan(x) for x in chinchilla_exponents(0.0, 0.0))
    assert not isinstance(chinchilla_K(0.0, 1.0, -0.5, 0.2), complex)
