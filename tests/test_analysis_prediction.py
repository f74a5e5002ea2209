import json

import numpy as np
import pytest

from analysis_helpers import chinchilla_surface
from analysis.frontier import chinchilla_loss
from analysis.prediction import extrapolation_factors, predict
from analysis.result import FitResult, FitSpec
from scaling_cli.main import main
from scaling.errors import DataError

PARAMS = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
RANGE = {"N": [1e6, 1e8], "D": [1e9, 1e11], "C": [1e16, 1e19]}


def _fit(form="chinchilla", params=PARAMS, samples=True, sd=0.01, fit_range=RANGE, bootstrap=None):
    """A hand-made fit: the surface PARAMS with 2% bootstrap scatter in every parameter."""
    spec = FitSpec(method="parametric" if form == "chinchilla" else "isoflop", form=form, loss="huber_log",
                   delta=1e-3, init_grid=None, n_convention="total", flops="exact", data_hash="x", n_points=30)
    rng = np.random.default_rng(0)
    drawn = {k: list(v * (1 + 0.02 * rng.standard_normal(200))) for k, v in params.items()} if samples else None
    info = bootstrap or ({"n": 200, "n_ok": 200, "level": 0.95, "reliable": True} if samples else None)
    return FitResult(spec=spec, params=params, samples=drawn, bootstrap=info, fit_range=fit_range,
                     details={"log_residual_sd": sd} if sd is not None else {})


@pytest.fixture(scope="module")
def fitted():
    """VPNLS on a surface with 0.5% noise, bootstrapped: (fit, truth)."""
    from analysis.resampling import bootstrap
    from analysis.fitting import fit
    table, truth = chinchilla_surface(noise=0.005, sizes_per_budget=6, budgets=(1e17, 1e18, 1e19, 1e20))
    result = fit(table, "vpnls")
    return bootstrap(table, result, n=40, seed=0), truth


def test_a_fitted_surface_predicts_the_truth_inside_its_interval(fitted):
    result, truth = fitted
    N, D = np.array([3e7, 1e9, 3e9]), np.array([2e9, 2e10, 1e11])  # inside, and C up to 18x beyond
    true_loss = chinchilla_loss(truth, N, D)
    p = predict(result, N, D)
    assert p.interval == "prediction" and p.n_samples >= 30 and p.reliable
    assert p.log_residual_sd == pytest.approx(0.005, rel=0.5)
    for point, true in zip(p.points, true_loss):
        assert point["loss"] == pytest.approx(true, rel=0.01)
        assert point["lo"] <= true <= point["hi"]
        assert point["lo"] < point["fit_lo"] < point["loss"] < point["fit_hi"] < point["hi"]  # noise widens it


def test_extrapolation_factors_are_exact():
    p = predict(_fit(), [1e7, 1e10, 1e5], [1e10, 1e9, 1e12])
    factors = [pt["extrapolation"] for pt in p.points]
    assert factors[0] == {"N": 1.0, "D": 1.0, "C": 1.0}  # C = 6e17 inside [1e16, 1e19]
    assert factors[1] == pytest.approx({"N": 100.0, "D": 1.0, "C": 6e19 / 1e19})
    assert factors[2] == pytest.approx({"N": 10.0, "D": 10.0, "C": 1.0})
    assert p.warnings == ()  # 100x is the limit, not past it
    assert extrapolation_factors(RANGE, {"N": 1e4})["N"] == pytest.approx(100.0)
    far = predict(_fit(), 1e11, 1e10)
    assert len(far.warnings) == 1 and "N = 1e+11 is 1e+03x outside" in far.warnings[0]
    assert predict(_fit(), 1e11, 1e10, max_extrapolation=2000).warnings == ()


def test_without_samples_range_or_scatter_the_prediction_says_what_it_lacks():
    p = predict(_fit(samples=False), 1e7, 1e10)
    assert p.interval is None and p.points[0]["lo"] is None
    assert any("scaling fit --bootstrap 200" in n for n in p.notes)
    p = predict(_fit(fit_range=None, sd=None), 1e7, 1e10)
    assert p.points[0]["extrapolation"] is None and any("extrapolation unknown" in n for n in p.notes)
    assert p.interval == "fit" and any("fit uncertainty only" in n for n in p.notes)
    assert p.points[0]["lo"] == p.points[0]["fit_lo"]
    unreliable = _fit(bootstrap={"n": 200, "n_ok": 150, "level": 0.95, "reliable": False})
    assert any("interval is unreliable" in n for n in predict(unreliable, 1e7, 1e10).notes)
    old_file = _fit(bootstrap={"n": 200, "n_ok": 150, "level": 0.95})  # before `reliable` was recorded
    assert predict(old_file, 1e7, 1e10).reliable is False


def test_bad_inputs_are_refused():
    with pytest.raises(DataError, match="no loss surface.*approach 3"):
        predict(_fit(form="power_law", params={"k_N": 0.1, "a": 0.5, "k_D": 1.0, "b": 0.5}), 1e7, 1e10)
    with pytest.raises(DataError, match="in pairs"):
        predict(_fit(), [1e7, 1e8, 1e9], [1e10, 1e11])
    with pytest.raises(DataError, match="positive"):
        predict(_fit(), [1e7, -1.0], 1e10)
    with pytest.raises(DataError, match="max-extrapolation"):
        predict(_fit(), 1e7, 1e10, max_extrapolation=0.5)


def test_to_dict_is_strict_json_and_to_frame_has_a_row_per_point():
    wild = _fit(params={**PARAMS, "A": float("inf")})  # a non-finite loss is written as null, not NaN
    text = json.dumps(predict(wild, [1e7, 1e8], 1e10).to_dict(), allow_nan=False)
    assert json.loads(text)["points"][1]["N"] == 1e8
    frame = predict(_fit(), [1e7, 1e8], 1e10).to_frame()
    assert list(frame["N"]) == [1e7, 1e8] and "extrap_C" in frame.columns


@pytest.fixture
def fit_file(tmp_path):
    path = tmp_path / "fit.json"
    path.write_text(_fit().to_json())
    return path


def test_cli_prints_intervals_and_warns_past_the_limit(fit_file, capsys):
    assert main(["predict", "--fit", str(fit_file), "--N", "1e7", "1e11", "--D", "1e10"]) == 0
    out = capsys.readouterr().out
    assert "95% prediction" in out and "95% fit only" in out
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "N = 1e+11 is 1e+03x outside" in warnings[0]
    assert main(["predict", "--fit", str(fit_file), "--N", "1e11", "--D", "1e10", "--max-extrapolation",
                 "5000"]) == 0
    assert "warning:" not in capsys.readouterr().out


def test_cli_json_and_points_csv(fit_file, tmp_path, capsys):
    csv = tmp_path / "points.csv"
    csv.write_text("params,tokens\n1e7,1e10\n1e8,2e10\n")
    assert main(["predict", "--fit", str(fit_file), "--points", str(csv), "--columns", "N=params,D=tokens",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [p["N"] for p in out["points"]] == [1e7, 1e8] and out["interval"] == "prediction"
    assert out["points"][0]["lo"] < out["points"][0]["loss"] < out["points"][0]["hi"]


def test_cli_errors_are_one_line(fit_file, tmp_path, capsys):
    power = _fit(form="power_law", params={"k_N": 0.1, "a": 0.5, "k_D": 1.0, "b": 0.5})
    path = tmp_path / "power.json"
    path.write_text(power.to_json())
    for argv, needle in ((["--fit", str(path), "--N", "1e9", "--D", "2e10"], "approach 3"),
                         (["--fit", str(fit_file), "--N", "1e9"], "--points"),
                         (["--fit", str(fit_file), "--points", str(tmp_path / "none.csv")], "no such file")):
        assert main(["predict", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and needle in err, err


def test_a_prediction_shows_as_an_html_table_with_its_warnings():
    shown = predict(_fit(), [1e7, 1e12], 1e10)._repr_html_()
    assert shown.count("<tr") == 3  # the header and one row per point
    assert "extrap_N" in shown and "warnings" in shown  # 1e12 is far past the fit's range
