"""analysis.reporting.page: the report's static HTML, from contents the tests build (a real fit of a
synthetic surface where a FitResult is needed), checked for what a reader must find on the page."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pandas as pd
import pytest

from analysis.fitting import fit
from analysis.reporting import page
from analysis.reporting.fits import BacktestEntry, FitEntry
from analysis_helpers import chinchilla_surface


@pytest.fixture(scope="module")
def fitted():
    table, _ = chinchilla_surface()
    return fit(table, "vpnls")


def content(**changes) -> page.Content:
    base = dict(title="Scaling-law report: <demo>", source="/data/sweep", kind="sweep",
                counts={"rows": 7, "status": {"completed": 6, "failed": 1}, "points": 6, "sizes": 3, "budgets": 2,
                        "C_range": [1e17, 1e18], "N_range": [1e6, 1e7]},
                conventions="N counts every parameter.", notes=["a note about the input"],
                problems=["the lr figure failed: no lr column"],
                headline=[("N_opt", 1.5e9, (1e9, 2e9), "optimal size")],
                headline_from="vpnls", headline_warnings=["INVALID: exponent out of range", "few budgets"],
                figures=[page.FigureInfo("isoflop", "IsoFLOP curves", "One parabola per budget.", 900)],
                missing_figures=[("Learning rate", "no lr list")], entries=[], backtest=BacktestEntry(),
                runs=pd.DataFrame({"run_id": ["a", "b"], "status": ["completed", "failed"]}),
                generated="2026-01-01 00:00 UTC", command="scaling report /data/sweep")
    return page.Content(**{**base, **changes})


def test_the_page_says_where_its_numbers_come_from_and_names_every_problem():
    text = page.render(content())
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "<title>Scaling-law report: &lt;demo&gt;</title>" in text  # escaped, never markup
    assert "7 rows (6 completed, 1 failed)" in text and "over 3 model sizes and 2 budgets" in text
    assert "<div class=\"note\">a note about the input</div>" in text
    assert "<div class=\"error\">the lr figure failed: no lr column</div>" in text
    assert "<div class=\"error\">INVALID: exponent out of range</div>" in text  # cannot be read past
    assert "<div class=\"warn\">few budgets</div>" in text
    assert "<th>95% interval</th>" in text and "[1.000e+09, 2.000e+09]" in text
    assert "<img src=\"figures/isoflop.png\" alt=\"IsoFLOP curves\" width=\"900\">" in text
    assert "Not drawn: no lr list" in text and "No backtest: unknown reason" in text
    assert "<summary>2 rows of the results table</summary>" in text


def test_a_page_is_static_whatever_its_inputs_say():
    hostile = "<script>alert(1)</script>"
    text = page.render(content(title=hostile, notes=[hostile], command=hostile,
                               runs=pd.DataFrame({"run_id": [hostile]})))
    assert "<script" not in text and "http" not in text  # no scripts, no external resources


def test_without_a_frontier_the_headline_says_so_instead_of_a_table():
    text = page.render(content(headline=[]))
    assert "No fit with a compute-optimal frontier" in text and "class=\"headline\"" not in text


def test_unreliable_intervals_are_labelled_as_such():
    text = page.render(content(headline_intervals="Intervals UNRELIABLE: only 3 of 30 refits usable."))
    assert "<th>interval (unreliable)</th>" in text and "<th>95% interval</th>" not in text


def test_a_fit_section_shows_every_value_and_its_full_specification(fitted):
    section = page.fit_section(FitEntry("vpnls", "Approach 3 (VPNLS)", result=fitted))
    for name in (*fitted.params, *fitted.derived):
        assert f"<td class=\"l\">{name}</td>" in section
    spec_json = json.loads(html.unescape(re.search(r"<pre>(.*)</pre>", section, re.S).group(1)))
    assert spec_json["params"] == pytest.approx(fitted.params) and "samples" not in spec_json
    assert f"on {fitted.spec.n_points} points" in section


def test_a_method_that_could_not_fit_says_why():
    section = page.fit_section(FitEntry("envelope", "Approach 1", error="one size wins at every budget"))
    assert "Not fitted: one size wins at every budget" in section and "<table" not in section


def test_the_bootstrap_sentence_gives_the_level_only_when_the_refits_are_reliable():
    b = {"n_ok": 190, "n": 200, "n_units": 30, "unit": "run", "seed": 0, "level": 0.95, "reliable": True}
    assert page.bootstrap_sentence(b).startswith("95% percentile intervals from 190 of 200 bootstrap refits")
    weak = page.bootstrap_sentence({**b, "n_ok": 150, "reliable": False})
    assert weak.startswith("Intervals UNRELIABLE: only 150 of 200") and "not 95% intervals" in weak


def test_predictions_show_a_dash_for_a_value_the_fit_cannot_give():
    table = page.predictions_table([{"C": 1e20, "N_opt": 2e9, "N_opt_lo": 1e9, "N_opt_hi": 3e9, "D_opt": None}])
    cells = re.findall(r"<td>(.*?)</td>", table)
    assert cells[:3] == ["1.000e+20", "2.000e+09<br><small>[1.000e+09, 3.000e+09]</small>", "-"]


def test_the_runs_table_keeps_the_known_columns_in_order_and_blanks_missing_values():
    frame = pd.DataFrame({"lr": [3e-3], "run_id": ["r1"], "n_params": [np.int64(1234567)],
                          "final_val_loss": [np.nan], "other": ["x"]})
    table = page.runs_table(frame)
    assert re.findall(r"<th>(.*?)</th>", table) == ["run_id", "n_params", "final_val_loss", "lr"]
    assert re.findall(r"<td>(.*?)</td>", table) == ["r1", "1,234,567", "", "0.003"]
    unknown = pd.DataFrame({f"c{i}": [i] for i in range(14)})
    assert len(re.findall(r"<th>", page.runs_table(unknown))) == 12


@pytest.mark.parametrize("value, shown", [
    (None, ""), (0.0, "0"), (1.5, "1.5"), (12340.0, "1.234e+04"), (1e5, "1.000e+05"), (0.001, "0.001"),
    (0.0009, "9.000e-04"), (float("nan"), "-"), (float("inf"), "inf")])
def test_numbers_are_short_and_switch_to_exponents_outside_1e_minus_3_to_1e5(value, shown):
    assert page._num(value) == shown


def test_an_interval_with_a_missing_end_is_undefined_not_a_number():
    assert page._interval(None) == "" and page._interval((1.0, None)) == "undefined"
    assert page._interval((1.0, float("nan"))) == "undefined" and page._interval((1.0, 2.0)) == "[1, 2]"
