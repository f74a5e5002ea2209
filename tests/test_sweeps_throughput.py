"""sweeps.throughput: the two-point step-time model, its cache, and how estimates are printed. The probe
subprocess is replaced by a device whose step time is known (overhead + FLOPs / rate), so the tests can
say what the estimate must be."""

from __future__ import annotations

import json
import math
import re
import subprocess

import pytest

from scaling import accounting
from scaling.config import EVAL_BATCH
from scaling.errors import ScalingError
from sweep_helpers import TINY_GRID
from sweeps import spec as spec_lib
from sweeps import throughput
from sweeps.planner import make_plan

OVERHEAD_S, RATE, STARTUP_S = 2e-3, 4e9, 3.0  # the fake device


@pytest.fixture
def plan():
    return make_plan(spec_lib.parse_text(TINY_GRID, "tiny.toml", []))


@pytest.fixture
def probes(monkeypatch, tmp_path):
    """Every probe the estimate asks for (the run's label), answered by the fake device."""
    monkeypatch.setenv("SCALING_CACHE", str(tmp_path))
    asked = []

    def probe(run, threads, steps):
        asked.append(run.label)
        return {"seconds_per_step": OVERHEAD_S + throughput.step_flops(run) / RATE, "startup_s": STARTUP_S}

    monkeypatch.setattr(throughput, "_probe", probe)
    return asked


def test_step_flops_is_the_exact_count_per_token_times_the_batch(plan):
    for run in plan.runs:
        t = run.config.train
        per_token = accounting.flops_per_token(run.config.model, t.seq_len)["flops_exact"]
        assert throughput.step_flops(run) == per_token * t.batch_size * t.seq_len


def test_the_two_point_model_recovers_the_devices_overhead_and_rate(plan, probes):
    est = throughput.measure(plan, threads=1)
    assert est.overhead_s == pytest.approx(OVERHEAD_S, rel=1e-6)
    assert est.flops_per_s == pytest.approx(RATE, rel=1e-6)
    assert est.startup_s == STARTUP_S
    by_flops = sorted(plan.runs, key=throughput.step_flops)
    assert probes == [by_flops[0].label, by_flops[-1].label]  # the cheapest and dearest run only


def test_each_run_costs_start_up_train_steps_and_evaluations(plan, probes):
    est = throughput.measure(plan, threads=1)
    assert set(est.seconds) == {run.run_id for run in plan.runs}
    for run in plan.runs:
        t = run.config.train
        train = t.steps * run.work_fraction * (OVERHEAD_S + throughput.step_flops(run) / RATE)
        eval_step = OVERHEAD_S + throughput.step_flops(run) / 3 / t.batch_size * EVAL_BATCH / RATE
        evals = math.ceil(t.steps / t.eval_every) * run.config.data.val_batches * eval_step
        assert est.seconds[run.run_id] == pytest.approx(STARTUP_S + train + evals, rel=1e-9)
    assert est.total(workers=2) == pytest.approx(sum(est.seconds.values()) / 2)
    assert est.total(workers=0) == est.total(workers=1)


def test_measurements_are_cached_per_code_version(plan, probes, tmp_path, monkeypatch):
    throughput.measure(plan, threads=1)
    cached = json.loads((tmp_path / "sweep_throughput.json").read_text())
    assert len(cached) == 2 and len(probes) == 2
    throughput.measure(plan, threads=1)
    assert len(probes) == 2  # reused, not probed again
    monkeypatch.setattr(throughput, "code_version", lambda: "changed")
    throughput.measure(plan, threads=1)
    assert len(probes) == 4  # a step that may have changed speed is measured again


def test_a_failed_probe_names_the_run_and_the_way_out(plan, monkeypatch):
    failed = subprocess.CompletedProcess([], 1, stdout="", stderr="Traceback\nMemoryError: out of memory\n")
    monkeypatch.setattr(throughput.subprocess, "run", lambda *a, **k: failed)
    run = plan.runs[0]
    with pytest.raises(ScalingError, match=re.escape(f"probe of {run.label} failed: MemoryError: out of "
                                                     "memory; use --no-estimate")):
        throughput._probe(run, threads=1, steps=2)


@pytest.mark.parametrize("seconds, shown", [
    (None, "-"), (math.nan, "-"), (math.inf, "-"), (45.4, "45s"), (89.0, "89s"),
    (90.0, "1.5m"), (5399.0, "90.0m"), (5400.0, "1.5h")])
def test_seconds_are_shown_in_the_unit_that_reads_best(seconds, shown):
    assert throughput.format_seconds(seconds) == shown
