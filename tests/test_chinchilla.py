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
