import json
import os

import numpy as np
import pandas as pd
import pytest

from analysis_helpers import CHINCHILLA_BUDGETS, EPOCH_COLUMNS, EPOCH_CSV, epoch_fit, need
from analysis.reporting.build import build_report
from report_helpers import TRUTH, make_sweep
from scaling_cli.main import main
from scaling_cli.report import collect_if_needed
from scaling.errors import DataError, ScalingError
from scaling.io import MANIFEST

FIGURES = ("loss_curves", "isoflop", "frontier", "surface", "residuals", "backtest")
A_TRUE = TRUTH["beta"] / (TRUTH["alpha"] + TRUTH["beta"])


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return make_sweep(tmp_path_factory.mktemp("sweep") / "sweep", failed=1)


@pytest.fixture(scope="module")
def report(sweep, tmp_path_factory):
    """The report of the synthetic sweep, made through the CLI as a user would: (out dir, printed text)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("report") / "report"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["report", str(sweep), "--out", str(out), "--bootstrap", "30"]) == 0
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A six-run sweep (2 budgets x 3 sizes) and its report: approach 3 is barely determined there."""
    sweep = make_sweep(tmp_path_factory.mktemp("small") / "sweep", budgets=(1e18, 1e19), sizes_per_budget=3,
                       width=0.5)
    out = sweep.parent / "report"
    return sweep, build_report(sweep, out, n_boot=20)


def test_a_sweep_gives_every_figure_and_fit(report):
    out, _ = report
    for name in FIGURES:
        assert (out / "figures" / f"{name}.png").stat().st_size > 20_000, name
        assert (out / "figures" / f"{name}.svg").stat().st_size > 20_000, name
    summary = json.loads((out / "report.json").read_text())
    assert summary["figures"] == list(FIGURES) and not summary["problems"] and not summary["missing_figures"]
    assert all(f["error"] is None for f in summary["fits"].values()), summary["fits"]
    assert set(summary["fits"]) == {"parametric", "isoflop", "envelope"}
    headline = summary["headline"]
    assert headline["a"]["value"] == pytest.approx(A_TRUE, abs=0.03)
    lo, hi = headline["a"]["interval"]
    assert lo < headline["a"]["value"] < hi
    assert summary["backtest"]["summary"]["loss_mean_abs_rel_error"] < 0.02
    fits = json.loads((out / "fits.json").read_text())
    assert len(fits[0]["result"]["samples"]["alpha"]) >= 25  # replicates kept for later intervals
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_the_page_holds_figures_tables_and_specifications(report):
    text = (report[0] / "index.html").read_text()
    for name in FIGURES:
        assert f'src="figures/{name}.png"' in text and f'href="figures/{name}.svg"' in text
    for needle in ("Approach 3", "Approach 2", "Approach 1", "95% interval", "huber_log", "Backtest",
                   "skipped 1 run(s) whose status is not &#x27;completed&#x27;", "Full specification"):
        assert needle in text, needle
    assert "<script" not in text  # a static page: nothing to fail at load time


def test_cli_prints_the_report_path_and_headline(report):
    out, printed = report
    assert f"{out.resolve() / 'index.html'}" in printed and "headline" in printed and "a = " in printed


def test_a_six_run_sweep_still_reports_with_warnings(small):
    _, result = small
    text = (result.out / "index.html").read_text()
    assert "5 parameters fitted to 6 points" in text
    assert "surface" in result.figures and "frontier" in result.figures
    assert "backtest" not in result.figures and "No backtest" in text  # 3 runs left to fit on: said, not drawn
    assert any("[few_points]" in w for w in result.warnings)


def test_a_results_file_has_no_loss_curves_and_says_so(small):
    sweep, result = small
    out = sweep.parent / "from_table"
    table_report = build_report(sweep / "results.parquet", out, n_boot=0)
    assert "loss_curves" in result.figures and "loss_curves" not in table_report.figures
    text = (out / "index.html").read_text()
    assert "no per-run loss curves" in text and "Not drawn" in text


def test_a_given_fit_is_shown_and_not_refitted(sweep, report, tmp_path):
    from analysis.loading import from_arrays
    from analysis.reporting.fits import given_entry
    from analysis.result import FitResult

    saved = json.loads((report[0] / "fits.json").read_text())[0]["result"]  # what `scaling fit --out` writes
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(saved))
    result = build_report(sweep, tmp_path / "report", fit_path=path, n_boot=0)
    fits = json.loads((tmp_path / "report" / "fits.json").read_text())
    assert [f["key"] for f in fits] == ["given", "isoflop", "envelope"]
    assert fits[0]["result"]["params"] == pytest.approx(saved["params"])
    assert fits[0]["result"]["intervals"] == saved["intervals"]  # its own bootstrap, kept
    assert result.headline["alpha"]["value"] == pytest.approx(saved["params"]["alpha"])

    other = from_arrays([1e8, 2e8, 4e8], [2e9, 4e9, 8e9], [3.0, 2.9, 2.8])
    entry = given_entry(other, FitResult.from_dict(saved), str(path), n_boot=0, seed=0)
    assert "this fit was made on other data" in entry.warnings[0]


def test_results_are_collected_when_missing_and_a_rerun_replaces_only_the_reports_files(small, tmp_path):
    # The small sweep again, uncollected; its saved fit keeps approach 3 from being refitted twice more.
    fit_path = tmp_path / "fit.json"
    fit_path.write_text(json.dumps(json.loads((small[1].out / "fits.json").read_text())[0]["result"]))
    sweep = make_sweep(tmp_path / "sweep", budgets=(1e18, 1e19), sizes_per_budget=3, width=0.5, collect=False)
    out = tmp_path / "report"
    # The analysis reads result files only; the command collects them first.
    with pytest.raises(DataError, match="no results.parquet; collect it first"):
        build_report(sweep, out, fit_path=fit_path, n_boot=0)
    assert not (sweep / "results.parquet").exists() and not out.exists()
    assert main(["report", str(sweep), "--out", str(out), "--fit", str(fit_path), "--bootstrap", "0"]) == 0
    assert (sweep / "results.parquet").exists()
    text = (out / "index.html").read_text()
    assert "results.parquet was missing: collected 6 row(s)" in text and "other data" not in text
    # A figure the previous report wrote and this one does not is removed; a file the user added stays.
    manifest = json.loads((out / MANIFEST).read_text())
    (out / MANIFEST).write_text(json.dumps({**manifest, "files": manifest["files"] + ["figures/stale.png"]}))
    (out / "figures" / "stale.png").write_bytes(b"x")
    (out / "figures" / "mine.png").write_bytes(b"mine")
    build_report(sweep, out, fit_path=fit_path, n_boot=0)
    assert not (out / "figures" / "stale.png").exists() and (out / "figures" / "isoflop.png").exists()
    assert (out / "figures" / "mine.png").read_bytes() == b"mine"
    other = tmp_path / "notes"
    (other / "photos").mkdir(parents=True)
    for name in ("index.html", "photos/cat.jpg", "notes.txt"):
        (other / name).write_text("keep me")
    with pytest.raises(ScalingError, match="non-empty directory that scaling report did not write"):
        build_report(sweep, other, n_boot=0)
    assert all((other / name).read_text() == "keep me" for name in ("index.html", "photos/cat.jpg", "notes.txt"))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_command_collects_again_only_when_a_run_finished_after_the_results(small, tmp_path):
    sweep = small[0]
    results = sweep / "results.parquet"
    before = results.read_bytes()
    assert collect_if_needed(sweep) == () and collect_if_needed(results) == ()
    summary = next((sweep / "runs").glob("*/summary.json"))
    os.utime(results, (summary.stat().st_mtime - 60,) * 2)  # a run finished after the last collection
    note, = collect_if_needed(sweep)
    assert note == f"results.parquet was older than a run's summary.json: collected 6 row(s) from {sweep}"
    assert results.stat().st_mtime >= summary.stat().st_mtime and results.read_bytes() == before
    assert collect_if_needed(sweep) == ()


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "no such sweep directory or results file" in err and "\n" not in err
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "neither results.parquet nor sweep.json" in capsys.readouterr().err
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r"), "--bootstrap", "1"]) == 2


def test_chinchilla_points(tmp_path):
    """Epoch's digitised Chinchilla points with their approach-3 refit (computed once per session for the
    analysis tests): the report draws it and adds approach 2 and the backtest."""
    csv = need(EPOCH_CSV)
    fit_path = tmp_path / "fit.json"
    fit_path.write_text(epoch_fit().to_json())
    result = build_report(csv, tmp_path / "report", fit_path=fit_path, columns=EPOCH_COLUMNS,
                          budgets=CHINCHILLA_BUDGETS, drop_highest=5, n_boot=0)
    assert result.headline["a"]["value"] == pytest.approx(0.514, abs=0.01)
    assert {"isoflop", "frontier", "surface", "residuals", "backtest"} <= set(result.figures)
    summary = json.loads((tmp_path / "report" / "report.json").read_text())
    assert not any("other data" in w for w in summary["fits"]["given"]["warnings"])  # the same points
    assert summary["fits"]["isoflop"]["error"] is None
    assert summary["backtest"]["summary"]["loss_mean_abs_rel_error"] < 0.03
    table = pd.read_csv(csv)
    assert summary["counts"]["rows"] == len(table)
    assert np.isfinite(summary["headline"]["tokens_per_param"]["value"])


def test_three_runs_give_a_page_that_says_what_is_missing(tmp_path):
    sweep = make_sweep(tmp_path / "sweep", budgets=(1e18,), sizes_per_budget=3, width=0.5)
    result = build_report(sweep, tmp_path / "report", n_boot=0)
    assert result.headline == {} and result.figures == ["loss_curves", "isoflop"]
    text = (tmp_path / "report" / "index.html").read_text()
    assert "an L(N, D) surface needs at least 6 distinct points" in text
    assert "No fit with a compute-optimal frontier could be made" in text and text.count("Not drawn") == 4


def test_an_lr_list_gives_the_lr_figure_and_the_fits_use_the_best_lr(small, tmp_path):
    """The six-run sweep's results trained at three lrs per point (the middle one best, a penalty of
    0.05 nats a factor 2 away): the report fits the tuned rows, so its headline matches the sweep's."""
    sweep, base = small
    runs = pd.read_parquet(sweep / "results.parquet")
    copies = []
    for factor in (0.5, 1.0, 2.0):
        copy = runs.assign(lr=runs.lr * factor, run_id=runs.run_id + f"-x{factor:g}")
        copy["final_val_loss"] = copy.final_val_loss + (0.05 if factor != 1.0 else 0.0)
        copies.append(copy)
    path = tmp_path / "results.parquet"
    pd.concat(copies, ignore_index=True).to_parquet(path)
    tuned = build_report(path, tmp_path / "report", n_boot=0)
    assert "lr_sweep" in tuned.figures and "lr_sweep" not in base.figures
    text = (tmp_path / "report" / "index.html").read_text()
    assert 'src="figures/lr_sweep.png"' in text and "dropped 12 of 18 rows" in text
    assert tuned.headline["a"]["value"] == pytest.approx(base.headline["a"]["value"], rel=1e-6)
