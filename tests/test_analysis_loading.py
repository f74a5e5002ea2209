import numpy as np
import pandas as pd
import pytest

from analysis.loading import drop_highest_loss, from_arrays, load_runs
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


LRS = (1e-3, 2e-3, 4e-3, 8e-3)
SIZES = (1e5, 4e5, 1.6e6)


def _true_loss(N, D):
    return 1.8 + 400 * N ** -0.34 + 400 * D ** -0.28


def _best_lr(N):
    """The true optimum lr falls with size; on LRS the best is 4e-3, 2e-3, then the grid's edge 1e-3."""
    return {1e5: 4.2e-3, 4e5: 1.9e-3, 1.6e6: 0.6e-3}[N]


def _lr_table(seeds=(0, 1)):
    """A sweep's results with an lr list and a seed list: loss = surface + a penalty quadratic in log lr
    around each size's optimum + seed noise of +-0.01 (whose mean over the two seeds is exactly zero)."""
    rows = []
    for budget in (1e14, 1e15):
        for N in SIZES:
            D = budget / (6 * N)
            for lr in LRS:
                for seed in seeds:
                    noise = 0.01 * (1 if seed == 0 else -1) if len(seeds) > 1 else 0.0
                    rows.append({"run_id": f"C{budget:g}-N{N:g}-lr{lr:g}-s{seed}", "status": "completed",
                                 "budget": budget, "n_params": N, "n_params_embedding": 0.0,
                                 "n_params_nonembedding": N, "tokens": D, "flops_exact": budget,
                                 "final_val_loss": _true_loss(N, D) + 0.2 * np.log(lr / _best_lr(N)) ** 2 + noise,
                                 "lr": lr, "seed": seed, "batch_size": 8, "weight_decay": 0.1,
                                 "parent_run_id": None})
    return pd.DataFrame(rows)


def test_best_of_lr_keeps_each_points_lowest_loss_lr_after_averaging_seeds():
    table = load_runs(_lr_table())  # the default: several lrs per point
    assert len(table) == 6
    best = {N: min(LRS, key=lambda lr: abs(np.log(lr / _best_lr(N)))) for N in SIZES}
    for choice in table.lr_choices:
        assert choice.best == best[choice.N] and choice.lrs == LRS
        assert choice.at_edge == (choice.N == 1.6e6)  # only the largest size's optimum is off the grid
    for n, d, loss in zip(table.N, table.D, table.loss):
        expected = _true_loss(n, d) + 0.2 * np.log(best[n] / _best_lr(n)) ** 2  # the seed noise averages out
        assert loss == pytest.approx(expected, rel=1e-12)
    assert all("+" in label and label.endswith("-s1") for label in table.labels)  # both seeds' runs named
    assert "averaged the loss over seeds at each (N, D, lr): 48 rows -> 24" in table.notes
    assert any("dropped 18 of 24 rows" in note for note in table.notes)


def test_best_of_none_keeps_every_row_and_says_the_fit_is_untuned():
    table = load_runs(_lr_table(), best_of="none")
    assert len(table) == 48 and table.lr_choices == ()
    assert any(note.startswith("--best-of none") for note in table.notes)


def test_one_lr_per_point_is_left_alone_by_default_and_other_settings_split_points():
    frame = _lr_table(seeds=(0,))
    single = frame[frame.lr == 2e-3]
    assert len(load_runs(single)) == 6 and load_runs(single).lr_choices == ()
    # a weight-decay list makes another point at the same (N, D): the best lr is picked within each
    other = frame.assign(weight_decay=0.0, run_id=frame.run_id + "-wd0", final_val_loss=frame.final_val_loss + 0.05)
    table = load_runs(pd.concat([frame, other], ignore_index=True))
    assert len(table) == 12 and len(table.lr_choices) == 12


def test_best_of_lr_without_an_lr_column_is_refused_naming_the_way_out():
    with pytest.raises(DataError, match="--best-of lr needs an lr column.*--best-of none"):
        load_runs(_sweep_frame(), best_of="lr")
    with pytest.raises(DataError, match="unknown --best-of 'seed'"):
        load_runs(_lr_table(), best_of="seed")


def test_the_clis_best_of_choices_are_the_loaders():
    from analysis import loading
    from scaling_cli import tables as cli

    assert cli.BEST_OF == loading.BEST_OF


def test_fit_cli_takes_best_of_and_says_how_many_rows_it_dropped(tmp_path, capsys):
    from scaling_cli.main import main

    path = tmp_path / "results.parquet"
    _lr_table().to_parquet(path)
    assert main(["fit", str(path), "--method", "isoflop", "--keep-extrapolated"]) == 0
    out = capsys.readouterr().out
    assert "dropped 18 of 24 rows" in out and "48 rows -> 24" in out
    assert main(["fit", str(path), "--method", "isoflop", "--keep-extrapolated", "--best-of", "none"]) == 0
    out = capsys.readouterr().out
    assert "--best-of none: kept every lr's rows" in out and "dropped" not in out


def test_envelope_refuses_best_of_none_with_several_rows_per_point(tmp_path, capsys):
    from scaling_cli.main import main

    path = tmp_path / "results.parquet"
    _lr_table().to_parquet(path)
    assert main(["fit", str(path), "--method", "isoflop,envelope", "--best-of", "none"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --best-of none keeps 48 rows at 6 (N, D) points") and err.count("\n") == 1


def test_best_of_lr_recovers_the_true_exponent_that_untuned_rows_bias():
    """Porian et al.'s point on a known truth: sizes want different lrs (the smallest the grid's largest,
    the largest its smallest), so a fixed grid's rows mix tuned and untuned losses differently per size.
    The tuned rows are the clean surface, and approach 2 gives its a exactly; all rows move it."""
    from analysis.fitting import fit
    from analysis_helpers import chinchilla_surface

    clean, truth = chinchilla_surface(sizes_per_budget=7, width=0.6)
    lo, hi = np.log(clean.N.min()), np.log(clean.N.max())

    def best(n):
        return LRS[int(round(3 * (1 - (np.log(n) - lo) / (hi - lo))))]

    rows = [{"N": n, "D": d, "C": c, "budget": c, "lr": lr, "loss": loss + 0.1 * np.log(lr / best(n)) ** 2}
            for n, d, c, loss in zip(clean.N, clean.D, clean.C, clean.loss) for lr in LRS]
    a_true = truth["beta"] / (truth["alpha"] + truth["beta"])
    tuned = fit(load_runs(pd.DataFrame(rows)), "isoflop")
    untuned = fit(load_runs(pd.DataFrame(rows), best_of="none"), "isoflop")
    assert tuned.value("a") == pytest.approx(a_true, abs=1e-6)
    assert abs(untuned.value("a") - a_true) > 0.03


def test_a_run_table_shows_its_size_and_conventions_not_its_arrays(tmp_path):
    path = tmp_path / "results.parquet"
    _sweep_frame().to_parquet(path)
    table = load_runs(path)
    assert repr(table).startswith(f"<RunTable {len(table)} points from ")
    assert "array" not in repr(table)
    frame = table.to_frame()
    assert len(frame) == len(table) and list(frame["loss"]) == list(table.loss)
    assert "<table" in table._repr_html_()
