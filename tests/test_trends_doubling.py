import numpy as np
import pytest

from analysis.trends import doubling, loaders
from analysis.trends.published import PUBLISHED, months_from_growth
from conftest import SHARED_DATA
from scaling.errors import DataError

NOTABLE = SHARED_DATA / "epoch__notable_ai_models_2025-05.csv"
HARDWARE = SHARED_DATA / "epoch__ml_hardware_2025-12.csv"
RUPP = SHARED_DATA / "rupp__microprocessor_trend_data_50yrs.csv"
N_BOOT = 300


def shared(path):
    if not path.exists():
        pytest.skip(f"shared data file {path} is absent (tests read ../shared/data; see its README)")
    return path


def synthetic(doubling_months, n=200, noise_log10=0.5, seed=0, start=2010.0, span=12.0):
    rng = np.random.default_rng(seed)
    year = start + span * rng.random(n)
    value = 1e20 * 2.0 ** ((year - start) * 12.0 / doubling_months) * 10.0 ** (noise_log10 * rng.standard_normal(n))
    return year, value


def test_recovers_a_known_doubling_time():
    year, value = synthetic(6.0)
    trend = doubling.fit_trend(year, value, "x", n_boot=N_BOOT)
    lo, hi = trend.ci_months()
    assert trend.doubling_months == pytest.approx(6.0, rel=0.03)
    assert lo < 6.0 < hi and hi - lo < 1.0
    assert trend.growth_per_year == pytest.approx(4.0, rel=0.1)
    # The fitted line passes through the data's centre and predicts on the original scale.
    assert np.log2(trend.predict(trend.t_ref)) == pytest.approx(np.log2(value).mean(), abs=1e-9)


def test_noise_free_fit_is_exact_and_interval_collapses():
    year = np.array([2000.0, 2001.5, 2003.0, 2010.0])
    trend = doubling.fit_trend(year, 7.0 * 2.0 ** ((year - 2000) / 2.0), n_boot=50)
    assert trend.doubling_months == pytest.approx(24.0, rel=1e-12)
    assert trend.ci_months() == pytest.approx((24.0, 24.0), rel=1e-9)
    assert trend.predict(2004.0) == pytest.approx(28.0)


def test_bootstrap_interval_covers_the_truth_most_of_the_time():
    # 95% percentile intervals from 30 independent noisy data sets: expect ~28-29 to cover 9 months.
    covered = sum(lo < 9.0 < hi for lo, hi in (
        doubling.fit_trend(*synthetic(9.0, n=60, noise_log10=0.8, seed=s), n_boot=200, seed=s).ci_months()
        for s in range(30)))
    assert covered >= 25


def test_flat_or_falling_series_has_no_finite_doubling_time():
    year, value = synthetic(1e9, n=50, noise_log10=0.3, seed=3)
    trend = doubling.fit_trend(year, value, n_boot=200)
    assert trend.ci_months()[1] == float("inf")  # slope interval straddles zero
    falling = doubling.fit_trend([2000, 2001, 2002, 2003], [8.0, 4.0, 2.0, 1.0], n_boot=20)
    assert falling.doubling_months == float("inf")


def test_too_few_points_is_a_user_error():
    with pytest.raises(DataError, match="at least 3"):
        doubling.fit_trend([2000.0, 2001.0, np.nan], [1.0, 2.0, 3.0], "tiny")
    with pytest.raises(DataError, match="at least 3"):
        doubling.fit_trend([2000.0, 2000.0, 2000.0], [1.0, 2.0, 3.0], "same date")


def test_published_stand_in_reproduces_the_published_interval():
    ho = PUBLISHED["algorithmic_halving"]
    trend = doubling.published_trend("algo", ho.months, ho.what, ho.ci, n_boot=4000)
    lo, hi = trend.ci_months()
    assert trend.doubling_months == 8.0 and trend.source == "published"
    # log-symmetric around 8 with the published log-width: 4.8-13.4 against the published 5-14
    assert 4.5 < lo < 5.3 and 12.5 < hi < 14.5


def test_no_files_uses_builtin_table_and_published_values():
    trends = doubling.fit_all(n_boot=50)
    assert trends["frontier_lm_compute"].source == "builtin" and trends["frontier_lm_compute"].n >= 12
    for key in ("notable_compute", "hardware_flops", "hardware_flops_per_dollar", "transistors"):
        assert trends[key].source == "published"
        assert trends[key].doubling_months == pytest.approx(PUBLISHED[key].months)


@pytest.fixture(scope="module")
def shared_trends():
    return doubling.fit_all(loaders.load_notable_models(shared(NOTABLE)), loaders.load_hardware(shared(HARDWARE)),
                            loaders.load_transistors(shared(RUPP)), n_boot=N_BOOT)


def test_compute_trends_match_epoch(shared_trends):
    # Epoch (Sevilla & Roldan 2024): notable models 4-5x per year since 2010; frontier LMs about 5x per year
    # since mid-2020. Ours: 4.65x and 4.79x. The notable fit uses 430 models, so a result outside Epoch's own
    # stated range would be a real discrepancy; for the 46 frontier LMs we allow 4-6x ("about 5x").
    notable, frontier = shared_trends["notable_compute"], shared_trends["frontier_lm_compute"]
    assert 4.0 <= notable.growth_per_year <= 5.0 and notable.n > 400
    assert months_from_growth(5.0) - 0.5 < notable.ci_months()[0] < notable.ci_months()[1] < months_from_growth(4.0) + 0.5
    assert 4.0 <= frontier.growth_per_year <= 6.0 and 40 < frontier.n < 60
    assert frontier.year_min >= 2020.5


def test_transistors_double_every_two_years(shared_trends):
    # Moore (1975): every two years. Rupp's 1971-2021 data give 23.9 months; a 10% tolerance still fails a
    # units mistake or a wrong window (e.g. post-2005 only gives a different rate) while allowing for the
    # round number.
    trend = shared_trends["transistors"]
    assert trend.doubling_months == pytest.approx(24.0, rel=0.10)
    lo, hi = trend.ci_months()
    assert hi - lo < 3.0


def test_hardware_trends_are_near_the_published_ones(shared_trends):
    # FP32 FLOP/s: Hobbhahn et al. (2023) found 2.3 years on 47 chips to 2023; Epoch's later refits of this
    # database give 2.7-2.8 years. Ours (126 chips, 2008-2025) lands at 2.8: accept 2.0-3.2 years.
    flops = shared_trends["hardware_flops"]
    assert 24.0 <= flops.doubling_months <= 38.4
    # FLOP/s per dollar: our interval must contain Hobbhahn & Besiroglu's (2022) 2.46 years.
    per_dollar = shared_trends["hardware_flops_per_dollar"]
    lo, hi = per_dollar.ci_months()
    assert lo < PUBLISHED["hardware_flops_per_dollar"].months < hi
    assert 40 < per_dollar.n < 60
    # Tensor formats improve faster than FP32; FP32 per dollar is the slowest series.
    assert shared_trends["hardware_flops_tensor16"].doubling_months < flops.doubling_months
    assert shared_trends["hardware_flops_per_dollar_fp32"].doubling_months > per_dollar.doubling_months


def test_hardware_without_prices_falls_back_to_the_published_price_performance():
    import pandas as pd

    year = np.linspace(2010, 2024, 15)
    hw = pd.DataFrame({"year": year, "fp32": 1e12 * 2 ** ((year - 2010) / 2.5), "tensor_fp16": np.nan,
                       "training_flops": 1e12 * 2 ** ((year - 2010) / 2.5), "price_usd": np.nan})
    trends = doubling.fit_all(hardware=hw, n_boot=20)
    assert trends["hardware_flops"].doubling_months == pytest.approx(30.0)
    assert trends["hardware_flops_per_dollar"].source == "published" and "hardware_flops_tensor16" not in trends
