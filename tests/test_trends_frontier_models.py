import numpy as np
import pandas as pd
import pytest

from analysis.trends import doubling, loaders
from analysis.trends.frontier_models import EPOCH_COMPUTE_SOURCE, FRONTIER_LMS, frontier_table
from conftest import SHARED_DATA

NOTABLE = SHARED_DATA / "epoch__notable_ai_models_2025-05.csv"


def shared(path):
    if not path.exists():
        pytest.skip(f"shared data file {path} is absent (tests read ../shared/data; see its README)")
    return path


def test_builtin_frontier_table_is_consistent():
    table = frontier_table()
    assert table["model"].is_unique and table["date"].is_monotonic_increasing and len(table) >= 40
    assert table["date"].min() >= pd.Timestamp(doubling.FRONTIER_LM_SINCE)  # the CSV path's window: no GPT-3
    for m in FRONTIER_LMS:
        assert m.citation and m.organization, m.name
        assert 1e22 < m.compute < 1e27, m.name
        if m.params is not None and m.tokens is not None:  # a typo in N, D or C would break C = 6ND
            assert 0.8 < m.compute / (6 * m.params * m.tokens) < 1.3, m.name
    assert (table["compute_source"] == EPOCH_COMPUTE_SOURCE).all()
    by_name = table.set_index("model")
    # closed frontier models are in, at Epoch's estimates
    assert by_name.loc["GPT-4", "compute"] == 2.1e25 and by_name.loc["Gemini 1.0 Ultra", "compute"] == 5e25
    assert np.isnan(by_name.loc["GPT-4", "params"]) and by_name.loc["Chinchilla", "tokens"] == 1.4e12


def test_builtin_table_is_epochs_frontier_language_models():
    # Every row is one of Epoch's frontier LMs in the window, at Epoch's compute and date, and none is missing.
    models = loaders.load_notable_models(shared(NOTABLE))
    epoch = doubling.frontier_lm_rows(models).set_index("model")
    table = frontier_table().set_index("model")
    assert set(table.index) == set(epoch.index)
    for name, row in table.iterrows():
        assert row["compute"] == pytest.approx(epoch.loc[name, "compute"], rel=0.001), name
        assert row["date"] == epoch.loc[name, "date"], name
        if not np.isnan(row["params"]):
            assert row["params"] == pytest.approx(epoch.loc[name, "params"], rel=0.001), name


def test_no_file_frontier_headline_falls_inside_the_csv_interval():
    # The no-file default used to give 2.2x per year against Epoch's about 5x (issue 14.5).
    csv = doubling.frontier_lm_compute_trend(loaders.load_notable_models(shared(NOTABLE)), n_boot=300)
    builtin = doubling.fit_all(n_boot=300)["frontier_lm_compute"]
    lo, hi = csv.ci_months()
    assert builtin.source == "builtin" and lo < builtin.doubling_months < hi
    assert 4.0 < builtin.growth_per_year < 6.0 and builtin.n == csv.n
