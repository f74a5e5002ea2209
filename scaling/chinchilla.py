"""The compute-optimal constants of the Chinchilla law L(N, D) = E + A N^-alpha + B D^-beta with C = 6 N D.

Defined once here, the lowest layer that needs them: a sweep centres its isoFLOP sizes on a fit's N_opt
(sweeps.spec), and the analysis builds its frontiers on them (analysis.frontier). Plain arithmetic, so
floats and numpy arrays of bootstrap draws work alike.
"""


def chinchilla_exponents(alpha, beta):
    """a = beta/(alpha+beta) (N_opt ∝ C^a), b = alpha/(alpha+beta) (D_opt ∝ C^b)."""
    return beta / (alpha + beta), alpha / (alpha + beta)


def chinchilla_G(A, B, alpha, beta):
    """G = (alpha A / (beta B))^(1/(alpha+beta)): N_opt = G (C/6)^a, D_opt = (C/6)^b / G."""
    return (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))


def chinchilla_loss_exponent(alpha, beta):
    """gamma = alpha beta/(alpha+beta): L_opt(C) - E ∝ (C/6)^-gamma."""
    return alpha * beta / (alpha + beta)


def chinchilla_K(A, B, alpha, beta):
    """K = A G^-alpha (alpha+beta)/beta: L_opt(C) - E = K (C/6)^-gamma (alpha A N^-alpha = beta B D^-beta
    at the optimum, so the D term is alpha/beta of the N term)."""
    return A * chinchilla_G(A, B, alpha, beta) ** -alpha * (alpha + beta) / beta
