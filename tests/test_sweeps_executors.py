"""Reliability of the sweep runner: SIGKILLs, concurrent runners, failures, damaged checkpoints, Ray."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from scaling.io import read_json, read_jsonl, write_json
from conftest import PROJECT_ROOT
from sweep_helpers import TINY_GRID, TINY_WSD, run_sweep_cli, start_sweep_cli, sweep_cmd, sweep_env, write_spec
from sweeps import spec as spec_lib
from sweeps import store
from sweeps.executors import LocalExecutor, run_sweep
from sweeps.planner import make_plan

pytestmark = pytest.mark.slow


def losses(sweep_dir) -> dict[str, list[float]]:
    """Per run: the training loss of every step, and the final validation loss."""
    found = {}
    for run in sorted((sweep_dir / "runs").iterdir()):
        rows = read_jsonl(run / "metrics.jsonl")
        assert [r["step"] for r in rows] == list(range(1, 21)), run.name  # every step logged exactly once
        found[run.name] = [r["loss"] for r in rows] + [read_json(run / "summary.json")["final_val_loss"]]
    return found


def attempts(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "attempts.jsonl").read_text().splitlines()]


def starts(run_dir) -> int:
    path = run_dir / "attempts.jsonl"
    return path.read_text().count('"event": "start"') if path.exists() else 0


def total_starts(sweep_dir) -> int:
    return sum(starts(run) for run in (sweep_dir / "runs").iterdir()) if (sweep_dir / "runs").exists() else 0


def assert_each_run_completed_once(sweep_dir, n_runs=3):
    """Every run completed, and no two attempts ended it (a kill may land after the worker finished
    but before the executor logged the end, hence at most one logged end, not exactly one)."""
    runs = sorted((sweep_dir / "runs").iterdir())
    assert len(runs) == n_runs
    for run in runs:
        assert read_json(run / "summary.json")["status"] == "completed"
        ends = [a["status"] for a in attempts(run) if a["event"] == "end"]
        assert ends.count("completed") <= 1, (run.name, ends)


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text` (to check that no worker outlived its sweep)."""
    found = []
    for proc in os.listdir("/proc"):
        if proc.isdigit():
            try:
                with open(f"/proc/{proc}/cmdline", "rb") as handle:
                    cmdline = handle.read().decode(errors="replace")
                with open(f"/proc/{proc}/stat") as handle:
                    zombie = handle.read().rsplit(")", 1)[1].split()[0] == "Z"
            except OSError:
                continue
            if text in cmdline and not zombie:
                found.append(int(proc))
    return found


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted sweep with one worker."""
    tmp = tmp_path_factory.mktemp("reference")
    out = tmp / "sweep"
    result = run_sweep_cli("run", write_spec(tmp, TINY_GRID), "--out", str(out), "--workers", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert_each_run_completed_once(out)
    return losses(out)


def test_sigkill_at_random_moments_then_rerun_matches_uninterrupted(tmp_path, reference):
    spec, out = write_spec(tmp_path, TINY_GRID), tmp_path / "sweep"
    seed = int(os.environ.get("SWEEP_KILL_SEED", time.time()))
    rng = random.Random(seed)
    with open(tmp_path / "log", "wb") as log:
        for _ in range(3):
            before = total_starts(out)
            proc = start_sweep_cli("run", spec, "--out", str(out), "--workers", "2", log=log)
            while total_starts(out) == before and proc.poll() is None:
                time.sleep(0.05)  # wait until this process has started a worker, then kill it at some moment
            time.sleep(rng.uniform(0, 3))
            proc.send_signal(signal.SIGKILL)  # a no-op if the sweep already finished
            proc.wait()
            deadline = time.time() + 5
            while processes_mentioning(str(out)) and time.time() < deadline:
                time.sleep(0.05)
            assert not processes_mentioning(str(out)), "a worker outlived its killed sweep"
    result = run_sweep_cli("run", spec, "--out", str(out), "--workers", "2")
    assert result.returncode == 0, f"seed {seed}: " + result.stderr[-3000:]
    assert_each_run_completed_once(out)
    assert total_starts(out) > 3, f"seed {seed}: no kill interrupted a run"
    assert losses(out) == reference, f"seed {seed}"
    assert "3 completed" in result.stdout


def test_two_concurrent_sweeps_never_train_a_run_twice(tmp_path, reference):
    spec, out = write_spec(tmp_path, TINY_GRID), tmp_path / "sweep"
    first = start_sweep_cli("run", spec, "--out", str(out), "--workers", "1")
    second = start_sweep_cli("run", spec, "--out", str(out), "--workers", "1")
    assert first.wait(300) == 0 and second.wait(300) == 0
    assert_each_run_completed_once(out)
    for run in (out / "runs").iterdir():
        assert [(a["event"], a.get("status")) for a in attempts(run)] == [("start", None), ("end", "completed")]
    assert losses(out) == reference


def test_failures_are_recorded_retried_and_the_sweep_carries_on(tmp_path):
    spec = spec_lib.parse_text(TINY_GRID, "tiny.toml")
    records = [run.record(spec) for run in make_plan(spec).runs]
    store.write_plan(tmp_path, TINY_GRID, "tiny", "tiny.toml", records)
    broken, diverging, healthy = records
    # A run whose config no longer validates fails on every attempt; one with an absurd lr diverges.
    broken_file = store.run_dir(tmp_path, broken["run_id"]) / "run.json"
    write_json(broken_file, {**broken, "config": {**broken["config"], "train": {**broken["config"]["train"], "lr": -1.0}}})
    train = {**diverging["config"]["train"], "lr": 1e12, "grad_clip": 1e12, "warmup_steps": 0, "weight_decay": 0.0}
    write_json(store.run_dir(tmp_path, diverging["run_id"]) / "run.json", {**diverging, "config": {**diverging["config"],
                                                                                                   "train": train}})
    events = []
    executor = LocalExecutor(workers=2, threads=1)
    tally = run_sweep(tmp_path, records, executor, retries=1, on_event=lambda e, r, o: events.append((e, r and r["run_id"])))
    executor.close()
    assert tally.finished == {broken["run_id"]: "failed", diverging["run_id"]: "diverged", healthy["run_id"]: "completed"}
    assert ("retry", broken["run_id"]) in events and ("retry", diverging["run_id"]) not in events
    failed = store.read_summary(store.run_dir(tmp_path, broken["run_id"]))
    assert failed["status"] == "failed" and "train.lr" in failed["error"]
    assert len([a for a in attempts(store.run_dir(tmp_path, broken["run_id"])) if a["event"] == "end"]) == 2

    from sweeps.collector import collect

    path, n_rows = collect(tmp_path)
    table = pd.read_parquet(path)
    assert n_rows == 3 and sorted(table["status"]) == ["completed", "diverged", "failed"]
    assert table.loc[table.status == "failed", "error"].str.contains("train.lr").all()
    assert table.loc[table.status == "failed", "n_params"].iloc[0] == broken["n_params"]

    # The next `sweep run` skips completed and diverged runs and tries the failed one again.
    write_json(broken_file, broken)
    executor = LocalExecutor(workers=1, threads=1)
    tally = run_sweep(tmp_path, records, executor, retries=0)
    executor.close()
    assert tally.skipped == 2 and tally.finished == {broken["run_id"]: "completed"}


def test_damaged_checkpoints_fall_back_and_say_so(tmp_path, reference):
    """A sweep killed after checkpoint 10; then checkpoint 10 is corrupted and a half-written 15 left behind."""
    text = TINY_GRID.replace("n_params = [2.06e4, 3.3e4, 4.5e4]", "n_params = [3.3e4]")
    spec, out = write_spec(tmp_path, text), tmp_path / "sweep"
    proc = start_sweep_cli("run", spec, "--out", str(out), "--workers", "1")
    run_dir = None
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        runs = list((out / "runs").glob("*")) if (out / "runs").exists() else []
        if runs and store.has_checkpoint(runs[0], 10):
            run_dir = runs[0]
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert run_dir is not None, "the run did not reach checkpoint 10"
    if (run_dir / "summary.json").exists():
        pytest.skip("the run finished before it could be killed")
    time.sleep(0.5)  # let the worker die with its parent
    newest = max(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit())
    for path in (run_dir / "checkpoints" / str(newest) / "state").rglob("*"):
        if path.is_file() and path.parent.name == "d":
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0xFF
            path.write_bytes(bytes(data))
    half = run_dir / "checkpoints" / f"{newest + 5}.orbax-checkpoint-tmp-1234"
    (half / "state").mkdir(parents=True)
    (half / "state" / "garbage").write_bytes(b"\0" * 100)

    result = run_sweep_cli("run", spec, "--out", str(out), "--workers", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    log = (run_dir / "worker.log").read_text()
    assert f"checkpoint at step {newest} could not be restored" in log
    assert f"resuming {run_dir} from step {newest - 5}" in log
    assert f"checkpoint at step {newest} could not be restored" in result.stderr  # the sweep passes it on
    assert losses(out)[run_dir.name] == reference[run_dir.name]


# Two 240-step runs: long enough that a SIGTERM sent at a run's second step reaches it mid-training, even
# through Ray's task cancellation on a loaded machine (80 steps were not: both runs once finished first).
LONG_STEPS = 240
LONG_GRID = TINY_GRID.replace("n_params = [2.06e4, 3.3e4, 4.5e4]", "n_params = [2.06e4, 3.3e4]").replace(
    "tokens = [5120]", f"tokens = [{256 * LONG_STEPS}]")


def every_step_once(sweep_dir, steps: int) -> dict[str, list[float]]:
    """Per run: the training loss of each step (each logged exactly once) and the final validation loss."""
    found = {}
    for run in sorted((sweep_dir / "runs").iterdir()):
        rows = read_jsonl(run / "metrics.jsonl")
        assert [r["step"] for r in rows] == list(range(1, steps + 1)), run.name
        found[run.name] = [r["loss"] for r in rows] + [read_json(run / "summary.json")["final_val_loss"]]
    return found


@pytest.fixture(scope="module")
def long_reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("long_reference")
    result = run_sweep_cli("run", write_spec(tmp, LONG_GRID), "--out", str(tmp / "sweep"), "--workers", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return every_step_once(tmp / "sweep", LONG_STEPS)


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_sigterm_stops_the_sweep_with_checkpoints_and_the_rerun_matches_uninterrupted(executor, tmp_path,
                                                                                      long_reference):
    """What SLURM or Kubernetes does before taking the machine: SIGTERM to the sweep while runs train."""
    if executor == "ray":
        pytest.importorskip("ray")
    spec, out = write_spec(tmp_path, LONG_GRID), tmp_path / "sweep"
    ray_tmp = f"/tmp/ray{os.getpid()}"  # Ray's socket paths must stay short
    command = sweep_cmd("run", spec, "--out", str(out), "--workers", "2", "--executor", executor)
    with open(tmp_path / "log", "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT,
                                env=dict(sweep_env(), RAY_TMPDIR=ray_tmp))
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:  # a run in the middle of its training
            runs = list((out / "runs").glob("*")) if (out / "runs").exists() else []
            if any(len(read_jsonl(r / "metrics.jsonl")) >= 2 for r in runs):
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(120)
    shutil.rmtree(ray_tmp, ignore_errors=True)
    log_text = (tmp_path / "log").read_text()
    assert code == 75, log_text[-3000:]
    assert not processes_mentioning(str(out)), "a worker outlived its stopped sweep"
    summaries = {run.name: store.read_summary(run) or {} for run in (out / "runs").iterdir()}
    assert all(s.get("status") in (None, "preempted") for s in summaries.values()), summaries
    stopped_at = {name: s["steps"] for name, s in summaries.items() if s}  # 0: stopped during its set-up
    assert any(0 < step < LONG_STEPS for step in stopped_at.values()), (stopped_at, log_text[-3000:])
    for name, step in stopped_at.items():
        assert step == 0 or store.has_checkpoint(out / "runs" / name, step)
        assert [a.get("status") for a in attempts(out / "runs" / name) if a["event"] == "end"] == ["preempted"]
    status = run_sweep_cli("status", str(out))
    assert f"{len(stopped_at)} preempted" in status.stdout, status.stdout
    result = run_sweep_cli("run", spec, "--out", str(out), "--workers", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert every_step_once(out, LONG_STEPS) == long_reference  # the losses bit for bit
    assert "Traceback" not in log_text


def test_ray_executor_matches_local(tmp_path, reference):
    pytest.importorskip("ray")
    spec, out = write_spec(tmp_path, TINY_GRID), tmp_path / "sweep"
    ray_tmp = f"/tmp/ray{os.getpid()}"  # Ray's socket paths must stay short
    home = tmp_path / "home"
    home.mkdir()
    env = dict(sweep_env(), RAY_TMPDIR=ray_tmp, RAY_USAGE_STATS_ENABLED="0", HOME=str(home))
    try:
        result = subprocess.run(sweep_cmd("run", spec, "--out", str(out), "--executor", "ray", "--workers", "2"),
                                capture_output=True, text=True, timeout=400, cwd=PROJECT_ROOT, env=env)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ray executor" in result.stderr
    # Neither JAX's os.fork() deadlock warning (Ray's start-up forks and execs at once) nor Ray's notice that
    # it enabled token authentication and saved a token in ~/.ray (the local cluster has a token of its own).
    assert "os.fork()" not in result.stderr and "Token authentication" not in result.stderr, result.stderr[-3000:]
    assert not list(home.rglob("auth_token")) and not list(out.rglob("auth_token"))
    assert_each_run_completed_once(out)
    assert losses(out) == reference
    table = pd.read_parquet(out / "results.parquet")
    assert len(table) == 3 and (table.status == "completed").all()


def test_the_local_ray_cluster_names_its_provider_so_it_does_not_probe_cloud_metadata(tmp_path, monkeypatch):
    """Ray's head asks 169.254.169.254 and metadata.google.internal which cloud it is on unless
    ~/ray_bootstrap_config.yaml names a provider: the local cluster's processes get a HOME that does,
    the training tasks the user's own HOME."""
    from sweeps.executors import _home_without_cloud_probe
    monkeypatch.setenv("HOME", "/home/someone")
    env = {}
    with _home_without_cloud_probe(tmp_path, env):
        home = Path(os.environ["HOME"])
        assert home.parent == tmp_path and "type: local" in (home / "ray_bootstrap_config.yaml").read_text()
    assert os.environ["HOME"] == "/home/someone" and env["HOME"] == "/home/someone"


# One shape, lr x seed = 4 runs that differ only in lr and seed: what `--pack` trains as one program.
TINY_PACK = TINY_GRID.replace("n_params = [2.06e4, 3.3e4, 4.5e4]", "n_params = [3.3e4]") \
    .replace("lr = 3e-3", "lr = [3e-3, 1e-2]\nseed = [0, 1]")


def pack_records(tmp_path, text=TINY_PACK):
    spec = spec_lib.parse_text(text, "pack.toml")
    records = [run.record(spec) for run in make_plan(spec).runs]
    store.write_plan(tmp_path, text, "pack", "pack.toml", records)
    return records


def test_pack_key_groups_exactly_the_runs_that_differ_only_in_lr_and_seed(tmp_path):
    from sweeps.executors import pack_key

    two_sizes = TINY_PACK.replace("n_params = [3.3e4]", "n_params = [3.3e4, 4.5e4]")
    records = pack_records(tmp_path, two_sizes)
    keys = {}
    for record in records:
        keys.setdefault(pack_key(record), set()).add((record["config"]["train"]["lr"], record["config"]["train"]["seed"]))
    assert len(records) == 8 and len(keys) == 2  # one group per size...
    assert all(len(members) == 4 for members in keys.values())  # ...holding its 4 lr x seed runs
    other_batch = {**records[0], "config": {**records[0]["config"],
                                            "train": {**records[0]["config"]["train"], "batch_size": 4}}}
    assert pack_key(other_batch) != pack_key(records[0])
    fsdp = {**records[0], "config": {**records[0]["config"], "train": {**records[0]["config"]["train"], "fsdp": True}}}
    assert pack_key(fsdp) is None
    wsd_spec = spec_lib.parse_text(TINY_WSD, "wsd.toml")
    assert all(pack_key(run.record(wsd_spec)) is None for run in make_plan(wsd_spec).runs)


def test_packed_sweep_trains_each_run_once_with_the_losses_of_the_unpacked_sweep(tmp_path):
    spec = write_spec(tmp_path, TINY_PACK, "pack")
    packed, unpacked = tmp_path / "packed", tmp_path / "unpacked"
    result = run_sweep_cli("run", spec, "--out", str(packed), "--pack", "--workers", "1", "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "packing runs that differ only in lr/seed" in result.stderr
    result = run_sweep_cli("run", spec, "--out", str(unpacked), "--no-pack", "--workers", "1", "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    packed_losses, unpacked_losses = losses(packed), losses(unpacked)  # every step logged exactly once
    assert sorted(packed_losses) == sorted(unpacked_losses) and len(packed_losses) == 4
    for run_id, values in unpacked_losses.items():
        # float32 rounding of the batched matmuls: 1e-5 on each step's loss, as in tests/test_replicas.py; the
        # final validation loss (parameters after 20 steps at lr up to 1e-2) within 2e-4 (measured: 8e-5)
        assert packed_losses[run_id][:-1] == pytest.approx(values[:-1], rel=1e-5)
        assert packed_losses[run_id][-1] == pytest.approx(values[-1], rel=2e-4)
        run = packed / "runs" / run_id
        starts_ = [a for a in attempts(run) if a["event"] == "start"]
        assert len(starts_) == 1 and len(starts_[0]["packed_with"]) == 3  # one packed attempt with the 3 others
        assert read_json(run / "summary.json")["status"] == "completed"
        assert "4 runs packed" in (run / "worker.log").read_text()
    assert len(pd.read_parquet(packed / "results.parquet")) == 4
    # A second `sweep run` trains nothing again.
    result = run_sweep_cli("run", spec, "--out", str(packed), "--pack", "--workers", "1", "--quiet")
    assert result.returncode == 0 and "(4 were already finished)" in result.stdout
    assert total_starts(packed) == 4


def test_a_group_leaves_out_a_locked_member_and_a_finished_one_and_reports_each_member(tmp_path):
    from sweeps.executors import execute_group

    records = pack_records(tmp_path)
    locked, finished, healthy, diverging = (store.run_dir(tmp_path, r["run_id"]) for r in records)
    write_json(finished / "summary.json", {"status": "completed", "error": None})
    train = {**records[3]["config"]["train"], "lr": 1e30}  # still packable: only its lr differs
    write_json(diverging / "run.json", {**records[3], "config": {**records[3]["config"], "train": train}})
    fd = store.try_lock(locked)  # another process trains it
    try:
        outcomes = execute_group([str(d) for d in (locked, finished, healthy, diverging)], threads=1)
    finally:
        store.release(fd)
    assert {o.run_id: o.status for o in outcomes} == {locked.name: "locked", finished.name: "completed",
                                                      healthy.name: "completed", diverging.name: "diverged"}
    assert starts(locked) == starts(finished) == 0  # neither was trained
    for run, other in ((healthy, diverging), (diverging, healthy)):
        assert [a.get("packed_with") for a in attempts(run) if a["event"] == "start"] == [[other.name]]
    assert read_json(diverging / "summary.json")["status"] == "diverged"
    assert [r["step"] for r in read_jsonl(healthy / "metrics.jsonl")] == list(range(1, 21))


def test_ray_executor_trains_a_packed_group_as_one_task(tmp_path):
    pytest.importorskip("ray")
    spec, out = write_spec(tmp_path, TINY_PACK, "pack"), tmp_path / "sweep"
    ray_tmp = f"/tmp/ray{os.getpid()}p"  # Ray's socket paths must stay short
    home = tmp_path / "home"
    home.mkdir()
    env = dict(sweep_env(), RAY_TMPDIR=ray_tmp, RAY_USAGE_STATS_ENABLED="0", HOME=str(home))
    try:
        result = subprocess.run(sweep_cmd("run", spec, "--out", str(out), "--executor", "ray", "--workers", "1",
                                          "--pack"), capture_output=True, text=True, timeout=400, cwd=PROJECT_ROOT,
                                env=env)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_each_run_completed_once(out, n_runs=4)
    for run in (out / "runs").iterdir():
        assert [len(a["packed_with"]) for a in attempts(run) if a["event"] == "start"] == [3]


def test_ready_runs_of_a_shape_are_split_over_the_free_workers_leaving_out_held_and_finished_ones(tmp_path):
    from sweeps.executors import _pack_mates

    records = pack_records(tmp_path)
    by_id = {r["run_id"]: r for r in records}
    first, *others = [r["run_id"] for r in records]
    todo = [first, *others]
    assert len(_pack_mates(tmp_path, first, todo, by_id, free_workers=1)) == 3  # one worker: all 4 together
    assert len(_pack_mates(tmp_path, first, todo, by_id, free_workers=2)) == 1  # two: 2 + 2
    assert _pack_mates(tmp_path, first, todo, by_id, free_workers=4) == []  # one each: nothing to pack
    fd = store.try_lock(store.run_dir(tmp_path, others[0]))  # another process trains it
    write_json(store.run_dir(tmp_path, others[1]) / "summary.json", {"status": "completed"})
    try:
        assert _pack_mates(tmp_path, first, todo, by_id, free_workers=1) == [others[2]]
    finally:
        store.release(fd)
    wsd_spec = spec_lib.parse_text(TINY_WSD, "wsd.toml")
    wsd = {r["run_id"]: r for r in (run.record(wsd_spec) for run in make_plan(wsd_spec).runs)}
    assert _pack_mates(tmp_path, next(iter(wsd)), list(wsd), wsd, free_workers=1) == []


def test_a_ray_task_body_restores_sigint_so_that_cancel_can_interrupt_it():
    """Ray cancels a running task through Python's SIGINT handler; a worker that inherited SIGINT ignored (a
    sweep started in the background of a script) would otherwise train on after its sweep stopped."""
    code = ("import signal; signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            "from sweeps.executors import _interruptible; _interruptible()\n"
            "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert result.stdout.strip() == "True", result.stderr
