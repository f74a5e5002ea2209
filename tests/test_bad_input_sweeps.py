"""Bad input to `scaling sweep`, `report` and `moore`: a one-line `error:` (exit 2) and nothing written or
deleted, or a `warning:` naming the damaged file; and the end-to-end guarantees of issue 12 (a sweep run
from a directory holding a decoy `sweeps/` package, re-planning with --force, a damaged summary re-run,
sweeps with the network removed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from report_helpers import make_sweep
from scaling_cli.main import main
from scaling.io import MANIFEST, write_json
from sweep_helpers import TINY_GRID, sweep_env, write_spec
from sweeps import spec as spec_lib
from sweeps import store
from sweeps.planner import make_plan

SCALING = Path(sys.executable).parent / "scaling"  # the installed entry point, as a user runs it
ONE_RUN = TINY_GRID.replace("n_params = [2.06e4, 3.3e4, 4.5e4]", "n_params = [2.06e4]")
MINE = {"index.html": "my page", "photos/cat.jpg": "a cat", "notes.txt": "my notes"}


def tree(path: Path) -> dict[str, bytes | None]:
    """Everything under `path`, hidden files included: files with their bytes, directories as None (to show
    that nothing was written, deleted or left behind)."""
    return {p.relative_to(path).as_posix(): p.read_bytes() if p.is_file() else None for p in sorted(path.rglob("*"))}


def fake_sweep(tmp: Path, text: str = TINY_GRID) -> Path:
    """A planned sweep whose runs all look completed (no training)."""
    spec = spec_lib.parse_text(text, "tiny.toml")
    records = [run.record(spec) for run in make_plan(spec).runs]
    sweep = tmp / "sweep"
    store.write_plan(sweep, text, "tiny", "tiny.toml", records)
    for record in records:
        write_json(store.run_dir(sweep, record["run_id"]) / "summary.json",
                   {"status": "completed", "tokens": 5120, "final_val_loss": 3.1, "steps": 20})
    return sweep


def user_folder(tmp: Path) -> Path:
    folder = tmp / "mine"
    for name, text in MINE.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def first_run(sweep: Path) -> Path:
    return store.run_dir(sweep, json.loads((sweep / "sweep.json").read_text())["run_ids"][0])


# Each case: setup(tmp) -> argv ({spec}, {sweep}, {tmp} filled in), and the text the error must hold.
def _truncate_sweep_json(tmp):
    path = fake_sweep(tmp) / "sweep.json"
    path.write_text(path.read_text()[: len(path.read_text()) // 2])


def _drop_run_json(tmp):
    (first_run(fake_sweep(tmp)) / "run.json").unlink()


def _escaping_run_id(tmp):
    path = fake_sweep(tmp) / "sweep.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "run_ids": ["../../../../etc"]}))


def _other_spec(tmp):
    fake_sweep(tmp)
    write_spec(tmp, ONE_RUN, "other")


def _one_accelerator(tmp):
    (tmp / "hw.csv").write_text("Hardware name,Release date,FP32 (single precision) performance (FLOP/s)\n"
                                "X1,2020-05-14,1.95e13\n")


def _hparams_spec(line: str):
    """A setup writing {tmp}/bad.toml: TINY_GRID with its lr line replaced."""
    return lambda tmp: (tmp / "bad.toml").write_text(TINY_GRID.replace("lr = 3e-3", line))


ERRORS = {
    "workers -3": (None, ["sweep", "run", "{spec}", "--out", "{tmp}/new", "--workers", "-3"], "--workers -3: must be at least 1"),
    "threads 0": (None, ["sweep", "run", "{spec}", "--out", "{tmp}/new", "--threads", "0"], "--threads 0: must be at least 1"),
    "retries -1": (None, ["sweep", "run", "{spec}", "--out", "{tmp}/new", "--retries", "-1"], "--retries -1"),
    "plan threads 0": (None, ["sweep", "plan", "{spec}", "--threads", "0", "--no-estimate"], "--threads 0"),
    "status truncated sweep.json": (_truncate_sweep_json, ["sweep", "status", "{sweep}"], "sweep.json is unreadable"),
    "status missing run.json": (_drop_run_json, ["sweep", "status", "{sweep}"], "run.json is missing"),
    "status run id ../../../../etc": (_escaping_run_id, ["sweep", "status", "{sweep}"], "names '../../../../etc', which is not a run id"),
    "collect run id ../../../../etc": (_escaping_run_id, ["sweep", "collect", "{sweep}"], "is not a run id"),
    "collect --out DIR": (lambda tmp: (fake_sweep(tmp), (tmp / "adir").mkdir()),
                          ["sweep", "collect", "{sweep}", "--out", "{tmp}/adir"], "--out {tmp}/adir is a directory"),
    "collect --out foreign file": (lambda tmp: (fake_sweep(tmp), (tmp / "notes.txt").write_text("mine")),
                                   ["sweep", "collect", "{sweep}", "--out", "{tmp}/notes.txt"], "is not a parquet file"),
    "run --out FILE": (lambda tmp: (tmp / "file.txt").write_text("mine"),
                       ["sweep", "run", "{spec}", "--out", "{tmp}/file.txt"], "exists and is not a directory"),
    "run --out user folder": (user_folder, ["sweep", "run", "{spec}", "--out", "{tmp}/mine"], "is not a sweep directory"),
    "run another spec": (_other_spec, ["sweep", "run", "{tmp}/other.toml", "--out", "{sweep}"], "--force to re-plan"),
    "report --out user folder": (lambda tmp: (fake_sweep(tmp), user_folder(tmp)),
                                 ["report", "{sweep}", "--out", "{tmp}/mine"], "scaling report did not write"),
    "moore --out user folder": (user_folder, ["moore", "--out", "{tmp}/mine"], "scaling moore did not write"),
    "plan hparams.lr = []": (_hparams_spec("lr = []"), ["sweep", "plan", "{tmp}/bad.toml", "--no-estimate"],
                             "key 'hparams.lr' is an empty list"),
    "plan hparams.lr non-numeric": (_hparams_spec('lr = [1e-3, "fast"]'),
                                    ["sweep", "plan", "{tmp}/bad.toml", "--no-estimate"],
                                    "key 'hparams.lr[1]' must be float, got 'fast' (str)"),
    "run hparams.lr negative": (_hparams_spec("lr = [3e-3, -1e-3]"),
                                ["sweep", "run", "{tmp}/bad.toml", "--out", "{tmp}/new"],
                                "key 'hparams.lr[1]' must be positive, got -0.001"),
    "run hparams.seed fractional": (_hparams_spec("lr = 3e-3\nseed = [0, 0.5]"),
                                    ["sweep", "run", "{tmp}/bad.toml", "--out", "{tmp}/new"], "key 'hparams.seed[1]'"),
    "moore --hardware one row": (_one_accelerator, ["moore", "--hardware", "{tmp}/hw.csv", "--out", "{tmp}/moore"],
                                 "needs at least 3 at different dates"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_bad_input_is_one_error_line_and_nothing_is_written(case, tmp_path, capsys):
    setup, argv, message = ERRORS[case]
    work = tmp_path / "work"
    work.mkdir()
    spec = write_spec(tmp_path, TINY_GRID)  # outside `work`, whose files are compared before and after
    if setup:
        setup(work)
    fill = {"{spec}": spec, "{sweep}": str(work / "sweep"), "{tmp}": str(work)}

    def filled(text):
        for key, value in fill.items():
            text = text.replace(key, value)
        return text

    before = tree(work)
    code = main([filled(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert filled(message) in err, err
    assert tree(work) == before  # nothing written, replaced, deleted or left behind


def test_a_damaged_summary_is_reported_and_the_run_kept(tmp_path, capsys):
    sweep = fake_sweep(tmp_path)
    damaged = first_run(sweep) / "summary.json"
    damaged.write_bytes(b"\x00\x9f garbage")
    assert main(["sweep", "status", str(sweep)]) == 0
    out, err = capsys.readouterr()
    assert "3 runs: 2 completed, 1 corrupt summary" in out
    assert err.startswith("warning: ") and str(damaged) in err and err.count("\n") == 1
    assert main(["sweep", "collect", str(sweep)]) == 0
    out, err = capsys.readouterr()
    assert "wrote 3 rows" in out and str(damaged) in err
    table = pd.read_parquet(sweep / "results.parquet")
    assert sorted(table.status) == ["completed", "completed", "corrupt summary"]


def test_report_on_a_binary_metrics_file_warns_and_reports(tmp_path, capsys):
    sweep = make_sweep(tmp_path / "sweep", budgets=(1e18, 1e19), sizes_per_budget=3, width=0.5)
    metrics = sorted((sweep / "runs").iterdir())[0] / "metrics.jsonl"
    metrics.write_bytes(bytes(range(256)) * 4)
    assert main(["report", str(sweep), "--out", str(tmp_path / "report"), "--bootstrap", "0"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {metrics} is unreadable" in err
    assert (tmp_path / "report" / "index.html").exists() and (tmp_path / "report" / MANIFEST).exists()


def test_another_spec_needs_force_which_keeps_every_finished_run(tmp_path):
    """The issue's case: a 3-run sweep re-run with a 1-run spec used to shrink results.parquet to 1 row."""
    sweep = fake_sweep(tmp_path)
    other = write_spec(tmp_path, ONE_RUN, "other")
    refused = run_scaling("sweep", "run", other, "--out", str(sweep), "--workers", "1", cwd=tmp_path)
    assert refused.returncode == 2 and "--force" in refused.stderr
    forced = run_scaling("sweep", "run", other, "--out", str(sweep), "--workers", "1", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert len(json.loads((sweep / "sweep.json").read_text())["run_ids"]) == 1
    table = pd.read_parquet(sweep / "results.parquet")
    assert len(table) == 3 and (table.status == "completed").all()


def run_scaling(*args: str, cwd: Path, offline: bool = False, timeout: int = 400,
                env: dict | None = None) -> subprocess.CompletedProcess:
    """`scaling ARGS` from `cwd` as a user runs it; `offline`: in a network namespace with only loopback."""
    cmd = [str(SCALING), *args]
    if offline:
        cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up 2>/dev/null; exec "$@"', "sh", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env or sweep_env())


def can_go_offline() -> str | None:
    """Why a network namespace cannot be made here, or None when it can."""
    if not shutil.which("unshare"):
        return "no unshare command"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"unshare -n failed: {probe.stderr.strip()}"


def decoy_directory(tmp: Path) -> Path:
    """A working directory whose sweeps/ package would, if imported, leave a marker file and exit 0."""
    work = tmp / "work"
    (work / "sweeps").mkdir(parents=True)
    for name in ("__init__.py", "worker.py", "executors.py", "store.py"):
        (work / "sweeps" / name).write_text(
            f"import pathlib, sys\npathlib.Path({str(tmp / 'decoy_ran')!r}).write_text({name!r})\nsys.exit(0)\n")
    return work


def assert_completed_without_decoy(tmp: Path, result, sweep: Path) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp / "decoy_ran").exists(), "code from the working directory ran"
    summary = json.loads((first_run(sweep) / "summary.json").read_text())
    assert summary["status"] == "completed"


@pytest.mark.slow
def test_local_sweep_from_a_directory_with_a_decoy_sweeps_package_offline(tmp_path):
    work = decoy_directory(tmp_path)
    spec = write_spec(tmp_path, ONE_RUN)
    why_not = can_go_offline()
    result = run_scaling("sweep", "run", spec, "--out", "sweep", "--workers", "1", cwd=work, offline=why_not is None)
    assert_completed_without_decoy(tmp_path, result, work / "sweep")
    if why_not:
        pytest.skip(f"ran online: {why_not}")


@pytest.mark.slow
def test_ray_sweep_from_a_directory_with_a_decoy_sweeps_package_offline(tmp_path):
    pytest.importorskip("ray", reason="ray is not installed (pip install 'scaling[ray]')")
    why_not = can_go_offline()
    if why_not:
        pytest.skip(why_not)
    work = decoy_directory(tmp_path)
    spec = write_spec(tmp_path, ONE_RUN)
    ray_tmp = f"/tmp/ray{os.getpid()}"  # Ray's socket paths must stay short
    env = {k: v for k, v in sweep_env().items() if not k.startswith("RAY_USAGE_STATS")}  # ours must set them
    try:
        result = run_scaling("sweep", "run", spec, "--out", "sweep", "--executor", "ray", "--workers", "1",
                             cwd=work, offline=True, env=dict(env, RAY_TMPDIR=ray_tmp))
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert_completed_without_decoy(tmp_path, result, work / "sweep")
    assert "ray executor" in result.stderr


@pytest.mark.slow
def test_a_damaged_summary_is_trained_again(tmp_path):
    spec = write_spec(tmp_path, ONE_RUN)
    sweep = tmp_path / "sweep"
    assert run_scaling("sweep", "run", spec, "--out", str(sweep), "--workers", "1", cwd=tmp_path).returncode == 0
    summary = first_run(sweep) / "summary.json"
    loss = json.loads(summary.read_text())["final_val_loss"]
    summary.write_bytes(b"\x00 damaged")
    again = run_scaling("sweep", "run", spec, "--out", str(sweep), "--workers", "1", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "1 completed" in again.stdout
    assert json.loads(summary.read_text())["final_val_loss"] == loss
