import numpy as np
import pandas as pd
import pytest

from analysis.load import drop_highest_loss, from_arrays, load_runs
from scaling.errors import DataError


def _sweep_frame():
    """A results.parquet as the sweep runner writes it: a failed run and a WSD cooldown branch."""
    return pd.DataFrame({
        "run_id": ["r1", "r2", "r3", "r4", "r4-b1", "r4-b2"],
        "status": ["completed", "completed", "failed", "completed", "completed", "completed"],
        "budget": [1e15, 1e15, 1e15, None, None, None],
        "n_params": [1e6, 2e6, 4e6, 3e6, 3e6, 3e6],
        "n_params_embedding": [2e5, 3e5, 5e5, 4e5, 4e5, 4e5],
        "n_params_nonembedding": [8e5, 1.7e6, 3.5e6, 2.6e6, 2.6e6, 2.6e6],
        "tokens": [1e8, 5e7, 2.5e7, 4e7, 2e7, 3e7],
        "unique_tokens": [1e9] * 6,
        "flops_6nd": [6e14, 6e14, 6e14, 7.2e14, 3.6e14, 5.4e14],
        "flops_6nd_nonembed": [4.8e14, 5.1e14, 5.25e14, 6.24e14, 3.12e14, 4.68e14],
        "flops_exact": [7e14, 7e14, 7e14, 8e14, 4e14, 6e14],
        "final_val_loss": [3.1, 3.0, np.nan, 3.05, 3.2, 3.12],
        "val_bpb": [1.5] * 6,
        "parent_run_id": [None, None, None, None, "r4", "r4"],
        "branch_tokens": [None, None, None, None, 2e7, 3e7],
    })


def test_sweep_results_follow_the_chosen_conventions(tmp_path):
    path = tmp_path / "results.parquet"
    _sweep_frame().to_parquet(path)
    table = load_runs(path, n_convention="nonembedding", flops="6nd")
    assert list(table.labels) == ["r1", "r2", "r4", "r4-b1", "r4-b2"]  # failed run skipped
    np.testing.assert_allclose(table.N, [8e5, 1.7e6, 2.6e6, 2.6e6, 2.6e6])
    np.testing.assert_allclose(table.C, [6e14, 6e14, 7.2e14, 3.6e14, 5.4e14])
    assert table.flops == "6nd" and table.n_convention == "nonembedding"
    assert list(table.group) == ["r1", "r2", "r4", "r4", "r4"]  # branches resample with their parent
    assert table.has_repeated_groups()
    assert any("not 'completed'" in n for n in table.notes)
    default = load_runs(path)
    np.testing.assert_allclose(default.N[:2], [1e6, 2e6])
    np.testing.assert_allclose(default.C[:2], [7e14, 7e14])  # flops_exact by default


def test_missing_flop_formula_is_an_error_naming_what_exists(tmp_path):
    path = tmp_path / "results.parquet"
    _sweep_frame().drop(columns=["flops_6nd_nonembed"]).to_parquet(path)
    with pytest.raises(DataError, match="flops_6nd_nonembed.*records"):
        load_runs(path, flops="6nd_nonembed")


def test_generic_csv_with_column_mapping_derives_d_and_says_so(tmp_path):
    path = tmp_path / "runs.csv"
    pd.DataFrame({"Model Size": [1e8, 2e8, 4e8], "Training FLOP": [6e18, 6e18, 1.2e19],
                  "loss": [3.0, 2.9, 2.8]}).to_csv(path, index=False)
    table = load_runs(path, columns={"N": "Model Size", "C": "Training FLOP"})
    np.testing.assert_allclose(table.D, [1e10, 5e9, 5e9])
    assert table.d_derived and any(n.startswith("D derived as C/(6N)") for n in table.notes)
    assert list(table.labels) == ["row 0", "row 1", "row 2"]


def test_bad_rows_are_rejected_by_name_or_dropped_on_request():
    df = pd.DataFrame({"run_id": ["a", "b", "c", "d"], "N": [1e8, 2e8, -1.0, 4e8],
                       "D": [1e9, np.inf, 1e9, 1e9], "loss": [3.0, 2.9, 2.8, 2.7]})
    with pytest.raises(DataError, match=r"2 row\(s\).*b \(D, C\); c \(N, C\)"):
        load_runs(df)
    table = load_runs(df, drop_invalid=True)
    assert list(table.labels) == ["a", "d"]
    assert any("dropped 2 invalid" in n for n in table.notes)


def test_unknown_columns_and_files_are_explained(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_runs(tmp_path / "nope.csv")
    df = pd.DataFrame({"size": [1.0], "loss": [2.0]})
    with pytest.raises(DataError, match=r"missing column\(s\) \['N'\].*--columns"):
        load_runs(df)
    with pytest.raises(DataError, match="'Model Size'.*not found"):
        load_runs(df, columns={"N": "Model Size"})


def test_final_only_keeps_the_last_row_of_each_run():
    df = pd.DataFrame({"run_id": ["a", "a", "a", "b", "b"], "N": [1e8] * 3 + [2e8] * 2,
                       "D": [1e8, 2e8, 3e8, 1e8, 2e8], "loss": [4.0, 3.5, 3.2, 3.9, 3.4]})
    table = load_runs(df, final_only=True)
    np.testing.assert_allclose(table.D, [3e8, 2e8])
    np.testing.assert_allclose(table.loss, [3.2, 3.4])


def test_data_hash_tracks_the_points_and_drop_highest_names_rows():
    N = np.array([1e8, 2e8, 4e8, 8e8])
    t1 = from_arrays(N, 20 * N, [3.0, 2.9, 2.8, 2.7])
    t2 = from_arrays(N, 20 * N, [3.0, 2.9, 2.8, 2.71])
    assert t1.data_hash == from_arrays(N, 20 * N, [3.0, 2.9, 2.8, 2.7]).data_hash != t2.data_hash
    kept, dropped = drop_highest_loss(t1, 2)
    assert dropped == ("row 0", "row 1") and len(kept) == 2
    with pytest.raises(DataError, match="cannot drop"):
        drop_highest_loss(t1, 4)
