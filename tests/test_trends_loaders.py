import numpy as np
import pandas as pd
import pytest

from analysis.trends import loaders
from analysis.trends.frontier_models import FRONTIER_MODELS, frontier_table
from conftest import SHARED_DATA
from scaling.errors import DataError

NOTABLE = SHARED_DATA / "epoch__notable_ai_models_2025-05.csv"
HARDWARE = SHARED_DATA / "epoch__ml_hardware_2025-12.csv"
RUPP = SHARED_DATA / "rupp__microprocessor_trend_data_50yrs.csv"


def shared(path):
    if not path.exists():
        pytest.skip(f"shared data file {path} is absent (tests read ../shared/data; see its README)")
    return path


def test_notable_models_from_the_shared_file():
    models = loaders.load_notable_models(shared(NOTABLE))
    raw = pd.read_csv(NOTABLE)
    # Every kept row has a date and a positive compute; none of the raw rows with both is lost.
    both = raw["Publication date"].notna() & (pd.to_numeric(raw["Training compute (FLOP)"], errors="coerce") > 0)
    assert len(models) == both.sum() == 486
    assert models["compute"].gt(0).all() and models["date"].notna().all() and models["model"].is_unique
    assert models["year"].is_monotonic_increasing and 1950 < models["year"].min() < models["year"].max() < 2026
    gpt3 = models.set_index("model").loc["GPT-3 175B (davinci)"]
    assert gpt3["compute"] == 3.14e23 and gpt3["frontier"] and gpt3["language"]
    assert abs(gpt3["year"] - (2020 + (148 + 0.5) / 366)) < 1e-9  # 2020-05-28, a leap year
    assert 90 < models["frontier"].sum() < models["language"].sum() < len(models)


def test_hardware_from_the_shared_file():
    hw = loaders.load_hardware(shared(HARDWARE))
    assert hw["date"].notna().all() and hw["year"].between(2005, 2026).all()
    assert hw["fp32"].notna().sum() > 100 and hw["price_usd"].notna().sum() > 40
    # The training format is the fastest float format, never slower than FP32.
    both = hw["fp32"].notna()
    assert (hw.loc[both, "training_flops"] >= hw.loc[both, "fp32"]).all()
    h100 = hw.set_index("name").loc["NVIDIA H100 SXM5 80GB"]
    assert h100["training_flops"] == pytest.approx(989.4e12, rel=0.01) and h100["price_usd"] == 33600


def test_transistors_from_the_shared_file():
    tr = loaders.load_transistors(shared(RUPP))
    assert len(tr) == 99 and tr["year"].is_monotonic_increasing
    assert tr["transistors"].iloc[0] == pytest.approx(2308, rel=0.01)  # Intel 4004, in units, not thousands
    assert 1971 < tr["year"].min() < 1972 and 2021 < tr["year"].max() < 2022


def test_messy_notable_csv_is_cleaned(tmp_path):
    path = tmp_path / "models.csv"
    pd.DataFrame({
        "Model": ["a", "b", "c", "d", "e", "f", "g", "g", "h"],
        "Publication date": ["2020", "2020-05", "2020-05-28", "2021-01-02 00:00:00", "not a date", "", "2022-01-01",
                             "2023-01-01", "2019-07-01"],
        "Domain": ["Language", "Vision", "Multimodal,Language", "Games", "Language", "Language", "Language",
                   "Language", None],
        "Training compute (FLOPs)": ["1e20", 2e20, "3e20", 0, 5e20, 6e20, 7e20, 8e20, "unknown"],
        "Frontier model": ["True", None, True, "", True, True, "False", "true", True],
    }).to_csv(path, index=False)
    models = loaders.load_notable_models(path)  # note the renamed compute column
    # d: zero compute; e, f: no date; h: no compute; sorted by date; a bare year is its middle
    assert list(models["model"]) == ["b", "c", "a", "g"]
    assert list(models["date"].dt.strftime("%Y-%m-%d")) == ["2020-05-15", "2020-05-28", "2020-07-01", "2023-01-01"]
    assert list(models["compute"]) == [2e20, 3e20, 1e20, 8e20]  # repeated name: the latest row is kept
    assert list(models["frontier"]) == [False, True, True, True]
    assert list(models["language"]) == [False, True, True, True]
    assert models["params"].isna().all()  # optional columns appear, empty


def test_missing_columns_and_files_are_user_errors(tmp_path):
    path = tmp_path / "wrong.csv"
    pd.DataFrame({"Model": ["a"], "Publication date": ["2020-01-01"]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"lacks column.*compute.*Training compute \(FLOP\)"):
        loaders.load_notable_models(path)
    with pytest.raises(DataError, match="not found"):
        loaders.load_hardware(tmp_path / "absent.csv")
    empty = tmp_path / "empty.csv"
    pd.DataFrame({"Model": ["a"], "Publication date": [""], "Training compute (FLOP)": [1e20]}).to_csv(empty, index=False)
    with pytest.raises(DataError, match="no row with both"):
        loaders.load_notable_models(empty)
    with pytest.raises(DataError, match="transistors_thousands"):
        bad = tmp_path / "rupp.csv"
        pd.DataFrame({"metric": ["frequency_mhz"], "year": [1990], "value": [25]}).to_csv(bad, index=False)
        loaders.load_transistors(bad)


def test_rupp_raw_dat_format(tmp_path):
    path = tmp_path / "transistors.dat"
    path.write_text("# year  transistors (thousands)\n1971.875 2.308\n1972.3 3.55\n\n1974.3 6.1\n")
    tr = loaders.load_transistors(path)
    np.testing.assert_allclose(tr["transistors"], [2308, 3550, 6100])
    np.testing.assert_allclose(tr["year"], [1971.875, 1972.3, 1974.3])


def test_builtin_frontier_table_is_consistent():
    table = frontier_table()
    assert table["model"].is_unique and table["date"].is_monotonic_increasing and len(table) >= 12
    for m in FRONTIER_MODELS:
        assert m.citation and ("arXiv:" in m.citation or "Epoch" in m.citation), m.name
        assert 1e9 < m.params < 1e12 and 1e11 < m.tokens < 1e14, m.name
        if m.compute is not None:  # a typo in a reported figure would break the 6ND identity
            assert 0.8 < m.compute / (6 * m.params * m.tokens) < 1.3, m.name
    by_name = table.set_index("model")
    assert by_name.loc["Chinchilla 70B", "compute"] == 5.76e23
    assert by_name.loc["GPT-3 175B", "compute"] == 3.14e23
    assert by_name.loc["Llama 3.1 405B", "compute"] == 3.8e25
    assert by_name.loc["LLaMA 65B", "compute_basis"] == "6ND"


def test_builtin_table_agrees_with_epoch_where_both_give_n_and_c():
    models = loaders.load_notable_models(shared(NOTABLE)).set_index("model")
    pairs = {"GPT-3 175B": "GPT-3 175B (davinci)", "Chinchilla 70B": "Chinchilla", "Gopher 280B": "Gopher (280B)",
             "Llama 3.1 405B": "Llama 3.1-405B", "Falcon 180B": "Falcon-180B", "PaLM 540B": "PaLM (540B)"}
    table = frontier_table().set_index("model")
    for ours, theirs in pairs.items():
        assert table.loc[ours, "params"] == pytest.approx(models.loc[theirs, "params"], rel=0.01), ours
        assert table.loc[ours, "compute"] == pytest.approx(models.loc[theirs, "compute"], rel=0.02), ours
        assert table.loc[ours, "date"] == models.loc[theirs, "date"], ours
