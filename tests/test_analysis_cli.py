import json
import subprocess
import sys

import pandas as pd
import pytest

from analysis_helpers import CHINCHILLA_BUDGETS, EPOCH_CSV, chinchilla_surface, need
from scaling.cli import main


@pytest.fixture
def surface_csv(tmp_path):
    """A noise-free Chinchilla surface as a CSV with its own column names."""
    table, truth = chinchilla_surface(alpha=0.34, beta=0.28)
    path = tmp_path / "runs.csv"
    pd.DataFrame({"params": table.N, "tokens": table.D, "flops": table.C, "val_loss": table.loss}).to_csv(
        path, index=False, float_format="%.17g")
    return path, truth


def _json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_fit_parametric_json_with_bootstrap_and_allocate(surface_csv, tmp_path, capsys):
    path, truth = surface_csv
    out = tmp_path / "fit.json"
    cols = ["--columns", "N=params,D=tokens", "--columns", "C=flops,loss=val_loss"]
    res = _json(capsys, "fit", str(path), *cols, "--bootstrap", "20", "--json", "--out", str(out))
    for key in ("E", "A", "B", "alpha", "beta", "a", "b"):
        assert key in res
    assert res["alpha"] == pytest.approx(truth["alpha"], rel=1e-4)
    assert res["intervals"]["alpha"][0] <= res["alpha"] <= res["intervals"]["alpha"][1]
    assert res["spec"]["init_grid"]["n_starts"] == 4500 and res["spec"]["delta"] == 1e-3
    alloc = _json(capsys, "allocate", "--fit", str(out), "--budget", "1e18", "--json")
    assert alloc["N_opt"] * alloc["D_opt"] * 6 == pytest.approx(1e18)
    assert "N_opt" in alloc["intervals"]
    assert main(["allocate", "--fit", str(out), "--budget", "1e18"]) == 0
    text = capsys.readouterr().out
    assert "N_opt" in text and "shape" in text


def test_fit_isoflop_on_epoch_data_prints_a_table_and_json(capsys):
    csv = str(need(EPOCH_CSV))
    budgets = ",".join(f"{b:g}" for b in CHINCHILLA_BUDGETS)
    args = ["fit", csv, "--columns", "N=Model Size,C=Training FLOP", "--method", "isoflop", "--budgets", budgets]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "isoflop fit" in text and "D derived as C/(6N)" in text
    res = _json(capsys, *args, "--json")
    assert res["a"] == pytest.approx(0.50, abs=0.03) and "b" in res


def test_user_errors_are_one_line_and_write_nothing(tmp_path, capsys):
    csv = str(need(EPOCH_CSV))
    out = tmp_path / "fit.json"
    assert main(["fit", csv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--columns" in err and err.count("\n") == 1
    assert not out.exists()
    assert main(["fit", csv, "--columns", "N"]) == 2
    assert "expected NAME=COLUMN" in capsys.readouterr().err
    assert main(["allocate", "--fit", str(out), "--budget", "1e21"]) == 2
    assert "no such fit file" in capsys.readouterr().err


def test_importing_the_cli_module_stays_light():
    code = "import sys, analysis.cli; print(any(m in sys.modules for m in ('jax', 'pandas', 'scipy')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
