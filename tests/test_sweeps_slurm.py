"""The SLURM executor: options and the batch script everywhere; with stand-in sbatch/squeue/scontrol, the
resubmission and self-requeue paths; on a real SLURM (.ci/start_slurm.sh), results equal to the local
executor's, job states in `sweep status`, and a job signalled for preemption requeued and resumed."""

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from scaling.errors import EXIT_PREEMPTED, ConfigError
from scaling.io import read_json, read_jsonl
from sweep_helpers import TINY_GRID, run_sweep_cli, start_sweep_cli, write_spec
from sweeps import executors, slurm, store
from sweeps import spec as spec_lib

# ---- options and the batch script (no SLURM needed) -------------------------------------------------


def test_the_spec_table_sets_each_jobs_resources_and_flags_override_it():
    text = TINY_GRID + '[slurm]\npartition = "debug"\ntime = 30\nmem = "2G"\nextra = ["--qos=low"]\n'
    options = spec_lib.parse_text(text, "s.toml").slurm
    assert options == slurm.SlurmOptions(partition="debug", time="30", mem="2G", extra=("--qos=low",))
    options = slurm.with_flags(options, {"partition": "preemptible", "time": None, "gpus": 1, "extra": []})
    args = slurm.sbatch_args(options, Path("/s/runs/abc"), threads=2, cwd="/w")
    assert "--partition=preemptible" in args and "--time=30" in args and "--gpus=1" in args and "--mem=2G" in args
    assert "--qos=low" in args  # no --slurm-arg given: the spec's extra arguments stay
    assert "--cpus-per-task=2" in args  # --threads unless cpus_per_task says otherwise
    assert {"--requeue", f"--signal=B:TERM@{slurm.SIGNAL_LEAD_S}", "--chdir=/w"} <= set(args)
    assert "--output=/s/runs/abc/slurm/%j.out" in args
    assert spec_lib.parse_text(TINY_GRID, "s.toml").slurm == slurm.SlurmOptions()  # no table: SLURM's defaults


@pytest.mark.parametrize("table, key", [
    ('nodes = 2', "slurm.nodes"), ('time = "soon"', "slurm.time"), ('mem = "lots"', "slurm.mem"),
    ('cpus_per_task = 0', "slurm.cpus_per_task"), ('extra = "--qos=low"', "slurm.extra"),
    ('partition = ""', "slurm.partition"),
])
def test_a_bad_slurm_key_is_refused_by_name(table, key):
    with pytest.raises(ConfigError, match=f"s.toml: key '{key}'"):
        spec_lib.parse_text(TINY_GRID + f"[slurm]\n{table}\n", "s.toml")


def test_a_bad_flag_is_refused_by_name():
    with pytest.raises(ConfigError, match="--slurm-time: must be minutes"):
        slurm.with_flags(slurm.SlurmOptions(), {"time": "1h"})


def test_the_batch_script_execs_the_job_entry_on_a_quoted_run_directory(tmp_path):
    run_dir = tmp_path / "a sweep" / "runs" / "abc"
    script = slurm.job_script(run_dir, threads=3)
    exec_line = [line for line in script.splitlines() if line.startswith("exec ")]
    assert len(exec_line) == 1
    assert shlex.split(exec_line[0])[1:] == [sys.executable, "-P", "-m", "sweeps.slurm", str(run_dir), "--threads", "3"]
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0


# ---- stand-in SLURM commands: resubmission, self-requeue, status --------------------------------------

FAKE_TOOLS = {
    # Each records its arguments; sbatch hands out ids 1, 2, ...; squeue prints the states the test wrote.
    # --test-only (the settings check) submits nothing; it fails, as SLURM does, when $FAKE/refuse says why.
    "sbatch": 'if [ "$1" = --test-only ]; then [ ! -f "$FAKE/refuse" ] || { cat "$FAKE/refuse" >&2; exit 1; }; '
              'exit 0; fi; echo "$@" >> "$FAKE/sbatch.log"; n=$(( $(cat "$FAKE/next" 2>/dev/null || echo 0) + 1 )); '
              'echo $n > "$FAKE/next"; echo $n',
    "sinfo": 'printf "debug\\npreemptible\\n"',
    "squeue": 'cat "$FAKE/states" 2>/dev/null',
    "sacct": 'exit 1',
    "scontrol": 'echo "$@" >> "$FAKE/scontrol.log"',
}


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """A directory whose stand-in SLURM commands come first on PATH; returns it (logs and states live there)."""
    fake = tmp_path / "fake"
    (fake / "bin").mkdir(parents=True)
    for name, body in FAKE_TOOLS.items():
        path = fake / "bin" / name
        path.write_text(f"#!/bin/bash\n{body}\n")
        path.chmod(0o755)
    monkeypatch.setenv("FAKE", str(fake))
    monkeypatch.setenv("PATH", f"{fake / 'bin'}:{os.environ['PATH']}")
    monkeypatch.setattr(slurm, "POLL_S", 0.0)
    monkeypatch.setattr(slurm, "OUTCOME_GRACE_S", 0.0)
    return fake


def set_states(fake: Path, states: dict[str, str]) -> None:
    (fake / "states").write_text("".join(f"{job}|{state}\n" for job, state in states.items()))


def write_outcome(run_dir: Path, job_id: str, status: str) -> None:
    (run_dir / "slurm" / "outcome.json").write_text(json.dumps(
        {"run_id": run_dir.name, "status": status, "error": None, "seconds": 1.0, "job_id": job_id}))


def test_a_preempted_job_is_submitted_again_and_the_next_jobs_outcome_is_the_result(tmp_path, fake_slurm):
    run_dir = tmp_path / "sweep" / "runs" / "r1"
    executor = slurm.SlurmExecutor(slurm.SlurmOptions(partition="debug"), threads=1, workers=4, cwd=str(tmp_path))
    job = executor.submit(str(run_dir))
    assert job.job_id == "1" and (run_dir / "slurm" / "job.sh").exists()
    set_states(fake_slurm, {"1": "RUNNING"})
    assert executor.wait([job], timeout=0) == []
    set_states(fake_slurm, {"1": "PREEMPTED"})  # cancelled by a preemption, no outcome written
    assert executor.wait([job], timeout=0) == [] and job.job_id == "2"
    write_outcome(run_dir, "2", "preempted")  # the job's own requeue failed: it said so and ended
    set_states(fake_slurm, {"2": "FAILED"})
    assert executor.wait([job], timeout=0) == [] and job.job_id == "3"
    write_outcome(run_dir, "3", "completed")
    set_states(fake_slurm, {"3": "COMPLETED"})
    assert executor.wait([job], timeout=0) == [job]
    assert executor.result(job).status == "completed"
    submits = [e["job_id"] for e in read_jsonl(run_dir / "slurm" / "jobs.jsonl") if e["event"] == "submit"]
    assert submits == ["1", "2", "3"]
    assert (fake_slurm / "sbatch.log").read_text().count("--partition=debug") == 3


def test_a_stopped_sweep_names_the_jobs_it_leaves_queued_or_running(tmp_path, fake_slurm, capsys):
    executor = slurm.SlurmExecutor(slurm.SlurmOptions(), threads=1, workers=2, cwd=str(tmp_path))
    first, second = (executor.submit(str(tmp_path / "runs" / name)) for name in ("r1", "r2"))
    write_outcome(first.run_dir, "1", "completed")
    set_states(fake_slurm, {"1": "COMPLETED", "2": "RUNNING"})
    assert executor.wait([first, second], timeout=0) == [first]
    executor.close()  # as after SIGTERM: run_sweep stops waiting, the jobs go on
    assert "note: 1 SLURM job(s) of this sweep still queued or running (2)" in capsys.readouterr().err
    set_states(fake_slurm, {"2": "COMPLETED"})
    write_outcome(second.run_dir, "2", "completed")
    assert executor.wait([second], timeout=0) == [second]
    executor.close()
    assert capsys.readouterr().err == ""  # nothing left behind


def test_a_job_that_ended_without_an_outcome_fails_the_run_with_its_state(tmp_path, fake_slurm, monkeypatch):
    run_dir = tmp_path / "sweep" / "runs" / "r1"
    executor = slurm.SlurmExecutor(slurm.SlurmOptions(), threads=1, workers=1, cwd=str(tmp_path))
    job = executor.submit(str(run_dir))
    (run_dir / "slurm" / "1.out").write_text("slurmstepd: error: *** JOB 1 CANCELLED ***\n")
    (fake_slurm / "bin" / "squeue").write_text("#!/bin/bash\necho 'slurm_load_jobs error: timed out' >&2; exit 1\n")
    assert executor.wait([job], timeout=0) == []  # squeue could not answer: nothing is known yet
    set_states(fake_slurm, {"1": "CANCELLED"})
    (fake_slurm / "bin" / "squeue").write_text('#!/bin/bash\n' + FAKE_TOOLS["squeue"] + '\n')
    monkeypatch.setattr(slurm, "OUTCOME_GRACE_S", 60.0)
    assert executor.wait([job], timeout=0) == []  # its outcome.json may not have reached this host yet
    monkeypatch.setattr(slurm, "OUTCOME_GRACE_S", 0.0)
    assert executor.wait([job], timeout=0) == [job]
    outcome = executor.result(job)
    assert outcome.status == "failed" and "SLURM job 1 ended CANCELLED" in outcome.error
    assert "JOB 1 CANCELLED" in outcome.error  # the tail of the job's output says why
    write_outcome(run_dir, "1", "completed")
    assert slurm.job_outcome(run_dir, "2", None).status == "failed"  # another job's outcome is not this one's


def test_a_run_preempted_too_often_is_failed_not_resubmitted_for_ever(tmp_path, fake_slurm):
    executor = slurm.SlurmExecutor(slurm.SlurmOptions(), threads=1, workers=1, cwd=str(tmp_path))
    job = executor.submit(str(tmp_path / "runs" / "r1"))
    for _ in range(slurm.RESUBMITS):
        set_states(fake_slurm, {job.job_id: "PREEMPTED"})
        assert executor.wait([job], timeout=0) == []
    set_states(fake_slurm, {job.job_id: "PREEMPTED"})
    assert executor.wait([job], timeout=0) == [job]
    assert executor.result(job).status == "failed" and "preempted" in executor.result(job).error


def test_the_job_requeues_itself_when_its_worker_exited_preempted(tmp_path, fake_slurm, monkeypatch):
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    monkeypatch.setenv("SLURM_JOB_ID", "42")

    def worker_ends(status: str):
        def execute(directory, threads, cores=None, gpus=None, cwd=None, live=None):
            return executors.Outcome(Path(directory).name, status)
        return execute

    monkeypatch.setattr(executors, "execute", worker_ends("preempted"))
    assert slurm.run_job(run_dir, threads=1) == EXIT_PREEMPTED
    assert (fake_slurm / "scontrol.log").read_text().split() == ["requeue", "42"]
    assert read_json(run_dir / "slurm" / "outcome.json")["status"] == "preempted"
    monkeypatch.setattr(executors, "execute", worker_ends("completed"))
    assert slurm.run_job(run_dir, threads=1) == 0
    assert (fake_slurm / "scontrol.log").read_text().split() == ["requeue", "42"]  # not again
    assert read_json(run_dir / "slurm" / "outcome.json") == {"run_id": "r1", "status": "completed", "error": None,
                                                             "seconds": 0.0, "job_id": "42"}
    assert [e["event"] for e in read_jsonl(run_dir / "slurm" / "jobs.jsonl")] == ["start", "start"]


def test_the_job_passes_sigterm_on_to_its_worker_and_lives_on():
    live = executors.LiveWorkers()
    previous = signal.getsignal(signal.SIGTERM)
    worker = subprocess.Popen(["sleep", "30"])
    try:
        with live.running(worker):
            slurm.pass_sigterm_on(live)
            os.kill(os.getpid(), signal.SIGTERM)  # as SLURM's --signal=B:TERM does to the job's process
            assert worker.wait(timeout=10) == -signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)
        worker.kill()


def test_status_counts_the_latest_jobs_states_and_lists_the_unfinished(tmp_path, fake_slurm):
    sweep_dir = tmp_path / "sweep"
    records = [{"run_id": "r1", "label": "small"}, {"run_id": "r2", "label": "large"}, {"run_id": "r3", "label": "x"}]
    for record in records[:2]:
        slurm.submit_job(slurm.SlurmOptions(), sweep_dir / "runs" / record["run_id"], 1, str(tmp_path))
    slurm.submit_job(slurm.SlurmOptions(), sweep_dir / "runs" / "r1", 1, str(tmp_path))  # r1 resubmitted: job 3
    set_states(fake_slurm, {"1": "PREEMPTED", "2": "COMPLETED", "3": "PENDING"})
    lines = slurm.status_lines(sweep_dir, records)
    assert lines[0] == "slurm jobs: 1 COMPLETED, 1 PENDING"
    assert len(lines) == 2 and lines[1].split() == ["PENDING", "job", "3", "r1", "small"]
    assert slurm.status_lines(sweep_dir, records[2:]) == []  # never submitted: nothing to say
    (fake_slurm / "bin" / "squeue").unlink()
    os.environ["PATH"] = str(fake_slurm / "bin")  # restored by monkeypatch
    assert slurm.status_lines(sweep_dir, records) == [
        "slurm jobs: 2 submitted (their ids in RUN_DIR/slurm/jobs.jsonl); no squeue here to ask"]


def test_settings_the_cluster_cannot_give_are_refused_before_any_job(tmp_path, fake_slurm):
    (fake_slurm / "refuse").write_text("sbatch: error: Invalid generic resource (gres) specification\n")
    with pytest.raises(ConfigError, match=r"SLURM refuses the job settings --ntasks=1 --cpus-per-task=1 --gpus=4 "
                                          r"\(sbatch: error: Invalid generic resource"):
        slurm.SlurmExecutor(slurm.SlurmOptions(gpus=4), threads=1, workers=1, cwd=str(tmp_path))
    assert not (fake_slurm / "sbatch.log").exists()  # nothing was submitted


def test_missing_sbatch_an_unknown_partition_or_a_stray_flag_exits_2_and_writes_nothing(tmp_path, fake_slurm):
    spec, out = write_spec(tmp_path, TINY_GRID), tmp_path / "sweep"
    result = run_sweep_cli("run", spec, "--out", str(out), "--executor", "slurm", "--slurm-partition", "nope")
    assert result.returncode == 2 and not out.exists()
    assert result.stderr.strip().splitlines()[-1].startswith("error: slurm partition 'nope' does not exist here "
                                                             "(partitions: debug, preemptible)")
    result = run_sweep_cli("run", spec, "--out", str(out), "--slurm-partition", "debug")  # local executor
    assert result.returncode == 2 and not out.exists()
    assert result.stderr.strip().splitlines()[-1] == ("error: --slurm-partition applies to --executor slurm only; "
                                                      "add --executor slurm or remove it")
    (fake_slurm / "bin" / "sbatch").unlink()
    os.environ["PATH"] = str(fake_slurm / "bin")  # restored by monkeypatch; the CLI needs nothing else on PATH
    result = run_sweep_cli("run", spec, "--out", str(out), "--executor", "slurm")
    assert result.returncode == 2 and not out.exists()
    assert result.stderr.strip().splitlines()[-1].startswith("error: --executor slurm needs SLURM's sbatch on PATH")


# ---- a real SLURM -----------------------------------------------------------------------------------

def slurm_missing() -> str | None:
    """Why the real-SLURM tests cannot run here, or None."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return "SLURM is not installed (no sbatch/sinfo on PATH); .ci/start_slurm.sh installs and starts it"
    nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=30)
    if nodes.returncode != 0 or not {"idle", "mixed", "allocated"} & set(nodes.stdout.split()):
        why = (nodes.stderr.strip().splitlines() or [nodes.stdout.strip() or "no node up"])[0]
        return f"SLURM is not up ({why}); run .ci/start_slurm.sh as root"
    return None


SLURM_MISSING = slurm_missing()
needs_slurm = pytest.mark.skipif(SLURM_MISSING is not None, reason=str(SLURM_MISSING))


def losses(sweep_dir: Path) -> dict[str, list[float]]:
    """Per run: each step's training loss (every step logged once) and the final validation loss."""
    found = {}
    for run in sorted((sweep_dir / "runs").iterdir()):
        rows = read_jsonl(run / "metrics.jsonl")
        steps = read_json(run / "run.json")["config"]["train"]["steps"]
        assert [r["step"] for r in rows] == list(range(1, steps + 1)), run.name
        found[run.name] = [r["loss"] for r in rows] + [read_json(run / "summary.json")["final_val_loss"]]
    return found


def job_starts(run_dir: Path) -> list[tuple[str, int]]:
    path = run_dir / "slurm" / "jobs.jsonl"
    return [(e["job_id"], e["restart"]) for e in read_jsonl(path) if e["event"] == "start"] if path.exists() else []


@needs_slurm
@pytest.mark.slow
def test_a_sweep_on_slurm_gives_the_local_executors_results_and_status_shows_its_jobs(tmp_path):
    spec = write_spec(tmp_path, TINY_GRID)
    local, on_slurm = tmp_path / "local", tmp_path / "slurm"
    result = run_sweep_cli("run", spec, "--out", str(local), "--workers", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    result = run_sweep_cli("run", spec, "--out", str(on_slurm), "--executor", "slurm", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "slurm executor" in result.stderr
    assert losses(on_slurm) == losses(local)  # bitwise: same worker, same CPU share
    columns = ["run_id", "status", "final_val_loss", "steps"]
    assert pd.read_parquet(on_slurm / "results.parquet")[columns].sort_values("run_id").reset_index(drop=True).equals(
        pd.read_parquet(local / "results.parquet")[columns].sort_values("run_id").reset_index(drop=True))
    for run in (on_slurm / "runs").iterdir():
        assert len(job_starts(run)) == 1  # one job per run, started once
    status = run_sweep_cli("status", str(on_slurm))
    assert status.returncode == 0 and "3 completed" in status.stdout and "slurm jobs: 3 COMPLETED" in status.stdout


def wait_for(condition, what: str, timeout: float = 120.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        assert proc is None or proc.poll() is None, f"the sweep ended while waiting for {what}"
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def scontrol_field(job_id: str, field: str) -> str:
    shown = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
    return next((word.split("=", 1)[1] for word in shown.split() if word.startswith(field + "=")), "")


@needs_slurm
def test_a_job_whose_run_is_locked_elsewhere_does_not_train_it(tmp_path):
    """Exactly once across executors and machines: the job takes the same lock as a local `sweep run`."""
    run_dir = tmp_path / "sweep" / "runs" / "r1"
    held = store.try_lock(run_dir)  # as a local sweep training this run would
    try:
        executor = slurm.SlurmExecutor(slurm.SlurmOptions(), threads=1, workers=1)
        job = executor.submit(str(run_dir))
        done = wait_for(lambda: executor.wait([job], timeout=1.0), "the job's end", timeout=300)
    finally:
        store.release(held)
    assert done == [job] and executor.result(job).status == "locked"
    assert not (run_dir / "metrics.jsonl").exists() and not (run_dir / "worker.log").exists()


def preempt_by_signal(job_id: str) -> None:
    """What SLURM does --signal=B:TERM@60 before the time limit: SIGTERM to the job's own process."""
    subprocess.run(["scancel", "--batch", "--signal=TERM", job_id], check=True)


def preempt_by_job(job_id: str) -> None:
    """A job in the default partition that needs every CPU: SLURM preempts ours, in the lower-tier
    'preemptible' partition, by requeueing it (PreemptMode=REQUEUE)."""
    cpus = subprocess.run(["sinfo", "-h", "-N", "-o", "%c"], capture_output=True, text=True).stdout.split()[0]
    subprocess.run(["sbatch", f"--cpus-per-task={cpus}", "--output=/dev/null", "--wrap", "sleep 1"],
                   check=True, capture_output=True)


@needs_slurm
@pytest.mark.slow
@pytest.mark.parametrize("preempt, partition", [(preempt_by_signal, None), (preempt_by_job, "preemptible")],
                         ids=["signal", "job"])
def test_a_preempted_job_is_requeued_and_the_run_resumes_to_the_same_losses(tmp_path, preempt, partition):
    partitions = subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True).stdout.split()
    if partition is not None and partition not in partitions:
        pytest.skip(f"this SLURM has no '{partition}' partition whose jobs others preempt "
                    "(.ci/start_slurm.sh makes one)")
    # One run of 1,600 steps, checkpointed every 50; the preemption lands early enough to find it running
    # (SLURM's scheduler takes a second or two to preempt for the other job).
    text = TINY_GRID.replace("n_params = [2.06e4, 3.3e4, 4.5e4]", "n_params = [2.06e4]").replace(
        "tokens = [5120]", "tokens = [409600]").replace("every = 5", "every = 50")
    spec, local, on_slurm = write_spec(tmp_path, text), tmp_path / "local", tmp_path / "slurm"
    result = run_sweep_cli("run", spec, "--out", str(local), "--workers", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    log = open(tmp_path / "sweep.log", "w")
    where = ("--slurm-partition", partition) if partition else ()
    proc = start_sweep_cli("run", spec, "--out", str(on_slurm), "--executor", "slurm", *where, log=log)
    try:
        metrics = wait_for(lambda: next((on_slurm / "runs").glob("*/metrics.jsonl"), None), "training", proc=proc)
        run_dir = metrics.parent
        wait_for(lambda: len(read_jsonl(run_dir / "metrics.jsonl")) >= 10, "10 steps", proc=proc)
        job_id = job_starts(run_dir)[0][0]
        preempt(job_id)
        # Requeued and back in the queue (not still COMPLETING on the node, which would refuse to start it).
        wait_for(lambda: scontrol_field(job_id, "Restarts") not in ("", "0")
                 and scontrol_field(job_id, "JobState") == "PENDING", "the job's requeue", proc=proc)
        status = run_sweep_cli("status", str(on_slurm))
        assert f"job {job_id} {run_dir.name}" in status.stdout and "PENDING" in status.stdout, status.stdout
        # SLURM holds a requeued job for about two minutes before it may start again; not this test. But not
        # within the second of the requeue either: the node compares the new job credential's time with the
        # revocation's, in whole seconds, and kills a job restarted too soon ("Job credential revoked").
        time.sleep(2)
        subprocess.run(["scontrol", "update", f"jobid={job_id}", "StartTime=now"], check=True)
        assert proc.wait(timeout=300) == 0, (tmp_path / "sweep.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    # The same job, started again by SLURM (more than once if another test's job preempted it too), each
    # attempt but the last checkpointed on SIGTERM and the last finished from there.
    starts = job_starts(run_dir)
    assert len(starts) >= 2 and starts == [(job_id, restart) for restart in range(len(starts))]
    assert "resuming" in (run_dir / "worker.log").read_text()
    ends = [e["exit_code"] for e in read_jsonl(run_dir / "attempts.jsonl") if e["event"] == "end"]
    assert ends == [EXIT_PREEMPTED] * (len(ends) - 1) + [0] and len(ends) >= 2
    assert losses(on_slurm) == losses(local)
