from conftest import run_cli
from scaling_cli.main import build_parser
from scaling.io import write_json
from sweep_helpers import TINY_GRID
from sweeps import spec as spec_lib
from sweeps import store
from sweeps.planner import make_plan


def test_sweep_subcommands_are_registered():
    parser = build_parser()
    for command in ("plan", "run", "status", "collect"):
        args = parser.parse_args(["sweep", command, "x"] + (["--out", "y"] if command == "run" else []))
        assert callable(args.func)
    args = parser.parse_args(["sweep", "run", "spec.toml", "--out", "d", "--executor", "ray", "--workers", "3",
                              "--retries", "2"])
    assert (args.executor, args.workers, args.retries) == ("ray", 3, 2)


def test_status_and_collect_on_a_sweep_in_progress(tmp_path):
    spec = spec_lib.parse_text(TINY_GRID, "tiny.toml")
    records = [run.record(spec) for run in make_plan(spec).runs]
    store.write_plan(tmp_path, TINY_GRID, "tiny", "tiny.toml", records)
    done, running, failed = records
    write_json(store.run_dir(tmp_path, done["run_id"]) / "summary.json",
               {"status": "completed", "tokens": 5120, "final_val_loss": 3.1, "steps": 20})
    (store.run_dir(tmp_path, running["run_id"]) / "metrics.jsonl").write_text('{"step": 7, "loss": 4.0}\n')
    write_json(store.run_dir(tmp_path, failed["run_id"]) / "summary.json",
               {"status": "failed", "error": "worker exited with code -9: killed"})
    fd = store.try_lock(store.run_dir(tmp_path, running["run_id"]))
    try:
        result = run_cli("sweep", "status", str(tmp_path))
    finally:
        store.release(fd)
    assert result.returncode == 0, result.stderr
    assert "3 runs: 1 completed, 1 failed, 1 running" in result.stdout
    assert f"running     {running['run_id']}" in result.stdout and "step 7/20 (35%)" in result.stdout
    assert "worker exited with code -9: killed" in result.stdout

    result = run_cli("sweep", "collect", str(tmp_path))
    assert result.returncode == 0 and "wrote 2 rows" in result.stdout
    assert (tmp_path / "results.parquet").exists()

    result = run_cli("sweep", "status", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "not a sweep directory" in result.stderr


def test_plan_says_before_it_times_probe_models_and_how_to_skip_it(tmp_path, monkeypatch, capsys):
    from scaling_cli.main import main
    from sweeps import throughput
    from sweeps.throughput import Estimate

    said_before = []

    def fake_measure(plan, threads, steps=5):
        said_before.append(capsys.readouterr().err)
        return Estimate({run.run_id: 90.0 for run in plan.runs}, 1.0, 0.0, 1e9, "fake probe")

    monkeypatch.setattr(throughput, "measure", fake_measure)
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY_GRID)
    assert main(["sweep", "plan", str(spec)]) == 0
    assert len(said_before) == 1 and "timing" in said_before[0] and "--no-estimate skips it" in said_before[0]
    assert "estimated time: 4.5m of training" in capsys.readouterr().out  # 3 runs x 90 s
    assert main(["sweep", "plan", str(spec), "--no-estimate"]) == 0
    assert len(said_before) == 1 and "timing" not in capsys.readouterr().err
