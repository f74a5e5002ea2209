import json

import pytest

from analysis.result import FitResult, FitSpec, load_fit
from scaling.io import atomic_write
from scaling.errors import DataError


def _result():
    spec = FitSpec(method="parametric", form="chinchilla", loss="huber_log", delta=1e-3,
                   init_grid={"name": "hoffmann", "n_starts": 4500}, n_convention="total", flops="exact",
                   data_hash="abc", n_points=10, dropped=("row 3",))
    return FitResult(spec=spec, params={"E": 1.7, "A": 400.0, "B": 410.0, "alpha": 0.34, "beta": 0.28},
                     objective=1e-3, derived={"a": 0.45, "b": 0.55, "G": float("nan")},
                     intervals={"alpha": (0.3, 0.4)}, samples={"alpha": [0.3, 0.4]})


def test_json_round_trip_keeps_everything_including_nan():
    r = _result()
    back = FitResult.from_dict(json.loads(r.to_json()))
    assert back.spec == r.spec and back.params == r.params and back.intervals == r.intervals
    assert back.derived["G"] != back.derived["G"]  # NaN survived as NaN


def test_write_atomic_and_load(tmp_path):
    path = tmp_path / "sub" / "fit.json"
    atomic_write(path, _result().to_json())
    assert load_fit(path).params["alpha"] == 0.34
    assert [p.name for p in path.parent.iterdir()] == ["fit.json"]  # no temp file left


def test_write_atomic_leaves_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "fit.json"
    path.write_text("old")

    with pytest.raises(TypeError):
        atomic_write(path, 12345)  # not text: fails mid-write
    assert path.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_load_fit_explains_bad_files(tmp_path):
    with pytest.raises(DataError, match="no such fit file"):
        load_fit(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"schema": "other"}')
    with pytest.raises(DataError, match="not a fit result"):
        load_fit(tmp_path / "bad.json")


def _diagnosed(result, severity="warning"):
    import dataclasses

    return dataclasses.replace(result, diagnostics=({"code": "few_points", "severity": severity,
                                                     "message": "only 10 points for 5 <parameters>"},),
                               notes=("D derived as C/(6N)",))


def test_to_frame_has_one_row_per_quantity_with_its_interval():
    frame = _result().to_frame()
    assert list(frame.quantity) == ["E", "A", "B", "alpha", "beta", "a", "b", "G"]
    assert list(frame.kind) == ["parameter"] * 5 + ["derived"] * 3
    alpha = frame.set_index("quantity").loc["alpha"]
    assert (alpha.estimate, alpha.lo, alpha.hi) == (0.34, 0.3, 0.4)
    assert frame.set_index("quantity").loc[["E", "a"], ["lo", "hi"]].isna().all().all()  # no interval, no number
    assert set(frame.method) == {"parametric"}


def test_repr_names_the_fit_without_dumping_replicates():
    import dataclasses

    result = dataclasses.replace(_result(), samples={"alpha": [0.123456789] * 500})
    text = repr(result)
    assert text.startswith("<FitResult parametric (chinchilla) on 10 points") and "alpha=0.34" in text
    assert "0.123456789" not in text and len(text) < 300


def test_str_is_the_text_scaling_fit_prints():
    text = str(_diagnosed(_result()))
    assert text.startswith("parametric fit (chinchilla, loss huber_log, delta 0.001) on 10 points")
    assert "dropped 1 row(s): row 3" in text and "warning [few_points]" in text
    assert "note: D derived as C/(6N)" in text


def test_html_is_a_table_of_quantities_with_diagnostics_escaped():
    page = _diagnosed(_result(), "invalid")._repr_html_()
    assert page.startswith("<div>") and page.count("<table") == 1 and "<th>quantity</th>" in page
    for name in ("alpha", "beta", "0.34", "0.3", "0.4"):
        assert f"<td>{name}</td>" in page
    assert "INVALID [few_points]" in page and "5 &lt;parameters&gt;" in page and "<parameters>" not in page
    assert "0.3, 0.4" not in page  # intervals are columns, not printed tuples
    assert "no check flagged" in _result()._repr_html_()


def test_a_comparison_has_one_row_per_method_and_the_failures():
    import dataclasses

    from analysis.result import FitComparison

    other = dataclasses.replace(_result(), spec=dataclasses.replace(_result().spec, method="vpnls"),
                                params={**_result().params, "alpha": 0.5}, intervals=None)
    both = FitComparison((_result(), other), {"isoflop": "one budget only"},
                         ({"code": "methods_disagree", "severity": "warning", "message": "a differs"},))
    frame = both.to_frame()
    assert list(frame.method) == ["parametric", "vpnls", "isoflop"]
    assert list(frame.alpha[:2]) == [0.34, 0.5] and frame.alpha_lo[0] == 0.3 and frame.alpha_lo[1] != frame.alpha_lo[1]
    assert frame.error.tolist()[2] == "one budget only" and frame.error[:2].isna().all()
    assert both["vpnls"] is other
    with pytest.raises(KeyError, match="one budget only"):
        both["isoflop"]
    assert "warning [methods_disagree] a differs" in both._repr_html_() and "across methods:" in str(both)
    assert repr(both) == "<FitComparison of parametric, vpnls; not fitted: isoflop>"


def test_moore_frame_has_one_row_per_series():
    from analysis.result import Moore

    summary = {"answers": ["compute doubles every 6 months"], "doubling_months": {"compute": 6.0, "transistors": 24.0},
               "doubling_months_ci": {"compute": [5.0, 7.0], "transistors": [22.0, 26.0]},
               "growth_per_year": {"compute": 4.0, "transistors": 1.41},
               "series": {"compute": {"source": "fitted"}, "transistors": {"source": "published"}}}
    moore = Moore(summary, {}, None, None, None, 2025)
    frame = moore.to_frame()
    assert frame.to_dict("records")[1] == {"series": "transistors", "doubling_months": 24.0, "lo": 22.0, "hi": 26.0,
                                          "growth_per_year": 1.41, "source": "published"}
    assert str(moore) == "- compute doubles every 6 months"
    assert "<li>compute doubles every 6 months</li>" in moore._repr_html_() and "<td>published</td>" in moore._repr_html_()
