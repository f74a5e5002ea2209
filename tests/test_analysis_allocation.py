import dataclasses
import json

import numpy as np
import pytest

from analysis.allocation import allocate
from analysis.frontier import optimum_from_params
from analysis.result import FitResult, FitSpec
from scaling_cli.main import main
from scaling.errors import DataError

PARAMS = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


RANGE = {"N": [1e6, 1e8], "D": [1e9, 1e11], "C": [1e16, 1e19]}


def _fit(convention="total", samples=None, form="chinchilla", vocab_size=256, fit_range=None):
    spec = FitSpec(method="parametric", form=form, loss="huber_log", delta=1e-3, init_grid=None,
                   n_convention=convention, flops="exact", data_hash="x", n_points=100, vocab_size=vocab_size)
    return FitResult(spec=spec, params=PARAMS, samples=samples, bootstrap={"level": 0.9} if samples else None,
                     fit_range=fit_range)


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


def test_the_vocabulary_comes_from_the_fit_unless_given_and_is_never_guessed():
    pytest.importorskip("scaling.shapes")
    assert allocate(_fit(vocab_size=50304), 1e19).shape["vocab_size"] == 50304
    assert allocate(_fit(vocab_size=50304), 1e19, vocab_size=256).shape["vocab_size"] == 256
    alloc = allocate(_fit(vocab_size=None), 1e19)
    assert alloc.shape is None and alloc.vocab_size is None
    assert any("--vocab-size" in n for n in alloc.notes)
    for bad in (0, -5):
        with pytest.raises(DataError, match="--vocab-size must be a positive"):
            allocate(_fit(), 1e19, vocab_size=bad)


def test_extrapolation_beyond_the_fitted_range_is_stated_and_warned_past_the_limit():
    near = allocate(_fit(fit_range=RANGE, vocab_size=None), 1e19)
    expected = optimum_from_params("chinchilla", PARAMS, 1e19)
    assert near.extrapolation["C"] == 1.0 and near.warnings == ()
    assert near.extrapolation["N_opt"] == pytest.approx(max(expected["N_opt"] / 1e8, 1e6 / expected["N_opt"], 1.0))
    far = allocate(_fit(fit_range=RANGE, vocab_size=None), 1e22)
    assert far.extrapolation["C"] == pytest.approx(1000.0)
    assert len(far.warnings) == 1 and "C = 1e+22 is 1e+03x outside" in far.warnings[0]
    assert allocate(_fit(fit_range=RANGE, vocab_size=None), 1e22, max_extrapolation=1e4).warnings == ()
    unknown = allocate(_fit(vocab_size=None), 1e22)
    assert unknown.extrapolation is None and any("extrapolation unknown" in n for n in unknown.notes)


def test_cli_allocate(tmp_path, capsys):
    path = tmp_path / "fit.json"
    path.write_text(_fit(fit_range=RANGE, vocab_size=None).to_json())
    assert main(["allocate", "--fit", str(path), "--budget", "1e22"]) == 0
    out = capsys.readouterr().out
    assert "warning: C = 1e+22" in out and "no shape" in out and "C 1e+03x" in out
    assert main(["allocate", "--fit", str(path), "--budget", "1e19", "--vocab-size", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --vocab-size") and err.count("\n") == 1
    path.write_text(dataclasses.replace(_fit(), fit_range=RANGE).to_json())
    assert main(["allocate", "--fit", str(path), "--budget", "1e19", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["shape"]["vocab_size"] == 256 and out["extrapolation"]["C"] == 1.0


def test_an_allocation_shows_as_a_table_of_quantities_with_their_intervals():
    rng = np.random.default_rng(0)
    samples = {k: list(v * (1 + 0.02 * rng.standard_normal(100))) for k, v in PARAMS.items()}
    alloc = allocate(_fit(samples=samples), 1e21)
    frame = alloc.to_frame().set_index("quantity")
    assert frame.loc["N_opt", "estimate"] == alloc.N_opt
    assert frame.loc["N_opt", "lo"] < alloc.N_opt < frame.loc["N_opt", "hi"]
    page = alloc._repr_html_()
    assert "<table" in page and "N_opt" in page and "1e+21" in page
