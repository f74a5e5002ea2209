"""The Python API (analysis.load/fit/bootstrap/predict/allocate/report/moore) against the command line it
mirrors: the same numbers from the same table, the same one-line errors, and results that show as tables."""

import json
import subprocess
import sys

import pandas as pd
import pytest

import analysis
from analysis_helpers import chinchilla_surface
from conftest import PROJECT_ROOT
from scaling.errors import ScalingError
from scaling_cli.main import main

COLUMNS = {"N": "params", "D": "tokens", "C": "flops", "loss": "val_loss"}
CLI_COLUMNS = ["--columns", "N=params,D=tokens,C=flops,loss=val_loss"]


@pytest.fixture
def surface_csv(tmp_path):
    """A slightly noisy Chinchilla surface as a CSV with its own column names."""
    table, truth = chinchilla_surface(noise=0.005, seed=1)
    path = tmp_path / "runs.csv"
    pd.DataFrame({"params": table.N, "tokens": table.D, "flops": table.C, "val_loss": table.loss}).to_csv(
        path, index=False, float_format="%.17g")
    return path


def _cli_json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def _cli_error(capsys, *argv) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    return err[len("error: "):].strip()


def test_importing_analysis_stays_light():
    code = "import sys, analysis; print(sorted(m for m in ('numpy', 'pandas', 'jax', 'scipy') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT)
    assert done.stdout.strip() == "[]"


def test_load_reads_a_file_and_a_dataframe_alike(surface_csv):
    from_file = analysis.load(surface_csv, columns=COLUMNS)
    from_frame = analysis.load(pd.read_csv(surface_csv), columns=COLUMNS)
    assert from_file.data_hash == from_frame.data_hash and len(from_file) == 35
    assert from_file.loss_label == "val_loss"


def test_fit_gives_the_numbers_the_cli_prints(surface_csv, tmp_path, capsys):
    cli = _cli_json(capsys, "fit", str(surface_csv), *CLI_COLUMNS, "--bootstrap", "8", "--seed", "3",
                    "--predict-at", "1e22", "--json")
    out = tmp_path / "fit.json"
    result = analysis.fit(surface_csv, columns=COLUMNS, bootstrap=8, seed=3, predict_at=[1e22], out=out)
    for name in ("E", "A", "B", "alpha", "beta", "a", "b"):
        assert result.value(name) == pytest.approx(cli[name], rel=1e-9)
        assert list(result.intervals[name]) == pytest.approx(cli["intervals"][name], rel=1e-9)
    assert result.predictions[0]["N_opt"] == pytest.approx(cli["predictions"][0]["N_opt"], rel=1e-9)
    assert json.loads(out.read_text())["params"]["alpha"] == pytest.approx(cli["alpha"], rel=1e-9)
    # predict and allocate from the file the API wrote, as the CLI reads it
    api = analysis.predict(out, [1e9, 2e9], 2e10)
    cli_pred = _cli_json(capsys, "predict", "--fit", str(out), "--N", "1e9", "2e9", "--D", "2e10", "--json")
    assert [p["loss"] for p in api.points] == pytest.approx([p["loss"] for p in cli_pred["points"]], rel=1e-12)
    assert [p["hi"] for p in api.points] == pytest.approx([p["hi"] for p in cli_pred["points"]], rel=1e-12)
    alloc = analysis.allocate(result, 1e21)
    cli_alloc = _cli_json(capsys, "allocate", "--fit", str(out), "--budget", "1e21", "--json")
    assert (alloc.N_opt, alloc.L_opt) == pytest.approx((cli_alloc["N_opt"], cli_alloc["L_opt"]), rel=1e-12)


def test_several_methods_give_a_comparison_like_the_cli(surface_csv, capsys):
    cli = _cli_json(capsys, "fit", str(surface_csv), *CLI_COLUMNS, "--method", "isoflop,envelope", "--json")
    both = analysis.fit(surface_csv, method=["isoflop", "envelope"], columns=COLUMNS)
    same = analysis.fit(analysis.load(surface_csv, columns=COLUMNS), method="isoflop,envelope")
    frame = both.to_frame()
    assert list(frame.method) == [f["method"] for f in cli["fits"]] == ["isoflop", "envelope"]
    assert frame.a[0] == pytest.approx(cli["fits"][0]["a"], rel=1e-12) and frame.a[0] == both["isoflop"].value("a")
    # one size per budget here: approach 1 cannot be fitted, and both say why in the same words
    assert frame.error[1] == cli["fits"][1]["error"] and "model sizes" in frame.error[1]
    assert same.to_frame().equals(frame)
    assert [d["code"] for d in both.compared] == [d["code"] for d in cli["diagnostics"]]


def test_printing_a_fit_prints_what_the_cli_prints(surface_csv, capsys):
    assert main(["fit", str(surface_csv), *CLI_COLUMNS, "--method", "isoflop", "--drop-highest", "2"]) == 0
    printed = capsys.readouterr().out
    result = analysis.fit(surface_csv, method="isoflop", columns=COLUMNS, drop_highest=2)
    assert printed == f"{result}\n" and "dropped 2 row(s)" in printed and "isoflop fit (power_law" in printed


def test_a_single_name_in_a_list_is_still_a_comparison(surface_csv):
    fitted = analysis.fit(surface_csv, method=["isoflop"], columns=COLUMNS)
    assert [r.spec.method for r in fitted.results] == ["isoflop"] and fitted.to_frame().shape[0] == 1


@pytest.mark.parametrize("api, argv", [
    ({"method": "nope"}, ["--method", "nope"]),
    ({"method": ["isoflop", "nope"]}, ["--method", "isoflop,nope"]),
    ({"bootstrap": 1}, ["--bootstrap", "1"]),
    ({"method": "vpnls", "window": 5}, ["--method", "vpnls", "--window", "5"]),
    ({"method": "isoflop,envelope", "out": "x.json"}, ["--method", "isoflop,envelope", "--out", "x.json"]),
    ({"n_convention": "nonsense"}, None),
    ({"columns": {"N": "absent"}}, ["--columns", "N=absent"]),
])
def test_fit_errors_are_the_cli_errors(surface_csv, capsys, api, argv):
    with pytest.raises(ScalingError) as raised:
        analysis.fit(surface_csv, **{"columns": COLUMNS, **api})
    if argv is not None:
        cli_columns = [] if "columns" in api else CLI_COLUMNS
        assert _cli_error(capsys, "fit", str(surface_csv), *cli_columns, *argv) == " ".join(str(raised.value).split())
    assert "\n" not in str(raised.value)


def test_a_table_already_read_refuses_reading_options(surface_csv):
    table = analysis.load(surface_csv, columns=COLUMNS)
    with pytest.raises(ScalingError, match="^columns, flops say how to read a table, and this one is already read"):
        analysis.fit(table, method="isoflop", columns=COLUMNS, flops="flops_6nd")
    assert analysis.fit(table, method="isoflop", columns={}, n_convention="total").spec.n_points == len(table)


def test_bootstrap_adds_intervals_to_a_fit_and_refuses_one_resample(surface_csv):
    table = analysis.load(surface_csv, columns=COLUMNS)
    plain = analysis.fit(table, method="isoflop")
    assert plain.intervals is None
    boot = analysis.bootstrap(table, plain, 6, seed=1)
    assert boot.bootstrap["n"] == 6 and boot.intervals["a"][0] <= boot.value("a") <= boot.intervals["a"][1]
    assert analysis.bootstrap(table, plain, 0) is plain
    for n in (-1, 1):
        with pytest.raises(ScalingError, match=rf"^--bootstrap {n}: use 0 \(no intervals\) or at least 2 resamples$"):
            analysis.bootstrap(table, plain, n)


def test_predict_reads_points_from_a_dataframe_or_csv_and_says_what_is_missing(surface_csv, tmp_path, capsys):
    fitted = analysis.fit(surface_csv, method="vpnls", columns=COLUMNS)
    frame = pd.DataFrame({"params": [1e9, 1e10], "tokens": [2e10, 2e11]})
    csv = tmp_path / "points.csv"
    frame.to_csv(csv, index=False)
    by_frame = analysis.predict(fitted, points=frame, columns={"N": "params", "D": "tokens"}).to_frame()
    by_csv = analysis.predict(fitted, points=csv, columns={"N": "params", "D": "tokens"}).to_frame()
    direct = analysis.predict(fitted, [1e9, 1e10], [2e10, 2e11]).to_frame()
    assert list(by_frame.loss) == list(by_csv.loss) == list(direct.loss) and direct.loss[1] < direct.loss[0]
    with pytest.raises(ScalingError) as raised:
        analysis.predict(fitted, points=csv)
    fit_file = tmp_path / "fit.json"
    fit_file.write_text(fitted.to_json())
    assert _cli_error(capsys, "predict", "--fit", str(fit_file), "--points", str(csv)) == str(raised.value)
    with pytest.raises(ScalingError, match="^give the points to predict at"):
        analysis.predict(fitted, N=[1e9])


def test_report_writes_the_page_and_shows_its_headline(surface_csv, tmp_path, capsys):
    with pytest.raises(ScalingError) as raised:
        analysis.report(surface_csv, tmp_path / "bad", columns=COLUMNS, bootstrap=1)
    assert _cli_error(capsys, "report", str(surface_csv), *CLI_COLUMNS, "--out", str(tmp_path / "bad"),
                      "--bootstrap", "1") == str(raised.value)
    assert not (tmp_path / "bad").exists()
    report = analysis.report(surface_csv, tmp_path / "report", columns=COLUMNS, bootstrap=0)
    assert (report.out / "index.html").exists()
    headline = json.loads((report.out / "report.json").read_text())["headline"]
    frame = report.to_frame()
    assert list(frame.quantity) == list(headline) and "a" in headline
    assert frame.set_index("quantity").estimate["a"] == headline["a"]["value"]
    assert "analysis.report(" in (report.out / "index.html").read_text()  # the page says how it was made
    assert "index.html</a>" in report._repr_html_() and "<td>a</td>" in report._repr_html_()


def test_moore_matches_the_cli_and_writes_only_when_asked(tmp_path, capsys):
    settings = {"bootstrap": 20, "seed": 1, "allow_extrapolation": True}
    result = analysis.moore(**settings)
    assert result.figures == () and list(tmp_path.iterdir()) == []
    assert main(["moore", "--bootstrap", "20", "--seed", "1", "--allow-extrapolation", "--out", str(tmp_path / "m")]) == 0
    printed = capsys.readouterr().out
    written = json.loads((tmp_path / "m" / "moore.json").read_text())
    assert written["doubling_months"] == pytest.approx(result.summary["doubling_months"], rel=1e-12)
    assert all(f"- {sentence}" in printed for sentence in result.answers)
    frame = result.to_frame()
    assert dict(zip(frame.series, frame.doubling_months)) == pytest.approx(written["doubling_months"], rel=1e-12)


@pytest.mark.parametrize("api, argv", [
    ({"bootstrap": 3}, ["--bootstrap", "3"]),
    ({"anchor_year": 2025, "until": 2020}, ["--anchor-year", "2025", "--until", "2020"]),
    ({"max_extrapolation": 0.5}, ["--max-extrapolation", "0.5"]),
    ({"algorithmic_columns": ["date=D"]}, ["--algorithmic-columns", "date=D"]),
    ({"models": "absent.csv"}, ["--models", "absent.csv"]),
])
def test_moore_errors_are_the_cli_errors(tmp_path, capsys, api, argv):
    out = tmp_path / "moore"
    with pytest.raises(ScalingError) as raised:
        analysis.moore(out=out, **{"bootstrap": 20, **api})
    boot = [] if "bootstrap" in api else ["--bootstrap", "20"]
    assert _cli_error(capsys, "moore", *argv, *boot, "--out", str(out)) == str(raised.value)
    assert not out.exists()


def test_moore_takes_one_kind_of_algorithmic_progress():
    with pytest.raises(ScalingError, match="either as --algorithmic CSV or as --algorithmic-halving-months"):
        analysis.moore(bootstrap=20, algorithmic="rows.csv", algorithmic_halving_months=8)
