import numpy as np
import pytest

from analysis.allocate import allocate
from analysis.frontier import optimum_from_params
from analysis.result import FitResult, FitSpec
from scaling.errors import DataError

PARAMS = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def _fit(convention="total", samples=None, form="chinchilla"):
    spec = FitSpec(method="parametric", form=form, loss="huber_log", delta=1e-3, init_grid=None,
                   n_convention=convention, flops="exact", data_hash="x", n_points=100)
    return FitResult(spec=spec, params=PARAMS, samples=samples, bootstrap={"level": 0.9} if samples else None)


def test_allocation_matches_the_frontier_and_picks_a_shape_near_n_opt():
    pytest.importorskip("scaling.shapes")
    alloc = allocate(_fit(), 1e18)
    expected = optimum_from_params("chinchilla", PARAMS, 1e18)
    assert alloc.N_opt == pytest.approx(expected["N_opt"])
    assert alloc.D_opt * alloc.N_opt * 6 == pytest.approx(1e18)
    assert alloc.L_opt == pytest.approx(expected["L_opt"])
    assert alloc.shape["n_params"] == pytest.approx(alloc.N_opt, rel=0.1)
    assert {"d_model", "n_layers", "n_heads", "d_ff", "vocab_size"} <= set(alloc.shape)


def test_nonembedding_fits_match_the_shapes_nonembedding_count():
    pytest.importorskip("scaling.shapes")
    alloc = allocate(_fit("nonembedding"), 1e16, vocab_size=50304)
    assert alloc.shape["n_params_nonembedding"] == pytest.approx(alloc.N_opt, rel=0.1)
    assert alloc.shape["n_params"] > 1.2 * alloc.N_opt  # the embedding is on top


def test_bootstrapped_fits_give_intervals():
    rng = np.random.default_rng(0)
    samples = {k: list(v * (1 + 0.02 * rng.standard_normal(100))) for k, v in PARAMS.items()}
    alloc = allocate(_fit(samples=samples), 1e21)
    lo, hi = alloc.intervals["N_opt"]
    assert lo < alloc.N_opt < hi


def test_allocate_errors():
    with pytest.raises(DataError, match="positive number"):
        allocate(_fit(), -1.0)
    with pytest.raises(DataError, match="no compute-optimal"):
        allocate(_fit(form="kaplan_n"), 1e20)
