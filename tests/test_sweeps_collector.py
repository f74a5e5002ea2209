import pandas as pd
import pyarrow.parquet as pq
import pytest

from scaling.io import write_json
from sweep_helpers import TINY_GRID, TINY_WSD, run_sweep_cli, write_spec
from sweeps import spec as spec_lib
from sweeps import store
from sweeps.collector import SCHEMA, collect
from sweeps.planner import make_plan

CONTRACT = ["run_id", "status", "budget", "n_params", "n_params_embedding", "n_params_nonembedding", "tokens",
            "unique_tokens", "flops_6nd", "flops_6nd_nonembed", "flops_exact", "final_val_loss", "val_bpb",
            "parent_run_id", "branch_tokens"]


def fake_summary(record, status="completed", **extra):
    tokens = record["tokens_planned"]
    return {"status": status, "error": None, "run_id": record["run_id"], "tokens": tokens, "unique_tokens": 1000,
            "n_params": record["n_params"], "n_params_embedding": record["n_params_embedding"],
            "n_params_nonembedding": record["n_params_nonembedding"], "flops_6nd": record["flops_6nd"],
            "flops_6nd_nonembed": record["flops_6nd_nonembed"], "flops_exact": record["flops_exact"],
            "final_val_loss": 3.0, "val_bpb": 4.3, "wall_time_s": 1.0, **extra}


def test_one_row_per_finished_branch_with_the_contract_columns(tmp_path):
    spec = spec_lib.parse_text(TINY_WSD, "wsd.toml")
    records = [run.record(spec) for run in make_plan(spec).runs]
    store.write_plan(tmp_path, TINY_WSD, "wsd", "wsd.toml", records)
    parent, short, long = records
    write_json(store.run_dir(tmp_path, parent["run_id"]) / "summary.json", fake_summary(parent))
    write_json(store.run_dir(tmp_path, short["run_id"]) / "summary.json", fake_summary(short))
    path, n_rows = collect(tmp_path)  # the long branch has not finished: no row yet
    assert n_rows == 1
    table = pd.read_parquet(path)
    assert list(table.columns[:len(CONTRACT)]) == CONTRACT
    row = table.iloc[0]
    assert row.run_id == short["run_id"] and row.parent_run_id == parent["run_id"]
    assert row.branch_tokens == 13 * 256 and row.tokens == 16 * 256 and pd.isna(row.budget)
    assert row.flops_exact == short["flops_exact"] and row.kind == "wsd" and row.sweep_name == "wsd"

    write_json(store.run_dir(tmp_path, long["run_id"]) / "summary.json",
               {"status": "failed", "error": "worker exited with code -9", "run_id": long["run_id"]})
    path, n_rows = collect(tmp_path)
    table = pq.read_table(path)
    assert n_rows == 2 and table.schema.equals(SCHEMA)  # types fixed even where a column is all null
    failed = table.to_pandas().set_index("run_id").loc[long["run_id"]]
    assert failed.status == "failed" and failed.tokens == 0 and failed.flops_exact == 0
    assert failed.n_params == long["n_params"] and failed.error == "worker exited with code -9"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


LISTED = """
kind = "grid"
[sizes]
n_params = [2.06e4, 3.3e4]
aspect_ratio = 16
[hparams]
lr = [1e-3, 4e-3]
seed = [0, 1]
weight_decay = 0.05
warmup_fraction = 0.25
batch_size = 8
[grid]
tokens = [5120]
[base.train]
seq_len = 32
"""


def test_every_hyperparameter_and_the_measured_figures_are_columns(tmp_path):
    spec = spec_lib.parse_text(LISTED, "listed.toml")
    records = [run.record(spec) for run in make_plan(spec).runs]
    store.write_plan(tmp_path, LISTED, "listed", "listed.toml", records)
    for i, record in enumerate(records):
        write_json(store.run_dir(tmp_path, record["run_id"]) / "summary.json",
                   fake_summary(record, final_train_loss=2.5 + i, epochs=0.25 * i, mfu=0.01 * i))
    table = pd.read_parquet(collect(tmp_path)[0]).set_index("run_id")
    assert len(table) == 8
    for i, record in enumerate(records):
        row, train = table.loc[record["run_id"]], record["config"]["train"]
        assert (row.lr, row.seed, row.weight_decay) == (train["lr"], train["seed"], 0.05)
        assert row.warmup_fraction == pytest.approx(train["warmup_steps"] / train["steps"])
        assert row.mlp == "gelu" and row.batch_size == 8 and row.grad_clip == train["grad_clip"]
        assert (row.final_train_loss, row.epochs, row.mfu) == (2.5 + i, 0.25 * i, pytest.approx(0.01 * i))
        assert row.tokens_per_param == pytest.approx(record["tokens_planned"] / record["n_params"])
    # the product: every size has each (lr, seed) once
    assert table.groupby("n_params").apply(lambda g: len(set(zip(g.lr * g.d_model, g.seed)))).eq(4).all()


def test_an_older_summary_without_epochs_gets_them_from_its_counts(tmp_path):
    spec = spec_lib.parse_text(TINY_WSD, "wsd.toml")
    records = [run.record(spec) for run in make_plan(spec).runs]
    store.write_plan(tmp_path, TINY_WSD, "wsd", "wsd.toml", records)
    branch = records[1]
    write_json(store.run_dir(tmp_path, branch["run_id"]) / "summary.json", fake_summary(branch))
    row = pd.read_parquet(collect(tmp_path)[0]).iloc[0]
    assert row.epochs == pytest.approx(branch["tokens_planned"] / 1000)
    assert pd.isna(row.final_train_loss) and pd.isna(row.mfu)
    assert row.decay_shape == "linear" and row.decay_fraction == 0.2


def test_a_real_seed_list_sweep_collects_its_measured_columns(tmp_path):
    """Two 20-step runs of one tiny model differing only in seed: each trains its own seed, and the
    figures collect reads from a real summary.json are there."""
    text = TINY_GRID.replace("n_params = [2.06e4, 3.3e4, 4.5e4]", "n_params = [2.06e4]").replace(
        "lr = 3e-3", "lr = 3e-3\nseed = [0, 1]")
    result = run_sweep_cli("run", write_spec(tmp_path, text), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-2000:]
    table = pd.read_parquet(tmp_path / "out" / "results.parquet").sort_values("seed")
    assert list(table.seed) == [0, 1] and table.label.str.endswith((" seed=0", " seed=1")).all()
    assert table.final_val_loss.iloc[0] != table.final_val_loss.iloc[1]  # another seed, another run
    for column in ("final_train_loss", "epochs", "tokens_per_param", "mfu", "warmup_fraction", "weight_decay"):
        assert table[column].notna().all() and (table[column] >= 0).all(), column
    assert (table.tokens_per_param == table.tokens / table.n_params).all()
