import json
import subprocess
import sys

import pandas as pd
import pytest

from analysis_helpers import CHINCHILLA_BUDGETS, EPOCH_CSV, chinchilla_surface, need
from scaling_cli.main import main


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
    code = "import sys, scaling_cli.fit; print(any(m in sys.modules for m in ('jax', 'pandas', 'scipy')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.fixture
def degenerate_csv(tmp_path):
    """Two budgets whose sizes all lie far above the optimum: approach 2 keeps them only when asked, and
    then its a is extrapolated; the kept minima make the fit's diagnostics say so."""
    table, _ = chinchilla_surface(budgets=(1e18, 1e19, 1e20), sizes_per_budget=4, width=0.3)
    N = table.N * 30
    D = table.C / (6 * N)
    loss = 1.69 + 406.4 / N ** 0.34 + 410.7 / D ** 0.28
    path = tmp_path / "far.csv"
    pd.DataFrame({"N": N, "D": D, "C": table.C, "loss": loss}).to_csv(path, index=False, float_format="%.17g")
    return path


def test_diagnostics_are_printed_under_the_table_and_strict_exits_3(degenerate_csv, capfd):
    argv = ["fit", str(degenerate_csv), "--method", "isoflop", "--keep-extrapolated"]
    assert main(argv) == 0
    out, err = capfd.readouterr()
    assert "diagnostics:" in out and "[minimum_outside_sizes]" in out and "kept (--keep-extrapolated)" in out
    assert "RuntimeWarning" not in err and "overflow" not in err
    assert main(argv + ["--strict"]) == 0  # warnings only: --strict does not stop
    refused = main(["fit", str(degenerate_csv), "--method", "isoflop"])
    assert refused == 2 and "--keep-extrapolated" in capfd.readouterr().err


def test_strict_exits_3_on_an_invalid_fit(surface_csv, capfd, monkeypatch):
    from analysis import diagnostics
    path, _ = surface_csv
    cols = ["--columns", "N=params,D=tokens,C=flops,loss=val_loss", "--method", "vpnls"]
    real = diagnostics.diagnose
    monkeypatch.setattr(diagnostics, "diagnose", lambda result, table: real(result, table) + (
        diagnostics.diagnostic("test_invalid", diagnostics.INVALID, "made invalid by the test"),))
    assert main(["fit", str(path), *cols]) == 0
    out, err = capfd.readouterr()
    assert "INVALID [test_invalid]" in out and "--strict" in err
    assert main(["fit", str(path), *cols, "--strict"]) == 3
    capfd.readouterr()
    assert main(["fit", str(path), *cols, "--json"]) == 0
    res = json.loads(capfd.readouterr().out)
    assert res["valid"] is False and res["diagnostics"][-1]["code"] == "test_invalid"


def test_several_methods_at_once_and_options_that_fit_none(surface_csv, capfd):
    path, _ = surface_csv
    cols = ["--columns", "N=params,D=tokens,C=flops,loss=val_loss"]
    assert main(["fit", str(path), *cols, "--method", "vpnls,isoflop", "--json"]) == 0
    res = json.loads(capfd.readouterr().out)
    assert [f["method"] for f in res["fits"]] == ["vpnls", "isoflop"] and "diagnostics" in res
    assert main(["fit", str(path), *cols, "--method", "vpnls", "--window", "5"]) == 2
    assert "--window does not apply" in capfd.readouterr().err
    assert main(["fit", str(path), *cols, "--method", "vpnls,isoflop", "--out", "x.json"]) == 2


def test_fit_out_a_directory_is_one_line(surface_csv, tmp_path, capfd):
    path, _ = surface_csv
    assert main(["fit", str(path), "--columns", "N=params,D=tokens,C=flops,loss=val_loss", "--method", "isoflop",
                 "--out", str(tmp_path)]) == 2
    err = capfd.readouterr().err
    assert err.startswith("error: --out") and err.count("\n") == 1


def test_the_cli_names_every_registered_method():
    from scaling_cli.fit import METHOD_NAMES
    from analysis.fitting import METHODS
    assert tuple(METHODS) == METHOD_NAMES
