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
