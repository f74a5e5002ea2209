import json
import subprocess
import sys

import pytest

from conftest import PROJECT_ROOT, SHARED_DATA, run_cli
from scaling.cli import main

NOTABLE = SHARED_DATA / "epoch__notable_ai_models_2025-05.csv"
HARDWARE = SHARED_DATA / "epoch__ml_hardware_2025-12.csv"
RUPP = SHARED_DATA / "rupp__microprocessor_trend_data_50yrs.csv"
FIGURES = ("trends_exponentials", "doubling_forest", "loss_by_year", "frontier_models")
SCENARIOS = {"hardware_only", "hardware_plus_algorithms", "compute_trend", "compute_plus_algorithms"}


def shared_files():
    missing = [p for p in (NOTABLE, HARDWARE, RUPP) if not p.exists()]
    if missing:
        pytest.skip(f"shared data files absent: {', '.join(map(str, missing))} (see ../shared/data/README.md)")
    return ["--models", str(NOTABLE), "--hardware", str(HARDWARE), "--transistors", str(RUPP)]


def check_outputs(out):
    result = json.loads((out / "moore.json").read_text())
    for key in ("notable_compute", "frontier_lm_compute", "hardware_flops", "hardware_flops_per_dollar", "transistors"):
        value, (lo, hi) = result["doubling_months"][key], result["doubling_months_ci"][key]
        assert isinstance(value, float) and lo <= value <= hi, key
    assert set(result["loss_halving_years"]) == SCENARIOS == set(result["loss_halving_years_ci"])
    for name in FIGURES:
        assert (out / f"{name}.png").stat().st_size > 20_000 and (out / f"{name}.svg").stat().st_size > 20_000
    assert "Moore's law for LLMs" in (out / "summary.md").read_text()
    assert "<table>" in (out / "summary.html").read_text()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging directory left behind
    return result


def test_moore_on_the_shared_data(tmp_path, capsys):
    out = tmp_path / "moore"
    assert main(["moore", *shared_files(), "--out", str(out), "--bootstrap", "200"]) == 0
    result = check_outputs(out)
    assert all(result["series"][k]["source"] == "fit" for k in result["doubling_months"])
    months = result["doubling_months"]
    assert 5.17 <= months["notable_compute"] <= 6.0  # 4-5x per year (Epoch 2024)
    assert 21.6 <= months["transistors"] <= 26.4  # two years (Moore 1975), +-10%
    halving = result["loss_halving_years"]
    assert halving["compute_plus_algorithms"] < halving["compute_trend"] < halving["hardware_only"]
    assert halving["compute_plus_algorithms"] < halving["hardware_plus_algorithms"] < halving["hardware_only"]
    printed = capsys.readouterr().out
    assert "halves every" in printed and str(out) in printed


def test_moore_runs_with_no_files_in_a_fresh_process(tmp_path):
    fit = tmp_path / "fit.json"
    fit.write_text(json.dumps({"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28, "loss": "huber"}))
    out = tmp_path / "moore"
    proc = run_cli("moore", "--fit", str(fit), "--out", str(out), "--bootstrap", "100")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = check_outputs(out)
    assert result["frontier"]["alpha"] == 0.34 and result["series"]["frontier_lm_compute"]["source"] == "builtin"
    assert result["series"]["notable_compute"]["source"] == "published"


@pytest.mark.parametrize("args, message", [
    (["--models", "absent.csv"], "notable-models file not found: absent.csv"),
    (["--fit", "{fit}"], "top-level 'beta' is None"),
    (["--bootstrap", "3"], "--bootstrap 3 is too few"),
    (["--anchor-year", "2025", "--until", "2020"], "--until 2020 must be after"),
])
def test_user_errors_are_one_line_and_write_nothing(tmp_path, capsys, args, message):
    fit = tmp_path / "fit.json"
    fit.write_text(json.dumps({"E": 1.7, "A": 400, "B": 400, "alpha": 0.3}))
    out = tmp_path / "moore"
    code = main(["moore", *[a.replace("{fit}", str(fit)) for a in args], "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_out_must_be_a_directory(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["moore", "--out", str(tmp_path / "file")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_help_lists_moore_and_stays_light():
    code = ("import sys; from scaling.cli import build_parser; p = build_parser(); "
            "print(any(m in sys.modules for m in ('pandas', 'matplotlib', 'analysis.trends.loaders')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stdout + proc.stderr
    with pytest.raises(SystemExit) as exit_info:
        main(["moore", "--help"])
    assert exit_info.value.code == 0
