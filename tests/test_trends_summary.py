import dataclasses
import json

import numpy as np
import pytest

from analysis.trends import algorithmic, doubling, summary
from analysis.trends.loss_frontier import EPOCH_CHINCHILLA
from scaling.errors import ConfigError

ALLOWED = summary.Options(n_boot=50, allow_extrapolation=True)


@pytest.fixture(scope="module")
def stamped():
    return summary.analyze(options=ALLOWED)[0]


def test_builtin_run_has_the_contract_keys(stamped):
    result = stamped
    for key in summary.HEADLINE_KEYS:
        assert isinstance(result["doubling_months"][key], float) and len(result["doubling_months_ci"][key]) == 2
    assert set(result["loss_halving_years"]) == {"hardware_only", "hardware_plus_algorithms", "compute_trend",
                                                 "compute_plus_algorithms"}
    lo, hi = result["effective_compute_doubling_months_ci"]
    assert lo < result["effective_compute_doubling_months"] < hi
    assert result["algorithmic"]["halving_months"] == 8.0 and result["algorithmic"]["halving_months_ci"] == [5.0, 14.0]
    for key in ("cost_to_fixed_loss", "loss_at_fixed_budget", "limits", "intervals", "extrapolation"):
        assert result[key]
    assert all(isinstance(s, str) and s.endswith(".") for s in result["answers"])
    json.dumps(result)  # plain JSON types throughout


def test_headlines_come_first_and_reducible_loss_second_with_e(stamped):
    answers = stamped["answers"]
    assert answers[0].startswith("Headline: effective training compute")
    assert "compute needed to reach a fixed loss halves" in answers[1] and "cost" in answers[1]
    assert "fixed budget" in answers[2]
    assert answers[3].startswith("Second, and only if E = 1.817")


def test_the_default_frontier_is_refused_past_the_guard():
    with pytest.raises(ConfigError, match="orders of magnitude.*--allow-extrapolation"):
        summary.analyze(options=summary.Options(n_boot=20))


def test_the_flag_stamps_every_frontier_dependent_sentence(stamped):
    assert "orders of magnitude beyond the fit" in stamped["stamp"]
    frontier_free = ("Headline:", "The compute needed", "Sensitivity:", "Training compute", "Peak", "ML-accelerator",
                     "Transistors", "Rule of thumb", "The frontier (")
    for sentence in stamped["answers"]:
        if not sentence.startswith(frontier_free):
            assert "orders of magnitude beyond the fit]" in sentence, sentence
    assert "orders of magnitude beyond the fit" in summary.markdown(stamped, [])
    for rates in stamped["scenarios"].values():
        assert rates["stamp"] and rates["extrapolation_factor"] > 100


def test_each_scenario_names_its_limit_years_and_saturating_loss(stamped):
    for name, rates in stamped["scenarios"].items():
        sentence = next(s for s in stamped["answers"] if s.startswith(f"Under '{name}'"))
        assert "stock of public text" in sentence and "if compute and tokens saturate" in sentence
        assert rates["at_until"]["loss_saturating"] >= rates["at_until"]["loss"] - 1e-12
    fast = stamped["scenarios"]["compute_trend"]
    # The observed compute trend passes 2e29 FLOP before 2035, so saturating costs loss by then.
    assert fast["limits"]["compute_passes_feasible_year"] < 2035
    assert fast["at_until"]["loss_saturating"] > fast["at_until"]["loss"]


def test_within_the_guard_nothing_is_stamped_but_the_factor_is_stated():
    options = dataclasses.replace(ALLOWED, allow_extrapolation=False, max_extrapolation=1e20)
    result = summary.analyze(options=options)[0]
    assert result["stamp"] is None and not any("beyond the fit]" in s for s in result["answers"])
    assert "orders of magnitude" in result["answers"][-1] and result["extrapolation"]["factor"] > 1e9


def test_a_user_fit_is_in_other_units_and_the_intervals_say_what_they_cover():
    user = dataclasses.replace(EPOCH_CHINCHILLA, units="other units: bytes of Python source", draws=None,
                               draws_note="none: the frontier is held fixed", source="fit from fit.json")
    result = summary.analyze(frontier=user, options=ALLOWED)[0]
    assert "only its exponents carry over" in result["answers"][-1]
    assert result["frontier"]["E_ci"] is None and "E held fixed" in result["answers"][3]
    text = summary.markdown(result, [])
    assert "## What each interval covers" in text and "frontier's draws of E" in text


def test_algorithmic_progress_set_by_hand_carries_into_every_result():
    options = dataclasses.replace(ALLOWED, algorithms=algorithmic.by_hand(4.0, 50))
    result = summary.analyze(options=options)[0]
    compute_months = result["scenarios"]["compute_trend"]["compute_doubling_months"]
    assert result["effective_compute_doubling_months"] == pytest.approx(1 / (1 / compute_months + 1 / 4.0))
    assert result["cost_to_fixed_loss"]["compute_halving_months"] == pytest.approx(4.0)
    assert result["algorithmic"]["sensitivity"] == []  # no published estimate is faster than 4 months
    # No interval is claimed for a hand-set rate: not a degenerate "95% CI 4.0-4.0".
    cost_sentence = result["answers"][1]
    assert "(set by hand, no interval)" in cost_sentence and "95% CI 4.0-4.0" not in cost_sentence
    assert ": FLOP/s per dollar only)" in cost_sentence


def test_definition_bands_and_per_format_series_are_surfaced_when_present():
    base = doubling.published_trend("hardware_flops_tensor16", 26.0, "tensor", None, 20)
    trends = {"hardware_flops_tensor16": dataclasses.replace(base, alternatives={"Theil-Sen": 25.0}, band=(25.0, 26.0)),
              "transistors": doubling.published_trend("transistors", 24.0, "t", None, 20)}
    block = summary._trend_block(trends, list(trends))
    assert block["doubling_months_band"] == {"hardware_flops_tensor16": [25.0, 26.0]}
    assert block["doubling_months_alternatives"] == {"hardware_flops_tensor16": {"Theil-Sen": 25.0}}
    assert "hardware_flops_tensor16" in summary.EXTRA_KEYS and "hardware_flops_per_dollar_fp8" in summary.EXTRA_KEYS
    assert np.isfinite(block["doubling_months"]["transistors"])


def test_html_summary_renders_the_stamp_and_interval_notes_in_bold(stamped):
    page = summary.html_page(summary.markdown(stamped, ["loss_by_year"]))
    assert "<b>Every loss" in page and "<li><b>loss_halving_years_ci</b>:" in page and "**" not in page


def test_html_page_converts_each_markdown_block_and_escapes_text():
    md = ("# Title <x>\n## Part\n- one **bold** item\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
          "![](fig.png)\nplain & text\n")
    page = summary.html_page(md)
    assert "<h1>Title &lt;x&gt;</h1>" in page and "<h2>Part</h2>" in page
    assert "<ul>\n<li>one <b>bold</b> item</li>\n<li>two</li>\n</ul>" in page
    assert "<table>\n<tr><th>a</th><th>b</th></tr>\n<tr><td>1</td><td>2</td></tr>\n</table>" in page
    assert '<img src="fig.png"' in page and "<p>plain &amp; text</p>" in page and "---" not in page


@pytest.mark.parametrize("months, text", [(6.0, "6.0 months"), (23.9, "23.9 months"), (24.0, "2.0 years"),
                                          (30.0, "2.5 years")])
def test_durations_read_in_months_below_two_years_and_in_years_above(months, text):
    assert summary._years_text(months) == text


def test_an_interval_without_an_upper_end_says_unbounded():
    assert summary._ci((3.04, 7.0)) == "95% CI 3.0-7.0"
    assert summary._ci((3.04, float("inf")), digits=2) == "95% CI 3.04-unbounded"
    assert summary._stamped("Loss halves.", "EXTRAPOLATED") == "Loss halves [EXTRAPOLATED]."
    assert summary._stamped("Loss halves.", None) == "Loss halves."
