"""The compute-optimal constants of the Chinchilla law L(N, D) = E + A N^-alpha + B D^-beta with C = 6 N D.

Defined once here, the lowest layer that needs them: a sweep centres its isoFLOP sizes on a fit's N_opt
(sweeps.spec), and the analysis builds its frontiers on them (analysis.frontier). Plain arithmetic, so
floats and numpy arrays of bootstrap draws work alike.
"""


def _ieee():
    """numpy with IEEE results: a degenerate fit (alpha + beta <= 0, A = 0) gives inf or nan, which the fit's
    diagnostics name, where Python floats would raise or turn complex. numpy is imported here, not at the
    top, because sweeps.spec imports this module and `scaling --help` must not load numpy."""
    import numpy as np
    return np, np.errstate(divide="ignore", invalid="ignore", over="ignore")


def chinchilla_exponents(alpha, beta):
    """a = beta/(alpha+beta) (N_opt ∝ C^a), b = alpha/(alpha+beta) (D_opt ∝ C^b)."""
    np, quiet = _ieee()
    with quiet:
        return np.divide(beta, np.add(alpha, beta)), np.divide(alpha, np.add(alpha, beta))


def chinchilla_G(A, B, alpha, beta):
    """G = (alpha A / (beta B))^(1/(alpha+beta)): N_opt = G (C/6)^a, D_opt = (C/6)^b / G."""
    np, quiet = _ieee()
    with quiet:
        return np.power(np.divide(np.multiply(alpha, A), np.multiply(beta, B)), np.divide(1.0, np.add(alpha, beta)))


def chinchilla_loss_exponent(alpha, beta):
    """gamma = alpha beta/(alpha+beta): L_opt(C) - E ∝ (C/6)^-gamma."""
    return alpha * beta / (alpha + beta)


def chinchilla_K(A, B, alpha, beta):
    """K = A G^-alpha (alpha+beta)/beta: L_opt(C) - E = K (C/6)^-gamma (alpha A N^-alpha = beta B D^-beta
    at the optimum, so the D term is alpha/beta of the N term)."""
    np, quiet = _ieee()
    with quiet:
        n_term = np.multiply(A, np.power(chinchilla_G(A, B, alpha, beta), np.negative(alpha)))
        return np.divide(n_term * np.add(alpha, beta), beta)
