"""Multi-process runs: two `scaling train` processes on this machine (CPU, collectives through gloo)."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import PROJECT_ROOT
from scaling.io import read_json, read_jsonl
from scaling.train_cli import distributed_arguments
from scaling.errors import ConfigError

pytestmark = pytest.mark.slow

STEPS = 40  # long enough that a SIGTERM sent after the first logged step lands before the last


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train_command(run_dir, overrides, host_devices: int) -> list[str]:
    command = [sys.executable, "-m", "scaling_cli", "train", "--quiet", "--host-devices", str(host_devices),
               "--out", str(run_dir)]
    return command + [arg for o in overrides for arg in ("--set", o)]


def start_processes(run_dir, overrides, n: int = 2) -> list[subprocess.Popen]:
    """The documented launch, n processes of one device each on this machine."""
    address = f"127.0.0.1:{free_port()}"
    return [subprocess.Popen(train_command(run_dir, overrides, 1), cwd=PROJECT_ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=dict(os.environ, JAX_PLATFORMS="cpu", JAX_COORDINATOR_ADDRESS=address,
                                      JAX_NUM_PROCESSES=str(n), JAX_PROCESS_ID=str(i)))
            for i in range(n)]


def finish(processes) -> list[tuple[int, str, str]]:
    """(exit code, stdout, stderr) of each process, once it has ended; processes that hang are killed."""
    try:
        outputs = [p.communicate(timeout=240) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    return [(p.returncode, *output) for p, output in zip(processes, outputs)]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The same global batch on one process with two host devices: the run to match."""
    from conftest import TINY

    run_dir = tmp_path_factory.mktemp("one") / "run"
    overrides = TINY + [f"train.steps={STEPS}", "train.eval_every=20", "checkpoint.every=16"]
    done = subprocess.run(train_command(run_dir, overrides, 2), cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env=dict(os.environ, JAX_PLATFORMS="cpu"), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return overrides, read_jsonl(run_dir / "metrics.jsonl"), read_json(run_dir / "summary.json")


def assert_matches(run_dir, one_process):
    _, rows, summary = one_process
    mine = read_jsonl(run_dir / "metrics.jsonl")
    assert [r["step"] for r in mine] == list(range(1, STEPS + 1))  # every step logged once, by one process
    assert [r["loss"] for r in mine] == pytest.approx([r["loss"] for r in rows], rel=1e-5)
    evaluated = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    assert [r["step"] for r in mine if "val_loss" in r] == [step for step, _ in evaluated] == [20, 40]
    assert [r["val_loss"] for r in mine if "val_loss" in r] == pytest.approx([v for _, v in evaluated], rel=1e-5)
    written = read_json(run_dir / "summary.json")
    assert written["status"] == "completed" and written["n_devices"] == 2 and written["n_processes"] == 2
    assert written["final_val_loss"] == pytest.approx(summary["final_val_loss"], rel=1e-5)


def test_two_processes_train_the_same_run_as_one(tmp_path, one_process):
    overrides = one_process[0]
    results = finish(start_processes(tmp_path / "run", overrides))
    assert [code for code, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]
    reports = [[line for line in out.splitlines() if line.startswith("run ")] for _, out, _ in results]
    assert [len(lines) for lines in reports] == [1, 0]  # process 0 reports (gloo prints its own lines)
    assert_matches(tmp_path / "run", one_process)
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["32", "40"]


def test_a_signal_to_one_process_stops_both_at_one_step_and_they_resume(tmp_path, one_process):
    overrides = one_process[0]
    run_dir = tmp_path / "run"
    processes = start_processes(run_dir, overrides)
    while not read_jsonl(run_dir / "metrics.jsonl") and all(p.poll() is None for p in processes):
        time.sleep(0.01)
    processes[1].send_signal(signal.SIGTERM)  # SIGTERM to process 1 only: process 0 must stop with it
    results = finish(processes)
    assert [code for code, _, _ in results] == [75, 75], [err[-2000:] for _, _, err in results]
    stopped_at = read_json(run_dir / "summary.json")["steps"]
    assert 1 <= stopped_at < STEPS and (run_dir / "checkpoints" / str(stopped_at)).is_dir()
    results = finish(start_processes(run_dir, overrides))
    assert [code for code, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]
    assert read_json(run_dir / "summary.json")["resumed_from_step"] == stopped_at
    assert_matches(run_dir, one_process)


def test_a_corrupt_checkpoint_is_set_aside_once_and_both_processes_fall_back(tmp_path, one_process):
    overrides = one_process[0]
    run_dir = tmp_path / "run"
    processes = start_processes(run_dir, overrides)
    while len(read_jsonl(run_dir / "metrics.jsonl")) < 20 and all(p.poll() is None for p in processes):
        time.sleep(0.01)
    processes[0].send_signal(signal.SIGTERM)
    assert [code for code, _, _ in finish(processes)] == [75, 75]
    newest = read_json(run_dir / "summary.json")["steps"]
    assert 20 <= newest < STEPS and (run_dir / "checkpoints" / "16").is_dir()
    for path in (run_dir / "checkpoints" / str(newest) / "state").rglob("*"):
        if path.is_file() and path.parent.name == "d":  # flip a byte inside every array file
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0xFF
            path.write_bytes(bytes(data))
    results = finish(start_processes(run_dir, overrides))
    assert [code for code, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]
    assert (run_dir / "checkpoints.corrupt" / str(newest)).is_dir()
    assert read_json(run_dir / "summary.json")["resumed_from_step"] == 16
    assert_matches(run_dir, one_process)


def test_srun_with_two_tasks_trains_one_run_over_both(tmp_path, one_process):
    """Under `srun -n 2` no JAX_* variable is set: JAX reads SLURM's (tested on a real one-node SLURM)."""
    from test_sweeps_slurm import SLURM_MISSING

    if SLURM_MISSING:
        pytest.skip(SLURM_MISSING)
    command = ["srun", "-n", "2", "--cpus-per-task=1", "--export=ALL,JAX_PLATFORMS=cpu",
               *train_command(tmp_path / "run", one_process[0], 1)]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if not k.startswith("JAX_")})
    assert done.returncode == 0, done.stderr[-3000:]
    assert len([line for line in done.stdout.splitlines() if line.startswith("run ")]) == 1  # from process 0
    assert_matches(tmp_path / "run", one_process)


@pytest.mark.parametrize("environ, expected", [
    ({}, None),
    ({"JAX_COORDINATOR_ADDRESS": "h:1234", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "1"},
     {"coordinator_address": "h:1234", "num_processes": 2, "process_id": 1}),
    ({"JAX_COORDINATOR_ADDRESS": "h:1234"}, {}),  # the rest from the cluster's environment
    ({"SLURM_STEP_NUM_TASKS": "4", "SLURM_JOB_ID": "7"}, {}),  # srun: JAX reads SLURM's variables
    ({"SLURM_STEP_NUM_TASKS": "1", "SLURM_JOB_ID": "7"}, None),  # a one-task job step trains alone
])
def test_distributed_arguments_from_the_environment(environ, expected):
    assert distributed_arguments(environ) == expected


@pytest.mark.parametrize("environ, message", [
    ({"JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "0"}, "JAX_COORDINATOR_ADDRESS not set"),
    ({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2"}, "JAX_PROCESS_ID not set"),
    ({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "2"}, "0 <= JAX_PROCESS_ID <"),
    ({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "two", "JAX_PROCESS_ID": "0"}, "whole numbers"),
])
def test_incomplete_or_wrong_process_variables_are_one_error(environ, message):
    with pytest.raises(ConfigError, match=message):
        distributed_arguments(environ)


def test_scaling_train_with_half_the_process_variables_exits_2_and_writes_nothing(tmp_path):
    from conftest import TINY

    done = subprocess.run(train_command(tmp_path / "run", TINY, 1), cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env=dict(os.environ, JAX_PLATFORMS="cpu", JAX_NUM_PROCESSES="2", JAX_PROCESS_ID="0"),
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: JAX_COORDINATOR_ADDRESS not set: a multi-process run needs JAX_COORDINATOR_ADDRESS=host:port, "
        "JAX_NUM_PROCESSES=N and JAX_PROCESS_ID=i (0..N-1) together"]
    assert not (tmp_path / "run").exists()
