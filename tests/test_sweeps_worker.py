import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from conftest import PROJECT_ROOT
from scaling.io import read_json, read_jsonl
from sweep_helpers import TINY_WSD, run_sweep_cli, sweep_env, write_spec
from sweeps import store


def test_worker_is_pinned_to_exactly_its_thread_share():
    code = ("import os; from sweeps.worker import pin_threads; pin_threads(1, [max(os.sched_getaffinity(0))]); "
            "print(sorted(os.sched_getaffinity(0)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, check=True)
    assert json.loads(out.stdout) == [max(os.sched_getaffinity(0))]


@pytest.mark.slow
def test_wsd_branches_continue_from_the_parent_state(tmp_path):
    out = tmp_path / "sweep"
    result = run_sweep_cli("run", write_spec(tmp_path, TINY_WSD), "--out", str(out), "--workers", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    records = {r["role"] + str(r["branch_step"] or ""): r for r in store.load_records(out)}
    parent = records["parent"]
    parent_dir = store.run_dir(out, parent["run_id"])
    parent_rows = read_jsonl(parent_dir / "metrics.jsonl")
    assert [r["step"] for r in parent_rows] == list(range(1, 20))
    assert {13, 19} <= {int(p.name) for p in (parent_dir / "checkpoints").iterdir()}  # branch points kept
    parent_lr = parent_rows[-1]["lr"]

    for branch_step, steps in ((13, 16), (19, 24)):
        record = records[f"branch{branch_step}"]
        assert record["parent_run_id"] == parent["run_id"]
        branch_dir = store.run_dir(out, record["run_id"])
        rows = read_jsonl(branch_dir / "metrics.jsonl")
        assert [r["step"] for r in rows] == list(range(1, steps + 1))
        # Up to the branch point the rows are the parent's own steps...
        assert [r["loss"] for r in rows[:branch_step]] == [r["loss"] for r in parent_rows[:branch_step]]
        # ...and the first step after it starts from the parent's state on the parent's next batch.
        if branch_step < len(parent_rows):
            assert rows[branch_step]["loss"] == parent_rows[branch_step]["loss"]
        assert all(r["lr"] < parent_lr for r in rows[branch_step + 1:])  # then the cooldown
        assert rows[-1]["lr"] == pytest.approx(0.1 * parent_lr, rel=0.05)  # min_lr_ratio 0.1
        summary = read_json(branch_dir / "summary.json")
        assert summary["resumed_from_step"] == branch_step and summary["tokens"] == steps * 256
        assert f"branch: starting from parent {parent['run_id']} at step {branch_step}" in \
            (branch_dir / "worker.log").read_text()

    # A branch trained from scratch, without the parent, gives bit-identical losses.
    record = records["branch13"]
    alone = tmp_path / "alone" / record["run_id"]
    alone.mkdir(parents=True)
    (alone / "run.json").write_text(json.dumps({**record, "role": "run"}))
    subprocess.run([sys.executable, "-m", "sweeps.worker", "run", str(alone), "--threads", "1"], check=True,
                   capture_output=True, cwd=PROJECT_ROOT, env=sweep_env())
    branch_dir = store.run_dir(out, record["run_id"])
    assert [r["loss"] for r in read_jsonl(alone / "metrics.jsonl")] == \
        [r["loss"] for r in read_jsonl(branch_dir / "metrics.jsonl")]
    assert read_json(alone / "summary.json")["final_val_loss"] == read_json(branch_dir / "summary.json")["final_val_loss"]

    table = pd.read_parquet(out / "results.parquet")
    assert len(table) == 2  # the stable run is not a data point
    assert (table.parent_run_id == parent["run_id"]).all()
    assert sorted(table.branch_tokens) == [13 * 256, 19 * 256] and sorted(table.tokens) == [16 * 256, 24 * 256]
    assert table.budget.isna().all() and (table.kind == "wsd").all()


# Two 8-step runs of one shape that differ only in lr.
PACK_PAIR = """
kind = "grid"
[sizes]
n_params = [3.3e4]
aspect_ratio = 16
[hparams]
lr = [3e-3, 1e-2]
batch_size = 8
[grid]
tokens = [2048]
[base.data]
val_batches = 2
[base.train]
seq_len = 32
warmup_steps = 2
eval_every = 4
log_every = 1
peak_flops = 1e11
"""


def test_group_mode_trains_the_members_packed_each_into_its_own_run_directory(tmp_path):
    from sweeps import spec as spec_lib
    from sweeps.planner import make_plan

    text = PACK_PAIR
    spec = spec_lib.parse_text(text, "pack.toml")
    records = [run.record(spec) for run in make_plan(spec).runs]
    store.write_plan(tmp_path, text, "pack", "pack.toml", records)
    dirs = [str(store.run_dir(tmp_path, r["run_id"])) for r in records]
    worker = [sys.executable, "-P", "-m", "sweeps.worker"]
    done = subprocess.run([*worker, "group", *dirs, "--threads", "1"], capture_output=True, text=True,
                          cwd=PROJECT_ROOT, env=sweep_env())
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 runs packed" in done.stderr
    for record, directory in zip(records, dirs):
        summary = read_json(os.path.join(directory, "summary.json"))
        assert summary["status"] == "completed" and summary["run_id"] == record["run_id"]
        assert summary["config"]["train"]["lr"] == record["config"]["train"]["lr"]
        assert [r["step"] for r in read_jsonl(os.path.join(directory, "metrics.jsonl"))] == list(range(1, 9))
    usage = subprocess.run([*worker, "run", *dirs], capture_output=True, text=True, cwd=PROJECT_ROOT, env=sweep_env())
    assert usage.returncode == 2 and "run takes one target, got 2" in usage.stderr


def test_sweep_tracking_groups_the_runs_and_places_their_event_files_under_the_sweep():
    from scaling.config import load
    from sweeps.worker import with_sweep_tracking

    record = {"sweep_name": "tiny", "label": "N~3.3e+04 lr=0.01", "run_id": "abc123"}
    log = with_sweep_tracking(load(None, ["log.tensorboard=true"]), record).log
    assert (log.group, log.name) == ("tiny", "N~3.3e+04 lr=0.01")
    assert log.tensorboard_dir == os.path.join("..", "..", "tensorboard", "N~3.3e+04_lr=0.01_abc123")
    assert with_sweep_tracking(load(None, ["log.wandb=p", "log.group=mine"]), record).log.group == "mine"
    untracked = load(None, [])
    assert with_sweep_tracking(untracked, record) == untracked


@pytest.mark.slow
def test_packed_sweep_runs_log_to_tensorboard_under_the_sweep_and_to_one_wandb_group(tmp_path):
    pytest.importorskip("wandb")
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
    from test_tracking import assert_same_scalars, jsonl_scalars, wandb_records

    spec = write_spec(tmp_path, PACK_PAIR + '[base.log]\ntensorboard = true\nwandb = "tiny-proj"\n', name="pair")
    out = tmp_path / "sweep"
    env = dict(sweep_env(), WANDB_MODE="offline", WANDB_SILENT="true", HOME=str(tmp_path / "home"))
    done = subprocess.run([sys.executable, "-m", "scaling_cli", "sweep", "run", spec, "--out", str(out), "--pack",
                           "--workers", "1"],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    records = store.load_records(out)
    assert "2 runs packed" in (store.run_dir(out, records[0]["run_id"]) / "worker.log").read_text()
    # The sweep-level view: what `tensorboard --logdir SWEEP_DIR/tensorboard` loads, one run per sweep run.
    view = EventMultiplexer(size_guidance={"scalars": 0})
    view.AddRunsFromDirectory(str(out / "tensorboard"))
    view.Reload()
    assert sorted(view.Runs()) == sorted(f"{r['label'].replace(' ', '_')}_{r['run_id']}" for r in records)
    for record in records:
        run_dir = store.run_dir(out, record["run_id"])
        name = f"{record['label'].replace(' ', '_')}_{record['run_id']}"
        read = {tag: [(e.step, e.value) for e in view.Scalars(name, tag)] for tag in view.Runs()[name]["scalars"]}
        assert_same_scalars(read, jsonl_scalars(read_jsonl(run_dir / "metrics.jsonl")))
        (run,) = [r.run for r in wandb_records(run_dir) if r.WhichOneof("record_type") == "run"]
        assert (run.project, run.run_group, run.display_name) == ("tiny-proj", "pair", record["label"])
    assert not (tmp_path / "home").exists()  # nothing written outside the sweep directory
