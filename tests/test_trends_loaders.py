import numpy as np
import pandas as pd
import pytest

from analysis.trends import loaders
from analysis.trends import doubling
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
    assert models["notable"].all() and models["compute_rank"].isna().all()  # every row of this download is notable


def test_hardware_from_the_shared_file():
    hw = loaders.load_hardware(shared(HARDWARE))
    assert hw["date"].notna().all() and hw["year"].between(2005, 2026).all()
    assert hw["fp32"].notna().sum() > 100 and hw["price_usd"].notna().sum() > 40
    assert hw["tensor_fp16"].notna().sum() > 50 and hw["fp8"].notna().sum() >= 10
    assert hw[list(loaders.HARDWARE_FORMATS)].notna().any(axis=1).all()  # a kept chip has some FLOP/s figure
    # Formats stay apart, each as Epoch lists it: no column mixes them.
    assert "training_flops" not in hw
    h100 = hw.set_index("name").loc["NVIDIA H100 SXM5 80GB"]
    assert h100["tensor_fp16"] == pytest.approx(989.4e12, rel=0.01) and h100["price_usd"] == 33600
    assert h100["fp32"] == pytest.approx(66.9e12, rel=0.01) and np.isnan(h100["fp8"])  # as in Epoch's file
    h200 = hw.set_index("name").loc["NVIDIA H200 SXM"]
    assert h200["fp8"] == pytest.approx(2 * h200["tensor_fp16"], rel=0.01)


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
        "Notability criteria": ["SOTA improvement"] * 9,
    }).to_csv(path, index=False)
    models = loaders.load_notable_models(path)  # note the renamed compute column
    # d: zero compute; e, f: no date; h: no compute; sorted by date; a bare year is its middle
    assert list(models["model"]) == ["b", "c", "a", "g"]
    assert list(models["date"].dt.strftime("%Y-%m-%d")) == ["2020-05-15", "2020-05-28", "2020-07-01", "2023-01-01"]
    assert list(models["compute"]) == [2e20, 3e20, 1e20, 8e20]  # repeated name: the latest row is kept
    assert list(models["frontier"]) == [False, True, True, True]
    assert list(models["language"]) == [False, True, True, True]
    assert models["params"].isna().all()  # optional columns appear, empty


def full_database_csv(tmp_path, drop: str | None = None):
    """A small file in the layout of Epoch's full "AI Models" database: a rank, no `Frontier model` flag."""
    frame = pd.DataFrame({
        "Model": ["big LM", "small LM", "unranked LM", "big vision", "obscure LM"],
        "Domain": ["Language", "Language", "Language", "Vision", "Language"],
        "Publication date": ["2023-01-10", "2023-02-10", "2023-03-10", "2023-04-10", "2023-05-10"],
        "Training compute (FLOP)": [1e25, 1e21, 2e21, 3e24, 5e20],
        "Compute rank when published": [1, 11, None, 4, 250],
        "Notability criteria": ["SOTA improvement", "Highly cited", "", "Training cost", None],
    })
    path = tmp_path / "all_ai_models.csv"
    frame.drop(columns=[drop] if drop else []).to_csv(path, index=False)
    return path


def test_full_ai_models_database_format(tmp_path):
    models = loaders.load_notable_models(full_database_csv(tmp_path)).set_index("model")
    # frontier: rank 1 and 4 (<= 10), not 11, 250 or no rank; notable: a non-empty criterion
    assert list(models.index[models["frontier"]]) == ["big LM", "big vision"]
    assert list(models.index[models["notable"]]) == ["big LM", "small LM", "big vision"]
    assert models.loc["small LM", "compute_rank"] == 11 and np.isnan(models.loc["unranked LM", "compute_rank"])
    # The fits read the same columns: frontier LMs are the language rows of rank <= 10.
    assert list(doubling.frontier_lm_rows(models.reset_index(), since="2023-01-01")["model"]) == ["big LM"]


def test_is_notable_column_stands_in_for_the_criteria(tmp_path):
    path = full_database_csv(tmp_path, drop="Notability criteria")
    frame = pd.read_csv(path).assign(is_notable=[True, False, False, True, False])
    frame.to_csv(path, index=False)
    models = loaders.load_notable_models(path).set_index("model")
    assert list(models.index[models["notable"]]) == ["big LM", "big vision"]


@pytest.mark.parametrize("drop, named", [
    ("Compute rank when published", r"'Compute rank when published'.*'Frontier model'"),
    ("Notability criteria", r"'Notability criteria' \(or 'is_notable'\)")])
def test_full_database_without_a_needed_column_names_it(tmp_path, drop, named):
    with pytest.raises(DataError, match=named) as err:
        loaders.load_notable_models(full_database_csv(tmp_path, drop=drop))
    assert "\n" not in str(err.value)


def test_missing_columns_and_files_are_user_errors(tmp_path):
    path = tmp_path / "wrong.csv"
    pd.DataFrame({"Model": ["a"], "Publication date": ["2020-01-01"]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"lacks column.*compute.*Training compute \(FLOP\)"):
        loaders.load_notable_models(path)
    with pytest.raises(DataError, match="not found"):
        loaders.load_hardware(tmp_path / "absent.csv")
    empty = tmp_path / "empty.csv"
    pd.DataFrame({"Model": ["a"], "Publication date": [""], "Training compute (FLOP)": [1e20], "Frontier model": [True],
                  "Notability criteria": ["Highly cited"]}).to_csv(empty, index=False)
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
