"""prior = "adaptive": the centring rule on losses from a known surface, the spec keys, `sweep plan` for
pending and re-planned budgets, and a tiny adaptive sweep run end to end, then re-run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from scaling.errors import ConfigError
from scaling.io import write_json
from sweep_helpers import run_sweep_cli, write_spec
from sweeps import adaptive, store
from sweeps import spec as spec_lib
from sweeps.planner import make_plan

# L = E + A/N^alpha + B/D^beta with a = beta/(alpha+beta) = 0.4 and C = 6ND.
SURFACE = {"E": 1.7, "A": 400.0, "B": 400.0, "alpha": 0.3, "beta": 0.2}


def true_n_opt(flops: float) -> float:
    p = SURFACE
    G = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
    return G * (flops / 6) ** (p["beta"] / (p["alpha"] + p["beta"]))


def surface_loss(n, flops):
    n = np.asarray(n, float)
    return SURFACE["E"] + SURFACE["A"] / n ** SURFACE["alpha"] + SURFACE["B"] / (flops / (6 * n)) ** SURFACE["beta"]


ISO = """
kind = "isoflop"
[sizes]
aspect_ratio = 16
tolerance = 0.3
[hparams]
lr = 3e-3
lr_base_width = 32
batch_size = 8
[isoflop]
budgets = [2e9, 1e9]
prior = "adaptive"
adaptive_start = "tokens_per_param:0.4"
points = 3
span = 4
tolerance = 0.05
[base.data]
val_batches = 2
[base.train]
seq_len = 32
warmup_steps = 2
eval_every = 20
log_every = 5
peak_flops = 1e11
[base.checkpoint]
every = 100
keep = 1
"""


def test_a_budgets_minimum_is_its_parabola_vertex_when_among_its_sizes():
    n = np.geomspace(1e4, 1e6, 5)
    m = adaptive.budget_minimum(1e15, n, 3.0 + 0.1 * (np.log(n) - np.log(7e4)) ** 2)
    assert m.inside and m.n_opt == pytest.approx(7e4, rel=1e-6) and m.warning == ""


@pytest.mark.parametrize("loss, stand_in", [
    (lambda n: 3.0 + 0.1 * (np.log(n) - np.log(3e3)) ** 2, 1e4),  # vertex below the sizes
    (lambda n: 3.0 - 0.1 * (np.log(n) - np.log(1e5)) ** 2, 1e4),  # opens downwards
])
def test_a_minimum_outside_the_sizes_becomes_the_lowest_loss_size_with_a_warning(loss, stand_in):
    n = np.geomspace(1e4, 1e6, 5)
    m = adaptive.budget_minimum(1e15, n, loss(n))
    assert not m.inside and m.n_opt == pytest.approx(stand_in)
    assert m.warning.startswith("budget 1e+15: its parabola has no minimum among its sizes")


def test_centring_from_finished_budgets_brackets_the_true_optimum():
    """Start 4x off the optimum; each later budget is centred from the finished ones' parabolas."""
    iso = spec_lib.parse_text(ISO.replace("tokens_per_param:0.4", "tokens_per_param:2"), "t.toml").isoflop
    start, budgets, minima = iso.prior, (1e15, 1e16, 1e17, 1e18), []
    assert not 0.25 < start.n_opt(budgets[0]) / true_n_opt(budgets[0]) < 4  # far off: outside a 4x span
    span, points = 16.0, 5
    for i, flops in enumerate(budgets):
        n_opt, how = adaptive.centre(start, minima, flops)
        sizes = n_opt * span ** (np.arange(points) / (points - 1) - 0.5)
        if i > 0:
            assert sizes[0] < true_n_opt(flops) < sizes[-1], how
        if i > 2:  # two true minima: the power law through them, not the start law's exponent
            assert n_opt == pytest.approx(true_n_opt(flops), rel=0.15) and how.startswith("power law")
        minima.append(adaptive.budget_minimum(flops, sizes, surface_loss(sizes, flops)))
    assert not minima[0].inside and all(m.inside for m in minima[1:])


def test_adaptive_spec_keys():
    iso = spec_lib.parse_text(ISO, "t.toml").isoflop
    assert iso.adaptive and iso.prior.text == "adaptive, start tokens_per_param:0.4"
    assert iso.n_opt(1e9) is None  # nothing centred until sweeps.adaptive fills the centres
    default = spec_lib.parse_text(ISO.replace('adaptive_start = "tokens_per_param:0.4"\n', ""), "t.toml")
    assert default.isoflop.prior.text == "adaptive, start tokens_per_param:20"


@pytest.mark.parametrize("change, says", [
    (("points = 3\n", ""), "'isoflop.prior' = 'adaptive' centres each budget's sizes: set isoflop.points"),
    (("budgets = [2e9, 1e9]", "budgets = [{flops = 1e9, n_params = [1e4, 2e4, 3e4]}, 2e9]"),
     "'isoflop.budgets[0].n_params' is fixed, but prior = 'adaptive'"),
    (("tokens_per_param:0.4", "tokens_per_param:-1"), "'isoflop.adaptive_start' needs a positive"),
])
def test_bad_adaptive_keys_are_one_line(change, says):
    with pytest.raises(ConfigError) as err:
        spec_lib.parse_text(ISO.replace(*change), "t.toml")
    assert says in str(err.value) and "\n" not in str(err.value)


def finish_runs(sweep, records, loss_of_n):
    for record in records:
        write_json(store.run_dir(sweep, record["run_id"]) / "summary.json",
                   {"status": "completed", "final_val_loss": loss_of_n(record["n_params"]), "steps": 1})


def first_stage(tmp_path, text: str = ISO, name: str = "adapt"):
    """A sweep directory with the smallest budget planned and its runs made to look finished (no training)."""
    path = write_spec(tmp_path, text, name)
    spec = spec_lib.load(path)
    staged = adaptive.with_centres(spec, adaptive.stages(spec))
    records = [run.record(staged) for run in make_plan(staged).runs]
    sweep = tmp_path / "sweep"
    store.write_plan(sweep, text, name, path, records)
    return path, spec, sweep, records


def test_plan_shows_the_first_budget_and_the_pending_one(tmp_path):
    result = run_sweep_cli("plan", write_spec(tmp_path, ISO, "adapt"), "--no-estimate")
    assert result.returncode == 0, result.stderr
    assert ": 3 runs" in result.stdout and "C=2e+09 N~" not in result.stdout
    assert "C=1e+09: centre N_opt 2.04e+04 (start law tokens_per_param:0.4)" in result.stdout
    assert "C=2e+09: pending: centred once budget 1e+09 finishes" in result.stdout


def test_plan_with_out_replans_from_finished_results_and_writes_nothing(tmp_path):
    path, spec, sweep, records = first_stage(tmp_path)
    sizes = sorted(r["n_params"] for r in records)
    finish_runs(sweep, records, lambda n: 3.0 + 0.2 * (math.log(n) - math.log(sizes[1])) ** 2)
    before = {p: p.read_bytes() for p in sweep.rglob("*") if p.is_file()}
    result = run_sweep_cli("plan", path, "--no-estimate", "--out", str(sweep))
    assert result.returncode == 0, result.stderr
    expected = sizes[1] * 2 ** 0.5  # the start exponent 1/2 through budget 1e9's minimum
    assert f"C=2e+09: centre N_opt {expected:.3g} (start exponent 0.5 through budget 1e+09's minimum" in result.stdout
    assert ": 6 runs" in result.stdout and "C=2e+09 N~" in result.stdout
    assert {p: p.read_bytes() for p in sweep.rglob("*") if p.is_file()} == before


def test_stages_use_the_recorded_centre_whatever_the_results_say(tmp_path):
    path, spec, sweep, records = first_stage(tmp_path)
    finish_runs(sweep, records, lambda n: 3.0 + 0.2 * (math.log(n) - math.log(1.5e4)) ** 2)
    adaptive.record(sweep, adaptive.stages(spec, sweep))
    recorded = adaptive.stages(spec, sweep)[1].n_opt
    finish_runs(sweep, records, lambda n: 3.0 + 0.2 * (math.log(n) - math.log(3e4)) ** 2)  # results change
    assert adaptive.stages(spec, sweep)[1].n_opt == recorded


def test_plan_out_on_a_spec_that_is_not_adaptive_is_refused(tmp_path):
    text = ISO.replace('prior = "adaptive"\nadaptive_start = "tokens_per_param:0.4"', 'prior = "tokens_per_param:0.4"')
    result = run_sweep_cli("plan", write_spec(tmp_path, text, "fixed"), "--no-estimate", "--out", str(tmp_path))
    assert result.returncode == 2 and "is not adaptive" in result.stderr


def test_a_tiny_adaptive_sweep_runs_stage_by_stage_and_a_rerun_trains_nothing(tmp_path):
    path, sweep = write_spec(tmp_path, ISO, "adapt"), tmp_path / "sweep"
    result = run_sweep_cli("run", path, "--out", str(sweep), "--workers", "1", "--quiet", timeout=600)
    assert result.returncode == 0, result.stderr
    stages = json.loads((sweep / adaptive.STATE_FILE).read_text())["stages"]
    assert [s["flops"] for s in stages] == [1e9, 2e9]
    first, second = stages
    assert first["how"].startswith("start law") and len(second["from"]) == 1
    assert second["n_opt"] == pytest.approx(second["from"][0]["n_opt"] * 2 ** 0.5)
    records = store.load_records(sweep)
    assert sorted(r["budget"] for r in records) == [1e9] * 3 + [2e9] * 3
    assert all(store.read_summary(store.run_dir(sweep, r["run_id"]))["status"] == "completed" for r in records)
    again = run_sweep_cli("run", path, "--out", str(sweep), "--workers", "1", timeout=300)
    assert again.returncode == 0, again.stderr
    assert "(6 were already finished)" in again.stdout and "] start " not in again.stderr
    assert json.loads((sweep / adaptive.STATE_FILE).read_text())["stages"] == stages


def test_a_missing_start_fit_names_adaptive_start():
    text = ISO.replace("tokens_per_param:0.4", "fit:/no/such/FIT.json")
    with pytest.raises(ConfigError, match="'isoflop.adaptive_start' fit file /no/such/FIT.json does not exist"):
        spec_lib.parse_text(text, "t.toml")


def test_a_size_with_several_lrs_and_seeds_counts_once_at_its_best_lr_seeds_averaged():
    runs = [(1e4, 1e-3, 3.0), (1e4, 1e-3, 3.2), (1e4, 1e-2, 3.05), (2e4, 1e-3, 2.9), (2e4, 1e-2, 2.5),
            (2e4, 1e-2, 2.7)]
    assert adaptive.best_loss_per_size(runs) == pytest.approx({1e4: 3.05, 2e4: 2.6})


def test_finished_budgets_of_an_lr_list_sweep_give_one_loss_per_size(tmp_path):
    _, _, sweep, records = first_stage(tmp_path, ISO.replace("lr = 3e-3\n", "lr = [3e-3, 1e-2]\n"), "adapt_lr")
    largest_lr = {}
    for record in records:
        largest_lr[record["n_params"]] = max(largest_lr.get(record["n_params"], 0), record["config"]["train"]["lr"])
    for record in records:  # each size's larger lr is 0.5 nats worse
        worse = 0.5 if record["config"]["train"]["lr"] == largest_lr[record["n_params"]] else 0.0
        write_json(store.run_dir(sweep, record["run_id"]) / "summary.json",
                   {"status": "completed", "final_val_loss": 3.0 + 1e-5 * record["n_params"] + worse, "steps": 1})
    sizes, losses = adaptive.finished_budgets(sweep)[1e9]
    assert len(records) == 6 and len(sizes) == 3
    assert losses == pytest.approx([3.0 + 1e-5 * n for n in sizes])
