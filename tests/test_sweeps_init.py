"""sweeps.plan/run/collect, the Python API of `scaling sweep`: the same plans, results and errors as the
command line; the notebook display of plans and results; the compute-based progress display."""

import io
import subprocess
import sys
import time

import pandas as pd
import pytest

import sweeps
from conftest import PROJECT_ROOT
from scaling.errors import ConfigError
from scaling.io import write_json
from scaling_cli.main import main
from sweep_helpers import TINY_GRID, write_spec
from sweeps import spec as spec_lib
from sweeps import store
from sweeps.planner import make_plan
from sweeps.throughput import Estimate

ONE_SHORT_RUN = TINY_GRID.replace("n_params = [2.06e4, 3.3e4, 4.5e4]", "n_params = [2.06e4]") \
    .replace("tokens = [5120]", "tokens = [2560]")


def test_plan_has_the_clis_runs_and_shows_as_a_table(tmp_path, capsys):
    spec = write_spec(tmp_path, TINY_GRID)
    planned = sweeps.plan(spec, "base.train.seed=3", estimate=False)  # one override alone, or a list of them
    assert main(["sweep", "plan", spec, "--set", "base.train.seed=3", "--no-estimate"]) == 0
    printed = capsys.readouterr()
    assert "timing" not in printed.err  # no probe, no notice
    frame = planned.to_frame()
    assert len(frame) == 3 and frame.run_id.is_unique
    for row in frame.itertuples():
        assert f"{row.run_id} run " in printed.out and f"{row.flops_exact:.3g}" in printed.out
    assert frame.tokens_per_param.tolist() == pytest.approx((frame.tokens / frame.n_params).tolist())
    shown = planned._repr_html_()
    assert shown.count("</tr>") == 1 + len(frame)  # the header row, then one row per run
    assert all(run_id in shown for run_id in frame.run_id) and "array(" not in shown
    assert "3 runs" in repr(planned) and "est_seconds" not in frame


def test_plan_says_it_times_probe_models_before_it_does(tmp_path, monkeypatch, capsys):
    from sweeps import throughput

    said_before = []

    def fake_measure(plan, threads, steps=5):
        said_before.append("--no-estimate skips it" in capsys.readouterr().err)
        return Estimate({run.run_id: 10.0 * i for i, run in enumerate(plan.runs)}, 1.0, 0.0, 1e9, "fake")

    monkeypatch.setattr(throughput, "measure", fake_measure)
    planned = sweeps.plan(write_spec(tmp_path, TINY_GRID))
    assert said_before == [True]
    assert planned.to_frame().est_seconds.tolist() == [10.0 * i for i in range(3)]
    assert "est_seconds" in planned._repr_html_()


def test_a_sweep_run_from_python_is_the_clis_sweep(tmp_path, capsys):
    spec, out = write_spec(tmp_path, ONE_SHORT_RUN), tmp_path / "sweep"
    result = sweeps.run(spec, out, workers=1, quiet=False)
    flops = sweeps.plan(spec, estimate=False).plan.total_flops()
    ended = [line for line in capsys.readouterr().err.splitlines() if "] completed " in line]
    assert len(ended) == 1 and ended[0].endswith(f"{flops:.2g} of {flops:.2g} FLOPs (100%), ETA 0s"), ended
    assert result.counts == {"completed": 1} and result.skipped == 0 and not result.failures and not result.stopped
    assert result.n_rows == 1 and result.results_path == out / "results.parquet"
    runs = result.to_frame()
    assert runs.status.tolist() == ["completed"] and runs.step.tolist() == runs.steps.tolist()
    assert "completed" in result._repr_html_() and runs.run_id[0] in result._repr_html_()
    results = sweeps.collect(out)
    assert results.attrs["path"] == out / "results.parquet" and results.attrs["warnings"] == []
    capsys.readouterr()
    # The command line finds the same sweep finished and collects the same table.
    assert main(["sweep", "run", spec, "--out", str(out), "--quiet"]) == 0
    assert "1 completed (1 were already finished)" in capsys.readouterr().out
    assert main(["sweep", "collect", str(out), "--out", str(tmp_path / "cli.parquet")]) == 0
    pd.testing.assert_frame_equal(results, pd.read_parquet(tmp_path / "cli.parquet"), check_like=True)
    assert results.run_id.tolist() == runs.run_id.tolist() and results.status.tolist() == ["completed"]


def _file_out(tmp):
    (tmp / "file.txt").write_text("mine")
    return tmp / "file.txt", {}, []


BAD_RUNS = {  # case: setup(tmp) -> (out, the API's keywords, the CLI's flags)
    "workers 0": lambda tmp: (tmp / "new", {"workers": 0}, ["--workers", "0"]),
    "threads 0": lambda tmp: (tmp / "new", {"threads": 0}, ["--threads", "0"]),
    "retries -1": lambda tmp: (tmp / "new", {"retries": -1}, ["--retries", "-1"]),
    "out is a file": _file_out,
    "slurm flag without slurm": lambda tmp: (tmp / "new", {"slurm": {"partition": "debug"}},
                                             ["--slurm-partition", "debug"]),
    "pack on slurm": lambda tmp: (tmp / "new", {"executor": "slurm", "pack": True}, ["--executor", "slurm", "--pack"]),
    "bad override": lambda tmp: (tmp / "new", {"overrides": ["hparams.lr=-1"]}, ["--set", "hparams.lr=-1"]),
}


@pytest.mark.parametrize("case", BAD_RUNS)
def test_bad_run_input_raises_the_error_the_cli_prints_and_writes_nothing(case, tmp_path, capsys):
    spec = write_spec(tmp_path, TINY_GRID)
    work = tmp_path / "work"
    work.mkdir()
    out, keywords, flags = BAD_RUNS[case](work)
    before = sorted(work.rglob("*"))
    with pytest.raises(ConfigError) as raised:
        sweeps.run(spec, out, **keywords)
    assert main(["sweep", "run", spec, "--out", str(out), *flags]) == 2
    assert capsys.readouterr().err == f"error: {raised.value}\n"
    assert sorted(work.rglob("*")) == before


def test_api_only_mistakes_are_one_clear_error(tmp_path):
    spec = write_spec(tmp_path, TINY_GRID)
    with pytest.raises(ConfigError, match="--executor cloud: choose one of local, ray, slurm"):
        sweeps.run(spec, tmp_path / "new", executor="cloud")
    with pytest.raises(ConfigError, match="slurm option 'partitions' is not one of partition"):
        sweeps.run(spec, tmp_path / "new", executor="slurm", slurm={"partitions": "gpu"})
    with pytest.raises(ConfigError, match="sweep spec not found"):
        sweeps.plan(tmp_path / "missing.toml", estimate=False)
    with pytest.raises(ConfigError, match="spec must be a sweep spec file's path, got dict"):
        sweeps.run({"kind": "grid"}, tmp_path / "new")
    assert not (tmp_path / "new").exists()


def _planned_sweep(tmp_path):
    spec = spec_lib.parse_text(TINY_GRID, "tiny.toml")
    records = [run.record(spec) for run in make_plan(spec).runs]
    store.write_plan(tmp_path, TINY_GRID, "tiny", "tiny.toml", records)
    return records


def test_the_display_counts_compute_done_of_total_with_an_eta(tmp_path):
    finished, running, _ = records = _planned_sweep(tmp_path)
    write_json(store.run_dir(tmp_path, finished["run_id"]) / "summary.json", {"status": "completed"})
    display = sweeps.Display(tmp_path, records, enabled=True)
    total = sum(r["flops_exact"] for r in records)
    assert display.total == pytest.approx(total)
    assert display.work() == pytest.approx(finished["flops_exact"])  # done before: not this sweep's rate
    assert "ETA -" in display.compute_text()
    display("start", running, None)
    time.sleep(0.01)
    (store.run_dir(tmp_path, running["run_id"]) / "metrics.jsonl").write_text('{"step": 10, "loss": 4.0}\n')
    display("tick", None, None)
    done = finished["flops_exact"] + running["flops_exact"] / 2  # step 10 of 20
    assert display.work() == pytest.approx(done)
    text = display.compute_text()
    assert text.startswith(f"{done:.2g} of {total:.2g} FLOPs ({100 * done / total:.0f}%), ETA ")
    assert "ETA -" not in text
    display("completed", running, None)
    assert display.work() == pytest.approx(finished["flops_exact"] + running["flops_exact"])


class ZeroWidthTerminal(io.StringIO):
    """A terminal that reports no size (some CI ptys, `docker exec` without one): no file descriptor to ask."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("columns", ["", "100"])
def test_a_terminal_of_zero_width_gets_lines_or_a_bar_at_columns_never_nothing(columns, tmp_path, monkeypatch):
    records = _planned_sweep(tmp_path)
    stream = ZeroWidthTerminal()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setenv("COLUMNS", columns)
    display = sweeps.Display(tmp_path, records, enabled=True)
    display("start", records[0], None)
    display("tick", None, None)
    display("completed", records[0], None)
    display.close()
    shown = stream.getvalue()
    assert f"completed {records[0]['run_id']}" in shown and f"of {display.total:.2g} FLOPs" in shown
    assert (f"| {records[0]['run_id'][:6]} 0/20" in shown) == bool(columns)  # the bar, at $COLUMNS, with the run's step


def test_a_branch_counts_only_the_steps_after_its_branch_point():
    record = {"flops_exact": 100.0, "branch_step": 15, "config": {"train": {"steps": 20}}}
    assert sweeps.run_work(record) == pytest.approx(25.0)
    assert sweeps.work_done(record, 10) == 0 and sweeps.work_done(record, 15) == 0
    assert sweeps.work_done(record, 20) == pytest.approx(sweeps.run_work(record))


def test_the_eta_is_the_compute_left_at_the_rate_so_far():
    from sweeps.throughput import format_seconds

    text = sweeps.progress_text(3.1e12, 7.7e12, rate=(7.7e12 - 3.1e12) / 180)
    assert text == f"3.1e+12 of 7.7e+12 FLOPs (40%), ETA {format_seconds(180)}"
    assert sweeps.progress_text(0, 7.7e12, rate=None).endswith("ETA -")


def test_importing_sweeps_imports_neither_jax_nor_pandas():
    code = "import sys, sweeps; print(sorted(m for m in ('jax', 'pandas', 'numpy') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
