import json
import subprocess
import sys

import pytest

from conftest import PROJECT_ROOT, SHARED_DATA, run_cli
from scaling_cli.main import main

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
    assert main(["moore", *shared_files(), "--out", str(out), "--bootstrap", "200", "--allow-extrapolation"]) == 0
    result = check_outputs(out)
    assert all(result["series"][k]["source"] == "fit" for k in result["doubling_months"])
    months = result["doubling_months"]
    assert 5.17 <= months["notable_compute"] <= 6.0  # 4-5x per year (Epoch 2024)
    assert 21.6 <= months["transistors"] <= 26.4  # two years (Moore 1975), +-10%
    halving = result["loss_halving_years"]
    assert halving["compute_plus_algorithms"] < halving["compute_trend"] < halving["hardware_only"]
    assert halving["compute_plus_algorithms"] < halving["hardware_plus_algorithms"] < halving["hardware_only"]
    # Effective compute: the frontier-LM trend (about 5x per year) with Ho et al.'s 8 months, about 3.2 months.
    expected = 1 / (1 / months["frontier_lm_compute"] + 1 / 8.0)
    assert result["effective_compute_doubling_months"] == pytest.approx(expected, rel=1e-6)
    assert 2.5 <= result["effective_compute_doubling_months"] <= 4.0
    cost = result["cost_to_fixed_loss"]
    assert cost["cost_halving_months"] < cost["compute_halving_months"] == 8.0
    assert cost["price_performance_series"] == "hardware_flops_per_dollar_tensor16"  # like for like, training format
    assert "orders of magnitude beyond the fit" in result["stamp"]
    printed = capsys.readouterr().out
    assert "halves every" in printed and str(out) in printed


def test_moore_refuses_past_the_guard_and_names_the_flag(tmp_path, capsys):
    out = tmp_path / "moore"
    assert main(["moore", "--out", str(out), "--bootstrap", "20"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "orders of magnitude" in err and "--allow-extrapolation" in err
    assert not out.exists()
    # A limit set high enough runs without the flag, with nothing stamped.
    assert main(["moore", "--out", str(out), "--bootstrap", "20", "--max-extrapolation", "1e20"]) == 0
    assert json.loads((out / "moore.json").read_text())["stamp"] is None


def test_moore_fits_algorithmic_progress_from_a_csv(tmp_path):
    import numpy as np
    import pandas as pd

    year = np.linspace(2014, 2024, 12)
    flop = 1e22 * 2.0 ** (-(year - 2014) * 12 / 9.0)  # halving every 9 months
    pd.DataFrame({"Date": year, "FLOP": flop}).to_csv(tmp_path / "a.csv", index=False)
    out = tmp_path / "moore"
    assert main(["moore", "--out", str(out), "--bootstrap", "50", "--allow-extrapolation", "--algorithmic",
                 str(tmp_path / "a.csv"), "--algorithmic-columns", "date=Date", "compute=FLOP"]) == 0
    algo = json.loads((out / "moore.json").read_text())["algorithmic"]
    assert algo["source"] == "fit" and algo["halving_months"] == pytest.approx(9.0)
    assert len(algo["halving_months_ci"]) == 2


def test_moore_runs_with_no_files_in_a_fresh_process(tmp_path):
    fit = tmp_path / "fit.json"
    fit.write_text(json.dumps({"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28, "loss": "huber"}))
    out = tmp_path / "moore"
    proc = run_cli("moore", "--fit", str(fit), "--out", str(out), "--bootstrap", "100", "--allow-extrapolation")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = check_outputs(out)
    assert result["frontier"]["alpha"] == 0.34 and result["series"]["frontier_lm_compute"]["source"] == "builtin"
    assert result["series"]["notable_compute"]["source"] == "published"
    # No fit_range in the file: how far it extrapolates is unknown, and every output says so.
    assert "unknown distance" in result["stamp"] and not result["frontier"]["in_frontier_units"]
    assert "unknown distance" in (out / "summary.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--models", "absent.csv"], "notable-models file not found: absent.csv"),
    (["--fit", "{fit}"], "top-level 'beta' is None"),
    (["--bootstrap", "3"], "--bootstrap 3 is too few"),
    (["--anchor-year", "2025", "--until", "2020"], "--until 2020 must be after"),
    (["--fit", "{good}"], "records no fit range"),
    (["--max-extrapolation", "0.5"], "--max-extrapolation 0.5 must be at least 1"),
    (["--data-stock-tokens", "-1"], "--data-stock-tokens -1.0 must be a positive"),
    (["--algorithmic-columns", "date=D"], "pass --algorithmic too"),
    (["--algorithmic", "absent.csv"], "--algorithmic file not found: absent.csv"),
    (["--algorithmic", "{fit}"], "lacks column(s) date='date', compute='compute'"),
    (["--algorithmic", "{fit}", "--algorithmic-columns", "date"], "is not ROLE=COLUMN"),
    (["--algorithmic-halving-months", "0"], "must be a positive number of months"),
])
def test_user_errors_are_one_line_and_write_nothing(tmp_path, capsys, args, message):
    fit = tmp_path / "fit.json"
    fit.write_text(json.dumps({"E": 1.7, "A": 400, "B": 400, "alpha": 0.3}))
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"E": 1.7, "A": 400, "B": 400, "alpha": 0.3, "beta": 0.3}))
    out = tmp_path / "moore"
    args = [a.replace("{fit}", str(fit)).replace("{good}", str(good)) for a in args]
    code = main(["moore", *args, "--bootstrap", "20", "--out", str(out)] if "--bootstrap" not in args else
                ["moore", *args, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_out_must_be_a_directory(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["moore", "--out", str(tmp_path / "file")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_help_lists_moore_and_stays_light():
    code = ("import sys; from scaling_cli.main import build_parser; p = build_parser(); "
            "print(any(m in sys.modules for m in ('pandas', 'matplotlib', 'analysis.trends.loaders')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stdout + proc.stderr
    with pytest.raises(SystemExit) as exit_info:
        main(["moore", "--help"])
    assert exit_info.value.code == 0
