import json
import os
import signal
import subprocess
import sys
import time

import pytest

from scaling.errors import ScalingError
from scaling.io import write_json
from sweeps import store


def record(run_id="abc123", role="run", **extra):
    return {"run_id": run_id, "role": role, "label": run_id, "config": {"train": {"steps": 20}}, **extra}


def test_lock_is_exclusive_and_released_on_close(tmp_path):
    directory = tmp_path / "run"
    fd = store.try_lock(directory)
    assert fd is not None and store.is_locked(directory)
    assert store.try_lock(directory) is None  # a second open file description cannot take it
    store.release(fd)
    assert not store.is_locked(directory)
    fd = store.try_lock(directory)
    assert fd is not None
    store.release(fd)


def test_lock_is_released_when_its_holder_is_killed(tmp_path):
    directory = tmp_path / "run"
    code = ("import sys, time; from pathlib import Path; from sweeps import store; "
            "fd = store.try_lock(Path(sys.argv[1])); print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(directory)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert store.is_locked(directory) and store.try_lock(directory) is None
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        assert not store.is_locked(directory)
        assert store.try_lock(directory) is not None
    finally:
        holder.kill()


def test_plan_round_trip_and_run_states(tmp_path):
    records = [record("r1"), record("r2"), record("b1", role="branch", parent_run_id="r1", branch_step=10)]
    store.write_plan(tmp_path, "kind = 'grid'", "tiny", "tiny.toml", records)
    assert [r["run_id"] for r in store.load_records(tmp_path)] == ["r1", "r2", "b1"]
    mtime = (tmp_path / "runs" / "r1" / "run.json").stat().st_mtime_ns
    store.write_plan(tmp_path, "kind = 'grid'", "tiny", "tiny.toml", records)  # same plan: files untouched
    assert (tmp_path / "runs" / "r1" / "run.json").stat().st_mtime_ns == mtime

    states = {r["run_id"]: store.run_state(tmp_path, r).status for r in records}
    assert states == {"r1": "pending", "r2": "pending", "b1": "waiting"}
    r1 = store.run_dir(tmp_path, "r1")
    (r1 / "metrics.jsonl").write_text(json.dumps({"step": 7, "loss": 3.0}) + "\n" + '{"step": 8, "lo')  # torn line
    assert store.run_state(tmp_path, records[0]) == store.RunState("r1", "interrupted", 7, 20)
    (r1 / "checkpoints" / "10").mkdir(parents=True)
    assert store.run_state(tmp_path, records[2]).status == "pending"  # the branch point exists
    fd = store.try_lock(r1)
    assert store.run_state(tmp_path, records[0]).status == "running"
    store.release(fd)
    write_json(r1 / "summary.json", {"status": "completed", "steps": 20})
    assert store.run_state(tmp_path, records[0]).status == "completed"
    store.record_failure(r1, records[0], "boom")  # never overwrites a finished run
    assert store.read_summary(r1)["status"] == "completed"
    store.record_failure(store.run_dir(tmp_path, "r2"), records[1], "boom")
    state = store.run_state(tmp_path, records[1])
    assert (state.status, state.error) == ("failed", "boom")


def test_not_a_sweep_directory(tmp_path):
    with pytest.raises(ScalingError, match="not a sweep directory"):
        store.load_records(tmp_path)
