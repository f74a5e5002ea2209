import dataclasses
import math

import pytest

from conftest import run_cli
from scaling import tracking
from scaling.config import config_hash
from scaling.errors import ConfigError
from scaling.schedules import make_schedule
from sweep_helpers import TINY_WSD, write_spec
from sweeps import spec as spec_lib
from sweeps.planner import make_plan

ISOFLOP = """
kind = "isoflop"
[sizes]
n_params = [2.06e4, 3.3e4, 6.8e4]
aspect_ratio = 16
[hparams]
lr = 4e-3
lr_base_width = 32
warmup_fraction = 0.1
batch_size = 8
[isoflop]
budgets = [2e10, 6e10]
formula = "FORMULA"
[base.train]
seq_len = 32
"""


def plan_of(text: str, overrides=()):
    return make_plan(spec_lib.parse_text(text, "test.toml", list(overrides)))


@pytest.mark.parametrize("formula", ["flops_exact", "flops_6nd", "flops_6nd_nonembed"])
def test_isoflop_runs_match_each_budget_within_tolerance(formula):
    plan = plan_of(ISOFLOP.replace("FORMULA", formula))
    assert len(plan.runs) == 6
    for run in plan.runs:
        assert abs(run.flops[formula] - run.budget) / run.budget <= 0.01
        assert run.tokens == run.steps * 8 * 32
        assert run.config.model.vocab_size == 256 and run.config.model.dtype == "float32"
    budgets = sorted({run.budget for run in plan.runs})
    assert budgets == [2e10, 6e10]
    assert math.isclose(plan.total_flops(formula), sum(r.flops[formula] for r in plan.runs))


def test_hyperparameter_rule_is_recorded_in_each_config():
    plan = plan_of(ISOFLOP.replace("FORMULA", "flops_exact"))
    for run in plan.runs:
        m, t = run.config.model, run.config.train
        assert t.lr == pytest.approx(4e-3 * 32 / m.d_model, rel=1e-5)
        assert t.warmup_steps == round(0.1 * t.steps)
        assert t.batch_size == 8 and t.tokens is None
        assert run.run_id == config_hash(run.config)
    widths = {run.config.model.d_model for run in plan.runs}
    assert widths == {32, 48}


def test_run_ids_are_the_ids_train_computes():
    from scaling.data import prepare_dataset
    from scaling.config import resolve

    plan = plan_of(ISOFLOP.replace("FORMULA", "flops_exact"))
    run = plan.runs[0]
    ds = prepare_dataset(run.config.data, run.config.train.seq_len, run.config.model.vocab_size)
    assert config_hash(resolve(run.config, ds.vocab_size)) == run.run_id


def test_budget_too_small_for_a_size_fails_naming_the_budget():
    with pytest.raises(ConfigError, match=r"'isoflop.budgets\[0\]' = 1e\+08 is too small for sizes.n_params\[\d\]"):
        plan_of(ISOFLOP.replace("FORMULA", "flops_exact").replace("[2e10, 6e10]", "[1e8, 6e10]"))


def test_unbuildable_size_fails_naming_the_size():
    with pytest.raises(ConfigError, match=r"'sizes.n_params\[0\]' = 100 cannot be built"):
        plan_of(ISOFLOP.replace("FORMULA", "flops_exact").replace("[2.06e4, 3.3e4, 6.8e4]", "[100, 3.3e4]"))


def test_tokens_per_param_window_drops_sizes_and_an_empty_budget_is_an_error():
    text = ISOFLOP.replace("FORMULA", "flops_exact").replace('formula =', 'tokens_per_param = [5, 40]\nformula =')
    plan = plan_of(text)
    for run in plan.runs:
        assert 5 <= run.tokens / run.counts["n_params"] <= 40
    assert any("skipped" in note for note in plan.notes)
    with pytest.raises(ConfigError, match=r"'isoflop.budgets\[0\]' = 2e\+10 keeps no size"):
        plan_of(text.replace("[5, 40]", "[1000, 2000]"))


def test_grid_in_tokens_per_param():
    plan = plan_of('kind = "grid"\n[sizes]\nn_params = [3.3e4]\naspect_ratio = 16\n[grid]\n'
                   'tokens_per_param = [1, 2]\n[base.train]\nseq_len = 32\nbatch_size = 8\n')
    assert [run.steps for run in plan.runs] == [round(r * 32928 / 256) for r in (1, 2)]
    assert all(run.budget is None and run.role == "run" for run in plan.runs)


def test_wsd_branches_share_the_parent_schedule_up_to_their_branch_point():
    plan = plan_of(TINY_WSD)
    parent, *branches = plan.runs
    assert parent.role == "parent" and [b.role for b in branches] == ["branch", "branch"]
    assert [b.steps for b in branches] == [16, 24]
    assert [b.branch_step for b in branches] == [13, 19]  # 16 - round(0.2 * 16), 24 - round(0.2 * 24)
    assert parent.keep_steps == (13, 19) and parent.steps == 19
    parent_lr = make_schedule(parent.config.train)
    for branch in branches:
        assert branch.parent_run_id == parent.run_id
        assert branch.branch_tokens == branch.branch_step * 8 * 32
        branch_lr = make_schedule(branch.config.train)
        for step in range(branch.branch_step + 1):
            assert float(branch_lr(step)) == pytest.approx(float(parent_lr(step)), rel=1e-6), step
        assert float(branch_lr(branch.steps - 1)) < 0.2 * float(parent_lr(branch.steps - 1))
        assert dataclasses.replace(branch.config.train, steps=parent.steps, decay_fraction=0.0) \
            == parent.config.train
    # The sweep spends each branch's cooldown only: the stable steps are the parent's.
    assert plan.total_flops() == pytest.approx(parent.flops["flops_exact"] + sum(
        b.flops["flops_exact"] * (b.steps - b.branch_step) / b.steps for b in branches))


def test_wsd_warmup_longer_than_a_stable_phase_is_refused():
    with pytest.raises(ConfigError, match="wsd.branch_tokens"):
        plan_of(TINY_WSD.replace("warmup_steps = 2", "warmup_steps = 14"))


def test_plan_cli_prints_the_table_and_fails_on_bad_specs_before_training(tmp_path):
    good = write_spec(tmp_path, ISOFLOP.replace("FORMULA", "flops_exact"), "good")
    result = run_cli("sweep", "plan", good, "--no-estimate")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "6 runs" in result.stdout and "total compute: C_exact" in result.stdout
    for column in ("run_id", "N_nonemb", "D/N", "C_6ND", "C_exact"):
        assert column in result.stdout
    bad = write_spec(tmp_path, ISOFLOP.replace("FORMULA", "flops_exact").replace("[2e10, 6e10]", "[1e8]"), "bad")
    result = run_cli("sweep", "plan", bad, "--no-estimate")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "isoflop.budgets[0]" in result.stderr and "bad.toml" in result.stderr
    result = run_cli("sweep", "run", bad, "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and not (tmp_path / "out").exists()


CENTRED = """
kind = "isoflop"
[sizes]
aspect_ratio = 16
[hparams]
lr = 4e-3
lr_base_width = 32
batch_size = 8
[isoflop]
budgets = [1e11, 1e12]
points = 5
span = 8
prior = "tokens_per_param:10"
[base.train]
seq_len = 32
"""


def test_centred_sizes_sit_around_the_predicted_optimum_after_the_shape_chooser():
    plan = plan_of(CENTRED)
    assert len(plan.runs) == 10 and [b.flops for b in plan.budgets] == [1e11, 1e12]
    step = 8 ** (1 / 4)
    for budget in plan.budgets:
        n_opt = math.sqrt(budget.flops / 60)
        assert budget.n_opt == pytest.approx(n_opt) and budget.centred
        runs = sorted((r for r in plan.runs if r.budget == budget.flops), key=lambda r: r.target_n)
        sizes = [r.counts["n_params"] for r in runs]
        assert tuple(sizes) == budget.sizes
        # Each shape is within a quarter step of its target, so the centre is the optimum to the rounding.
        for run, target in zip(runs, spec_lib.parse_text(CENTRED, "t.toml").isoflop.centred_sizes(budget.flops)):
            assert run.target_n == pytest.approx(target)
            assert abs(math.log(run.counts["n_params"] / target)) <= math.log(step) / 4 + 1e-9
        assert math.prod(sizes) ** (1 / 5) == pytest.approx(n_opt, rel=0.15)
        assert all(1.2 < b / a < 2.4 for a, b in zip(sizes, sizes[1:]))  # log-uniform to the rounding
        assert budget.position() == "optimum at position 3 of 5" and not budget.outside()
        for run in runs:  # matched to the budget like any listed size
            assert abs(run.flops["flops_exact"] - budget.flops) / budget.flops <= 0.01


def test_position_of_the_optimum_among_the_sizes():
    from sweeps.planner import BudgetSizes

    sizes = (1e4, 2e4, 4e4, 8e4)
    assert BudgetSizes(1e11, 2.1e4, sizes, False).position() == "optimum at position 2 of 4"
    assert BudgetSizes(1e11, 2.9e4, sizes, False).position() == "optimum between positions 2 and 3 of 4"
    below = BudgetSizes(1e11, 2.5e3, sizes, False)
    assert below.outside() and below.position() == "below the smallest size (1e+04) by 4x"
    above = BudgetSizes(1e11, 2.4e5, sizes, False)
    assert above.outside() and above.position() == "above the largest size (8e+04) by 3x"
    assert above.describe() == ("C=1e+11: predicted N_opt 2.4e+05; listed sizes 1e+04 .. 8e+04 (4), "
                                "above the largest size (8e+04) by 3x")


def test_a_prior_beside_listed_sizes_warns_when_the_optimum_is_outside_them():
    text = ISOFLOP.replace("FORMULA", "flops_exact").replace("[isoflop]", '[isoflop]\nprior = "tokens_per_param:1"')
    plan = plan_of(text)
    assert len(plan.runs) == 6 and all(not b.centred for b in plan.budgets)
    assert [b.sizes for b in plan.budgets] == [tuple(sorted({r.counts["n_params"] for r in plan.runs}))] * 2
    outside = [note for note in plan.notes if "extrapolated" in note]
    assert outside and all("above the largest size" in note for note in outside)
    assert "isoflop.budgets[1]" in outside[-1]
    assert not any("extrapolated" in note for note in plan_of(text.replace(":1\"", ":5\"")).notes)


def test_a_fit_prior_in_another_convention_is_noted(tmp_path):
    import json

    fit = tmp_path / "FIT.json"
    fit.write_text(json.dumps({"schema": "scaling.fit/1", "params": {"k_N": 0.1, "a": 0.5},
                               "spec": {"form": "power_law", "n_convention": "nonembedding", "flops": "flops_6nd"}}))
    plan = plan_of(CENTRED.replace("tokens_per_param:10", f"fit:{fit}"))
    assert plan.budgets[0].n_opt == pytest.approx(0.1 * 1e11 ** 0.5)
    assert any("nonembedding" in note for note in plan.notes)
    assert any("flops_6nd" in note and "flops_exact" in note for note in plan.notes)


def test_a_centred_size_out_of_reach_names_the_points_key():
    wanted = r"'isoflop.points' \(budget 0, centred size 1 of 5\) = [\d.e+]+ cannot be built"
    with pytest.raises(ConfigError, match=wanted):
        plan_of(CENTRED.replace("[1e11, 1e12]", "[1e9, 1e12]"))


def test_plan_cli_shows_each_budgets_predicted_optimum(tmp_path):
    result = run_cli("sweep", "plan", write_spec(tmp_path, CENTRED, "centred"), "--no-estimate")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "10 runs" in result.stdout
    assert "predicted optimum per budget (isoflop.prior tokens_per_param:10):" in result.stdout
    assert "C=1e+11: predicted N_opt 4.08e+04; centred sizes" in result.stdout
    assert result.stdout.count("optimum at position 3 of 5") == 2


def _iso(hparams: str) -> str:
    return ISOFLOP.replace("FORMULA", "flops_exact").replace("lr = 4e-3\n", hparams + "\n")


def test_list_hparams_train_their_product_at_every_point_with_the_rule_applied():
    plan = plan_of(_iso("lr = [2e-3, 4e-3]\nseed = [0, 1]\nweight_decay = [0.0, 0.1]"))
    assert len(plan.runs) == 6 * 8 and len({run.run_id for run in plan.runs}) == 48
    for run in plan.runs:
        t = run.config.train
        spec_lr, seed, wd = run.label.split(" ")[-3:]
        assert t.lr == pytest.approx(float(spec_lr[3:]) * 32 / run.config.model.d_model, rel=1e-5)
        assert (t.seed, t.weight_decay) == (int(seed[5:]), float(wd[13:]))
        assert run.run_id == config_hash(run.config)
    per_point = {}
    for run in plan.runs:
        per_point.setdefault((run.budget, run.target_n), set()).add((run.config.train.lr, run.config.train.seed,
                                                                     run.config.train.weight_decay))
    assert len(per_point) == 6 and all(len(combos) == 8 for combos in per_point.values())


def test_a_scalar_spec_keeps_its_ids_and_labels_and_list_runs_only_gain_a_suffix():
    scalar = plan_of(_iso("lr = 4e-3"))
    listed = plan_of(_iso("lr = [4e-3, 8e-3]"))
    assert all(" lr=" not in run.label for run in scalar.runs)
    by_label = {run.label: run.run_id for run in listed.runs}
    for run in scalar.runs:  # the lr = 4e-3 runs of the list spec are the very same runs
        assert by_label[run.label + " lr=0.004"] == run.run_id
    assert len(listed.runs) == 2 * len(scalar.runs)


def test_lr_multiplier_scales_the_per_size_rule():
    base = {run.label: run.config.train.lr for run in plan_of(_iso("lr = 4e-3")).runs}
    for run in plan_of(_iso("lr = 4e-3\nlr_multiplier = [0.5, 2]")).runs:
        label, multiplier = run.label.rsplit(" lr_multiplier=", 1)
        assert run.config.train.lr == pytest.approx(base[label] * float(multiplier), rel=1e-5)


def test_a_batch_size_list_keeps_every_run_on_its_budget():
    plan = plan_of(_iso("lr = 4e-3").replace("batch_size = 8", "batch_size = [4, 8]"))
    assert len(plan.runs) == 12
    for run in plan.runs:
        assert run.config.train.batch_size == int(run.label.rsplit("=", 1)[1])
        assert abs(run.flops["flops_exact"] - run.budget) / run.budget <= 0.01
    steps = {(r.budget, r.target_n, r.config.train.batch_size): r.steps for r in plan.runs}
    for (budget, target, batch), n in steps.items():
        if batch == 4:  # half the batch, twice the steps: the same tokens
            assert abs(n - 2 * steps[(budget, target, 8)]) <= 1


def test_grid_lists_keep_tokens_per_run():
    text = ('kind = "grid"\n[sizes]\nn_params = [3.3e4]\naspect_ratio = 16\n[hparams]\nbatch_size = [4, 8]\n'
            'seed = [0, 1]\n[grid]\ntokens = [8192]\n[base.train]\nseq_len = 32\n')
    plan = plan_of(text)
    assert len(plan.runs) == 4 and {run.tokens for run in plan.runs} == {8192}
    combos = {(run.config.train.batch_size, run.config.train.seed) for run in plan.runs}
    assert combos == {(4, 0), (4, 1), (8, 0), (8, 1)}


def test_wsd_lists_give_each_point_its_own_stable_run_whose_branches_inherit_it():
    plan = plan_of(TINY_WSD.replace("lr = 3e-3", "lr = [3e-3, 6e-3]"))
    parents = [run for run in plan.runs if run.role == "parent"]
    branches = [run for run in plan.runs if run.role == "branch"]
    assert len(parents) == 2 and len(branches) == 4
    by_id = {run.run_id: run for run in parents}
    for branch in branches:
        parent = by_id[branch.parent_run_id]
        assert parent.config.train.lr == branch.config.train.lr
        assert parent.label.endswith(branch.label.rsplit(" ", 1)[1])  # the same " lr=..." suffix
        assert dataclasses.replace(branch.config.train, steps=parent.steps, decay_fraction=0.0) \
            == parent.config.train


def test_format_plan_lists_every_run_of_a_list_spec_with_its_axes():
    from sweeps.cli import format_plan

    plan = plan_of(_iso("lr = [2e-3, 4e-3]\nseed = [0, 1]"))
    text = format_plan(plan)
    assert "hyperparameter axes: lr [0.002, 0.004] x seed [0, 1] = 4 runs per point" in text
    for run in plan.runs:
        assert f"{run.run_id:12} {run.role:6} {run.label} " in text  # the whole label, suffix included
    assert "hyperparameter axes" not in format_plan(plan_of(_iso("lr = 4e-3")))


def test_tracking_keys_the_sweep_sets_per_run_are_refused_in_base_and_ids_ignore_tracking(monkeypatch):
    tracked = make_plan(spec_lib.parse_text(ISOFLOP.replace("FORMULA", "flops_exact") +
                                            "[base.log]\ntensorboard = true\ngroup = \"mine\"\n", "t.toml"))
    plain = make_plan(spec_lib.parse_text(ISOFLOP.replace("FORMULA", "flops_exact"), "p.toml"))
    assert [r.run_id for r in tracked.runs] == [r.run_id for r in plain.runs]
    assert all(r.config.log.tensorboard and r.config.log.group == "mine" for r in tracked.runs)
    for key, value in (("name", '"x"'), ("tensorboard_dir", '"tb"')):
        text = ISOFLOP.replace("FORMULA", "flops_exact") + f"[base.log]\n{key} = {value}\n"
        with pytest.raises(ConfigError, match=rf"t.toml: key 'base.log.{key}' is set per run by the sweep"):
            make_plan(spec_lib.parse_text(text, "t.toml"))
    monkeypatch.setitem(tracking.PACKAGES, "tensorboard", ("no_such_module_for_tracking", "tensorboard"))
    with pytest.raises(ConfigError, match=r"pip install '\.\[tensorboard\]'"):
        make_plan(spec_lib.parse_text(ISOFLOP.replace("FORMULA", "flops_exact") + "[base.log]\ntensorboard = true\n",
                                      "t.toml"))
