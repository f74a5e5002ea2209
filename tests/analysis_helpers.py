"""Reference data and synthetic loss surfaces shared by the analysis tests."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
EPOCH_CSV = DATA / "epoch-analyzing-chinchilla__svg_extracted_data.csv"
OLMO_CSV = DATA / "allenai-OLMo-ladder__ladder_runs_losses.csv"
EPOCH_COLUMNS = {"N": "Model Size", "C": "Training FLOP"}
CHINCHILLA_BUDGETS = [6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21]

# Besiroglu et al. (2024), Hoffmann grid, 5 highest losses dropped (../shared/data/README.md).
EPOCH_TARGET = {"E": 1.8172, "A": 477.8, "B": 2143.9, "alpha": 0.3473, "beta": 0.3672, "objective": 1.0183e-3}
EPOCH_CI = {"alpha": (0.317, 0.373), "beta": (0.331, 0.415)}


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"reference data {path.name} not found in {path.parent} (the shared data folder is "
                    "not part of the repository)")
    return path


@functools.lru_cache(maxsize=None)
def epoch_table():
    from analysis.loading import load_runs
    return load_runs(need(EPOCH_CSV), columns=EPOCH_COLUMNS)


@functools.lru_cache(maxsize=None)
def epoch_fit():
    """Approach 3 on Epoch's points with Hoffmann's grid: computed once per test session."""
    from analysis.parametric import fit_parametric
    return fit_parametric(epoch_table(), drop_highest=5)


def olmo_table():
    """OLMo ladder: final row of each run (reruns left out), C4 validation loss, C = FLOPs/token x tokens."""
    import pandas as pd

    from analysis.loading import load_runs
    df = pd.read_csv(need(OLMO_CSV))
    df = df[~df["rerun"].astype(bool)].copy()
    df["C"] = df["flops_per_token"] * df["tokens"]
    return load_runs(df, columns={"run_id": "run", "D": "tokens", "loss": "loss_c4"}, final_only=True)


def chinchilla_surface(alpha=0.34, beta=0.28, E=1.69, A=406.4, B=410.7, budgets=(1e17, 1e18, 1e19, 1e20, 1e21),
                       sizes_per_budget=7, width=1.0, noise=0.0, seed=0):
    """IsoFLOP design on L = E + A/N^alpha + B/D^beta: per budget, sizes spanning +-width decades around
    the true N_opt. Multiplicative log-normal noise of sd `noise`. Returns (table, true params)."""
    from analysis.frontier import optimum_from_params
    from analysis.loading import from_arrays
    truth = {"E": E, "A": A, "B": B, "alpha": alpha, "beta": beta}
    rng = np.random.default_rng(seed)
    N, D, C = [], [], []
    for c in budgets:
        n0 = optimum_from_params("chinchilla", truth, c)["N_opt"]
        n = n0 * np.logspace(-width, width, sizes_per_budget)
        N += list(n)
        D += list(c / (6 * n))
        C += [c] * sizes_per_budget
    N, D, C = map(np.asarray, (N, D, C))
    loss = (E + A / N ** alpha + B / D ** beta) * np.exp(noise * rng.standard_normal(len(N)))
    return from_arrays(N, D, loss, C=C, budget=C), truth


def backtest_surface_grid(noise=0.005, seed=0):
    """Every size trained at every budget (D = C / 6N) on L = E + A/N^alpha + B/D^beta with log-normal noise:
    a split by budget and a split by size both leave a surface to fit, and both train on 20 runs (one
    compilation of the fit and of its bootstrap serves every test here). Returns (table, truth)."""
    from analysis.frontier import chinchilla_loss
    from analysis.loading import from_arrays
    truth = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    N_SxC, C_SxC = np.meshgrid(np.logspace(6.5, 9, 5), [1e16, 1e17, 1e18, 1e19, 1e20], indexing="ij")
    N, C = N_SxC.ravel(), C_SxC.ravel()
    D = C / (6 * N)
    loss = chinchilla_loss(truth, N, D) * np.exp(noise * np.random.default_rng(seed).standard_normal(len(N)))
    return from_arrays(N, D, loss, C=C, budget=C), truth


def ladder_isoflop_table(budgets, per_budget: int, step: float = 2.0):
    """Noise-free isoFLOP runs on chinchilla_surface's default truth with sizes from one ladder (so sizes recur
    across budgets, as in a real sweep): per budget the `per_budget` rungs nearest its true N_opt."""
    from analysis.frontier import chinchilla_loss, optimum_from_params
    from analysis.loading import from_arrays
    _, truth = chinchilla_surface()
    ladder = 1e6 * step ** np.arange(40)
    N, C = [], []
    for c in budgets:
        k = int(np.argmin(abs(np.log(ladder / optimum_from_params("chinchilla", truth, c)["N_opt"]))))
        rungs = ladder[k - per_budget // 2: k - per_budget // 2 + per_budget]
        N += list(rungs)
        C += [c] * len(rungs)
    N, C = np.asarray(N), np.asarray(C)
    D = C / (6 * N)
    return from_arrays(N, D, chinchilla_loss(truth, N, D), C=C, budget=C)
