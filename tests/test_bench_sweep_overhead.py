"""bench/sweep_overhead.py on a tiny sweep: the JSON adds up, and bad input is refused with one line."""

import json
import subprocess
import sys

import pytest

from conftest import PROJECT_ROOT
from sweep_helpers import TINY_GRID, sweep_env, write_spec

SCRIPT = str(PROJECT_ROOT / "bench" / "sweep_overhead.py")


def bench(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=PROJECT_ROOT, env=sweep_env())


@pytest.mark.slow
def test_tiny_sweep_overhead_json_is_consistent(tmp_path):
    spec = write_spec(tmp_path, TINY_GRID)
    out = tmp_path / "sweep"
    done = bench(spec, "--max-runs", "2", "--workers", "2", "--threads", "1", "--probe-seconds", "0.2",
                 "--set", "grid.tokens=[2560]", "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["runs_in_plan"] == 3 and result["runs"] == 2 == result["completed"] == len(result["per_run"])
    assert sorted(r["n_params"] for r in result["per_run"]) == [20_576, 45_280]  # spread: smallest and largest
    assert result["workers"] == 2 and result["threads"] == 1 and result["slots"] == 2
    assert 0 < result["ideal_wall_s"] <= result["wall_s"]
    assert 0 < result["overhead"] < 1
    assert 0 < result["overhead_load_adjusted"] <= result["overhead"]
    assert result["ideal_wall_s"] == pytest.approx(result["ideal_total_s"] / 2)
    assert result["wall_s"] == pytest.approx(result["plan_s"] + result["execute_s"] + result["collect_s"])
    # The categories account for every worker-second.
    assert sum(result["breakdown_s"].values()) == pytest.approx(result["worker_seconds"], rel=1e-6)
    assert sum(result["breakdown_fraction"].values()) == pytest.approx(1.0)
    assert result["breakdown_fraction"]["ideal"] == pytest.approx(1 - result["overhead"])
    for row in result["per_run"]:
        assert row["status"] == "completed" and row["steps_trained"] == 10 == row["steps_planned"]
        assert 0 < row["ideal_seconds_per_step"] <= row["probe_seconds_per_step"]
        assert row["ideal"] == pytest.approx(10 * row["ideal_seconds_per_step"])
        assert row["ideal_seconds_per_step"] <= row["seconds_per_step"]  # the run's own steps are never faster
        for key in ("compile", "init", "eval", "checkpoint", "process_start", "process_exit"):
            assert row[key] > 0, key
        assert row["evals"] == 1 and row["checkpoint_saves"] == 2  # step 5, and the end (step 10)
    assert len(result["probes"]) == 3  # every shape of the plan, for the extrapolation to all its runs
    whole = result["extrapolation"]
    assert whole["runs"] == 3 and 0 < whole["ideal_wall_s"] < whole["wall_s"] and 0 < whole["overhead"] < 1
    assert 0 < result["workers_cpu_share"] <= 1.05
    assert 0 < result["compilation_s"] < result["worker_seconds"] - result["breakdown_s"]["ideal"]
    assert (out / "results.parquet").exists()  # kept, since --out was given


def test_bad_input_is_one_line_with_exit_code_2(tmp_path):
    spec = write_spec(tmp_path, TINY_GRID)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("")
    for args, message in [
        ((spec, "--workers", "0"), "--workers must be >= 1"),
        ((str(tmp_path / "missing.toml"),), "is not a file"),
        ((spec, "--out", str(tmp_path / "busy")), "not an empty directory"),
        ((spec, "--runs", "zzzz"), "'zzzz' matches 0"),
        ((spec, "--max-run-flops", "1"), "leaves no run"),
        ((spec, "--set", "grid.nope=1"), "nope"),
    ]:
        done = bench(*args, timeout=120)
        assert done.returncode == 2, (args, done.stderr[-1000:])
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], (args, lines)
