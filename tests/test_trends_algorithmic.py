import numpy as np
import pandas as pd
import pytest

from analysis.trends import algorithmic
from scaling.errors import ConfigError, DataError


def synthetic_csv(tmp_path, months=10.0, n=40, noise=0.25, seed=0, date_format="decimal"):
    """Compute needed for a fixed performance halving every `months`, with log-normal scatter."""
    rng = np.random.default_rng(seed)
    year = 2014 + 10 * rng.random(n)
    compute = 1e22 * 2.0 ** (-(year - 2014) * 12 / months + noise * rng.standard_normal(n))
    dates = (year if date_format == "decimal" else
             pd.to_datetime((year - 2014) * 365.25, unit="D", origin="2014-01-01").strftime("%Y-%m-%d"))
    path = tmp_path / "algo.csv"
    pd.DataFrame({"Publication date": dates, "FLOP to reach 3.0 nats": compute}).to_csv(path, index=False)
    return path


COLUMNS = ["date=Publication date", "compute=FLOP to reach 3.0 nats"]


@pytest.mark.parametrize("date_format", ["decimal", "iso"])
def test_fit_recovers_a_known_halving_time_with_an_interval(tmp_path, date_format):
    path = synthetic_csv(tmp_path, months=10.0, date_format=date_format)
    rows = algorithmic.load_table(path, algorithmic.parse_columns(COLUMNS))
    progress = algorithmic.from_table(rows, n_boot=300, where=str(path))
    assert progress.source == "fit" and progress.halving_months == pytest.approx(10.0, rel=0.08)
    lo, hi = progress.ci
    assert lo < 10.0 < hi and hi / lo < 1.5
    assert progress.trend.slope == pytest.approx(12 / progress.halving_months)
    assert progress.as_dict()["halving_months_ci"] == [lo, hi]


def test_the_default_is_ho_et_al_with_its_interval_and_by_hand_has_none():
    default = algorithmic.default(n_boot=4000)
    assert default.halving_months == 8.0 and default.ci == (5.0, 14.0) and default.source == "published"
    months_B = 12 / default.trend.boot_slopes
    assert np.percentile(months_B, [2.5, 97.5]) == pytest.approx([5.0, 14.0], rel=0.06)
    hand = algorithmic.by_hand(6.0, n_boot=50)
    assert hand.ci is None and np.allclose(hand.trend.boot_slopes, 2.0)
    with pytest.raises(ConfigError, match="positive"):
        algorithmic.by_hand(-3.0)


def test_sensitivity_lists_only_faster_estimates():
    rows = algorithmic.sensitivity(algorithmic.default(n_boot=20), compute_doubling_months=6.0)
    assert rows and all(r["algorithmic_halving_months"] < 8.0 for r in rows)
    for r in rows:
        expected = 1 / (1 / 6 + 1 / r["algorithmic_halving_months"])
        assert r["effective_compute_doubling_months"] == pytest.approx(expected)
    assert algorithmic.sensitivity(algorithmic.by_hand(2.0, 20), 6.0) == []


def test_decimal_years_with_blank_rows_keep_the_rest(tmp_path):
    pd.DataFrame({"date": [2020.0, None, 2021.0, 2022.0], "compute": [4e20, 3e20, 2e20, 1e20]}).to_csv(
        tmp_path / "gaps.csv", index=False)
    rows = algorithmic.load_table(tmp_path / "gaps.csv", algorithmic.parse_columns([]))
    assert list(rows["year"]) == [2020.0, 2021.0, 2022.0]


@pytest.mark.parametrize("pairs, message", [
    (["date"], "not ROLE=COLUMN"), (["year=Date"], "not ROLE=COLUMN"), (["compute="], "not ROLE=COLUMN")])
def test_bad_column_pairs_are_refused(pairs, message):
    with pytest.raises(ConfigError, match=message):
        algorithmic.parse_columns(pairs)


def test_bad_tables_are_one_line_errors(tmp_path):
    columns = algorithmic.parse_columns(COLUMNS)
    with pytest.raises(DataError, match="not found"):
        algorithmic.load_table(tmp_path / "absent.csv", columns)
    path = synthetic_csv(tmp_path)
    with pytest.raises(DataError, match="lacks column.*compute='FLOP'"):
        algorithmic.load_table(path, {"date": "Publication date", "compute": "FLOP"})
    pd.DataFrame({"date": [2020, 2021], "compute": [1e20, 5e19]}).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(DataError, match="2 usable row"):
        algorithmic.load_table(tmp_path / "short.csv", algorithmic.parse_columns([]))
    pd.DataFrame({"date": [20200101, 20210101, 20220101], "compute": [4e20, 2e20, 1e20]}).to_csv(
        tmp_path / "ints.csv", index=False)
    with pytest.raises(DataError, match="outside 1900-2200"):
        algorithmic.load_table(tmp_path / "ints.csv", algorithmic.parse_columns([]))
    rising = pd.DataFrame({"year": [2020.0, 2021.0, 2022.0], "compute": [1e20, 2e20, 4e20]})
    with pytest.raises(DataError, match="no halving"):
        algorithmic.from_table(rising, n_boot=20, where="rising.csv")
