import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import PROJECT_ROOT
from scaling.config import load
from scaling.errors import EXIT_PREEMPTED, PreemptedError
from scaling.io import read_json, read_jsonl
from scaling.preemption import stop_on_signals
from scaling.training import train


def test_a_signal_sets_the_request_and_the_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals() as requested:
        assert not requested.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # repeated (a sweep forwarding it): still only a request
        assert requested.is_set()
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_second_ctrl_c_stops_at_once():
    with pytest.raises(KeyboardInterrupt):
        with stop_on_signals() as requested:
            os.kill(os.getpid(), signal.SIGINT)
            assert requested.is_set()
            os.kill(os.getpid(), signal.SIGINT)


def test_outside_the_main_thread_signals_are_left_alone():
    seen = {}

    def body():
        with stop_on_signals() as requested:
            seen["handler"] = signal.getsignal(signal.SIGTERM)
            seen["set"] = requested.is_set()
    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == {"handler": before, "set": False}


def signal_self_at(step_to_stop: int, signum: int):
    def on_step(step):
        if step == step_to_stop:
            os.kill(os.getpid(), signum)
    return on_step


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_checkpoints_the_current_step_and_the_resume_matches_bitwise(signum, tmp_path, tiny_overrides):
    # log_every=3: step 7 is not a logged step, so a row for it would be a row the straight run lacks.
    overrides = tiny_overrides + ["train.steps=12", "train.log_every=3", "checkpoint.every=5"]
    straight = tmp_path / "straight"
    train(load(None, overrides), straight, quiet=True)
    run = tmp_path / "run"
    with pytest.raises(PreemptedError, match="at step 7") as stopped:
        train(load(None, overrides), run, quiet=True, on_step=signal_self_at(7, signum))
    assert stopped.value.exit_code == EXIT_PREEMPTED == 75
    assert sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit()) == [5, 7]
    summary = read_json(run / "summary.json")
    assert summary["status"] == "preempted" and summary["steps"] == 7
    assert [r["step"] for r in read_jsonl(run / "metrics.jsonl")] == [3, 5, 6]  # 5: the checkpoint's row
    resumed = train(load(None, overrides), run, quiet=True)
    assert resumed["status"] == "completed" and resumed["resumed_from_step"] == 7
    a, b = read_jsonl(straight / "metrics.jsonl"), read_jsonl(run / "metrics.jsonl")
    assert [r["step"] for r in b] == [r["step"] for r in a]
    assert [(r["loss"], r.get("val_loss")) for r in b] == [(r["loss"], r.get("val_loss")) for r in a]
    assert resumed["final_train_loss"] == read_json(straight / "summary.json")["final_train_loss"]


def test_a_signal_during_set_up_stops_before_the_first_step(tmp_path, tiny_overrides, monkeypatch):
    import scaling.training as train_module

    compile_step = train_module.compile_train_step

    def compile_then_signal(*args, **kwargs):  # SIGTERM while the run compiles, before any step
        step_fn = compile_step(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)
        return step_fn
    monkeypatch.setattr(train_module, "compile_train_step", compile_then_signal)
    overrides = tiny_overrides + ["train.steps=4"]
    with pytest.raises(PreemptedError, match="at step 0"):
        train(load(None, overrides), tmp_path, quiet=True)
    assert read_json(tmp_path / "summary.json")["status"] == "preempted"
    assert not read_jsonl(tmp_path / "metrics.jsonl") and not any((tmp_path / "checkpoints").iterdir())
    monkeypatch.setattr(train_module, "compile_train_step", compile_step)
    assert train(load(None, overrides), tmp_path, quiet=True)["status"] == "completed"


def test_sigterm_to_scaling_train_exits_75_and_a_rerun_resumes_exactly(tmp_path, tiny_overrides):
    """The real thing: `scaling train` in its own process, SIGTERM from outside while it trains."""
    overrides = tiny_overrides + ["train.steps=150", "train.eval_every=50", "checkpoint.every=0"]
    straight = tmp_path / "straight"
    train(load(None, overrides), straight, quiet=True)
    run = tmp_path / "run"
    command = [sys.executable, "-m", "scaling_cli", "train", "--quiet", "--host-devices", "1", "--out", str(run)]
    command += [arg for o in overrides for arg in ("--set", o)]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, JAX_PLATFORMS="cpu"))
    while len(read_jsonl(run / "metrics.jsonl")) < 2 and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    stderr = process.communicate(timeout=120)[1]
    assert process.returncode == EXIT_PREEMPTED, stderr[-2000:]
    summary = read_json(run / "summary.json")
    stopped_at = summary["steps"]
    assert summary["status"] == "preempted" and 2 <= stopped_at < 150, summary["steps"]
    assert (run / "checkpoints" / str(stopped_at)).is_dir()
    assert [line for line in stderr.splitlines() if line.startswith("error:")] == [
        f"error: run {run} stopped by a signal at step {stopped_at} and checkpointed there; rerun the same "
        "command to resume from that step"]
    resumed = train(load(None, overrides), run, quiet=True)
    assert resumed["resumed_from_step"] == stopped_at
    a, b = read_jsonl(straight / "metrics.jsonl"), read_jsonl(run / "metrics.jsonl")
    assert [r["step"] for r in b] == list(range(1, 151))
    assert [(r["loss"], r.get("val_loss")) for r in b] == [(r["loss"], r.get("val_loss")) for r in a]
