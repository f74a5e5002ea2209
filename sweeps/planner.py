"""From a spec to the list of runs: shapes, per-size hyperparameters, budget matching, WSD branches.

Every planned run carries its fully resolved RunConfig; its id is that config's hash, the same id
`scaling.training.train` computes, so a run directory is found again whatever process plans it.

Hyperparameter rule (recorded in each run's config):
  lr      = hparams.lr * hparams.lr_multiplier * (hparams.lr_base_width / d_model) ** hparams.lr_width_exponent
            (no width scaling when lr_base_width is unset; Adam's optimal lr falls roughly as 1/width)
  warmup  = round(hparams.warmup_fraction * steps)  (WSD: of the shortest branch, shared by all branches)
  batch   = hparams.batch_size, the same for every size so that D is counted in the same units
  weight_decay, seed as given (else base.train's)

List axes: an [hparams] key given as a list multiplies the runs: every (size, budget) point is trained
once per element of the lists' product (spec.HParams.points). Each run's steps come from its own batch
size, so a batch-size list keeps every run on its FLOP or token budget. The run id is still the config's
hash; the label gains the list axes only (" lr=0.001 seed=1"), so a spec without lists plans the same
ids and labels as before. WSD: a branch inherits its parent's state up to the branch point, so each
hyperparameter point has its own stable run and branches.

Centred sizes (isoflop with points): per budget, `points` targets log-spaced over `span` (largest /
smallest) with geometric mean N_opt(C) from isoflop.prior; the shape chooser then rounds each target
as it rounds a listed size, accepting a shape up to a quarter of a spacing step away (or sizes.tolerance
if wider), since tiny models have a coarse grid of shapes. With a prior beside listed sizes, the plan
says where N_opt falls among them. With prior = "adaptive" only the budgets whose centre is known
(isoflop.centres, filled in by sweeps.adaptive from finished budgets) are planned; the rest are pending.

Budget matching (isoflop): steps = round(C / (flops_per_token * batch_size * seq_len)) under the
spec's formula; the realised C must lie within isoflop.tolerance (1%) of the budget.

WSD: per size, one stable-phase run ("parent": warmup then constant lr, i.e. the wsd schedule with no
decay) checkpoints at each branch point b and keeps those checkpoints; each branch is a wsd run of
T steps whose cooldown covers the last round(decay_fraction * T) steps, so b = T - that, and up to b
its schedule, data and state are the parent's. The branch starts from a copy of the parent's
checkpoint at b (see sweeps.worker); trained from scratch it would give the same numbers.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from scaling import accounting, tracking
from scaling.config import LogConfig, RunConfig, Where, config_hash, resolve, to_dict
from scaling.errors import ConfigError
from scaling.schedules import decay_steps
from scaling.shapes import Shape, choose_shape
from sweeps.spec import HParams, Spec


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    run_id: str
    config: RunConfig  # resolved: nothing left implicit
    role: str  # "run", "parent" or "branch"; a "parent" is a WSD stable phase: not a data point of its own
    label: str  # human-readable, e.g. "C=1e+12 N~2e+05"
    target_n: float
    budget: float | None = None  # the spec's nominal compute budget (isoflop), else None
    parent_run_id: str | None = None
    branch_step: int | None = None
    keep_steps: tuple[int, ...] = ()  # parent: its branch points

    @property
    def steps(self) -> int:
        return self.config.train.steps

    @property
    def tokens(self) -> int:
        return self.config.train.steps * self.config.train.batch_size * self.config.train.seq_len

    @property
    def counts(self) -> dict[str, int]:
        return accounting.param_counts(self.config.model)

    @property
    def flops(self) -> dict[str, float]:
        return accounting.training_flops(self.config.model, self.config.train.seq_len, self.tokens)

    @property
    def work_fraction(self) -> float:
        """The share of the run's steps it trains itself: a branch inherits its first branch_step steps."""
        return 1.0 - (self.branch_step or 0) / self.steps

    @property
    def branch_tokens(self) -> int | None:
        """Tokens the parent had consumed at the branch point (where the cooldown starts)."""
        if self.branch_step is None:
            return None
        return self.branch_step * self.config.train.batch_size * self.config.train.seq_len

    def record(self, spec: Spec) -> dict[str, Any]:
        """What run.json stores: enough to run, resume, and tag the row in results.parquet."""
        return {"run_id": self.run_id, "sweep_name": spec.name, "kind": spec.kind, "role": self.role,
                "label": self.label, "target_n": self.target_n, "budget": self.budget,
                "parent_run_id": self.parent_run_id, "branch_step": self.branch_step,
                "branch_tokens": self.branch_tokens, "keep_steps": list(self.keep_steps),
                "tokens_planned": self.tokens, **self.counts, **self.flops, "config": to_dict(self.config)}


@dataclasses.dataclass(frozen=True)
class BudgetSizes:
    """Where one budget's planned sizes sit against the prior's predicted optimum."""

    flops: float
    n_opt: float  # the prior's prediction at this budget
    sizes: tuple[int, ...]  # N of the shapes planned (after the shape chooser's rounding), ascending
    centred: bool  # sizes came from isoflop.points, else from a list

    def position(self) -> str:
        """Where n_opt falls: at or between sizes, or outside them by a factor."""
        n, sizes = self.n_opt, self.sizes
        if n < sizes[0]:
            return f"below the smallest size ({sizes[0]:.3g}) by {sizes[0] / n:.3g}x"
        if n > sizes[-1]:
            return f"above the largest size ({sizes[-1]:.3g}) by {n / sizes[-1]:.3g}x"
        nearest = min(range(len(sizes)), key=lambda i: abs(math.log(sizes[i] / n)))
        if abs(math.log(sizes[nearest] / n)) <= math.log(1.15):  # the shape chooser's rounding, roughly
            return f"optimum at position {nearest + 1} of {len(sizes)}"
        upper = next(i for i, s in enumerate(sizes) if s > n)
        return f"optimum between positions {upper} and {upper + 1} of {len(sizes)}"

    def outside(self) -> bool:
        return not self.sizes[0] <= self.n_opt <= self.sizes[-1]

    def describe(self) -> str:
        how = "centred" if self.centred else "listed"
        return (f"C={self.flops:.3g}: predicted N_opt {self.n_opt:.3g}; {how} sizes {self.sizes[0]:.3g} .. "
                f"{self.sizes[-1]:.3g} ({len(self.sizes)}), {self.position()}")


@dataclasses.dataclass(frozen=True)
class Plan:
    spec: Spec
    runs: tuple[PlannedRun, ...]
    vocab_size: int
    unique_tokens: int
    notes: tuple[str, ...]
    budgets: tuple[BudgetSizes, ...] = ()  # isoflop with a prior: each budget's predicted optimum

    def total_flops(self, formula: str = "flops_exact") -> float:
        """Compute the sweep spends: a branch's steps before its branch point are its parent's."""
        return sum(run.flops[formula] * run.work_fraction for run in self.runs)


def make_plan(spec: Spec) -> Plan:
    """All runs of `spec`. Tokenizes the data once (cached) for the vocabulary and unique-token count."""
    from scaling.data import prepare_dataset

    base = spec.base_config()
    _check_tracking(spec, base.log)
    ds = prepare_dataset(base.data, base.train.seq_len, base.model.vocab_size)
    vocab = base.model.vocab_size or ds.vocab_size
    notes: list[str] = []
    planner = {"isoflop": _isoflop_runs, "grid": _grid_runs, "wsd": _wsd_runs}[spec.kind]
    drafts = planner(spec, base, vocab, notes)
    runs, seen, label_ids = [], {}, {}
    for draft in drafts:
        config = resolve(draft.pop("config"), ds.vocab_size)
        run_id = label_ids[draft["label"]] = config_hash(config)
        if run_id in seen:
            notes.append(f"{draft['label']} is the same run as {seen[run_id]}; kept once")
            continue
        seen[run_id] = draft["label"]
        runs.append(PlannedRun(run_id=run_id, config=config, **draft))
    # Branch drafts name their parent by label until the parent's id is known.
    runs = [dataclasses.replace(run, parent_run_id=label_ids[run.parent_run_id]) if run.role == "branch" else run
            for run in runs]
    for run in runs:
        if run.tokens > ds.unique_train_tokens and run.role != "parent":
            notes.append(f"{run.label} reads {run.tokens:,} tokens, {run.tokens / ds.unique_train_tokens:.1f} epochs "
                         f"of the {ds.unique_train_tokens:,} unique training tokens: data will repeat")
    budgets = _budget_sizes(spec, runs, notes)
    return Plan(spec, tuple(runs), vocab, ds.unique_train_tokens, tuple(notes), budgets)


def _check_tracking(spec: Spec, log: LogConfig) -> None:
    """[base.log], before anything runs: the trackers' packages are installed, and the keys the sweep sets per
    run (sweeps.worker.with_sweep_tracking) are left to it."""
    tracking.check_installed(log)
    for key in ("name", "tensorboard_dir"):
        if getattr(log, key):
            raise Where(spec.path).error(f"base.log.{key}", "is set per run by the sweep (the run's label; "
                                         "SWEEP_DIR/tensorboard/<run>); remove it")


def _budget_sizes(spec: Spec, runs: list[PlannedRun], notes: list[str]) -> tuple[BudgetSizes, ...]:
    iso = spec.isoflop
    if iso is None or iso.prior is None:
        return ()
    prior, out = iso.prior, []
    if prior.n_convention != "total":
        notes.append(f"isoflop.prior counts N as {prior.n_convention} parameters; the sizes here count "
                     "every parameter (embeddings included), so the optimum is placed a little low")
    if prior.flops is not None and prior.flops != iso.formula:
        notes.append(f"isoflop.prior was fitted with C as {prior.flops}; the budgets here are {iso.formula}")
    for bi, budget in enumerate(iso.budgets):
        sizes = tuple(sorted({run.counts["n_params"] for run in runs if run.budget == budget.flops}))
        if not sizes:
            continue
        centred = iso.points is not None and budget.n_params is None
        entry = BudgetSizes(budget.flops, iso.n_opt(budget.flops), sizes, centred)
        out.append(entry)
        if entry.outside():
            notes.append(f"isoflop.budgets[{bi}]: predicted N_opt {entry.n_opt:.3g} is {entry.position()}: its "
                         "parabola minimum would be extrapolated; move the sizes or use isoflop.points")
    return tuple(out)


def shape_for(target: float, key: str, spec: Spec, base: RunConfig, vocab: int, which: str = "",
              tolerance: float | None = None) -> Shape:
    """The shape for one target size; refuses targets the shape rule cannot reach within tolerance
    (sizes.tolerance unless given). `key` is the spec key the size came from, `which` says which of its
    sizes when that is no list index."""
    rule = spec.sizes
    shape = choose_shape(target, vocab, base.model.mlp, base.model.tie_embeddings, rule.aspect_ratio,
                         rule.tolerance, rule.max_layers)
    tolerance = tolerance or rule.tolerance
    if abs(math.log(shape.n_params / target)) > math.log1p(tolerance):
        allowed = f"sizes.tolerance={rule.tolerance:g}" if tolerance == rule.tolerance else f"{tolerance:.3g}"
        raise ConfigError(f"{spec.path}: key '{key}'{which} = {target:.4g} cannot be built: the nearest shape "
                          f"(d_model {shape.d_model}, {shape.n_layers} layers, vocab {vocab}) has N={shape.n_params:,}, "
                          f"more than {allowed} away; choose a size in reach or raise "
                          "sizes.tolerance / sizes.max_layers")
    return shape


def hparams_for(spec: Spec, base: RunConfig, shape: Shape, steps: int, warmup_steps: int | None = None,
                hp: HParams | None = None, **train_overrides) -> RunConfig:
    """The run config of one shape trained for `steps` steps under the hyperparameter rule: `hp` is one
    point of the spec's hyperparameters (spec.hparams when it has no list axes)."""
    hp, t = hp or _scalar_hparams(spec), base.train
    lr = hp.lr if hp.lr is not None else t.lr
    if hp.lr_base_width is not None:
        lr = lr * (hp.lr_base_width / shape.d_model) ** hp.lr_width_exponent
    lr = lr * hp.lr_multiplier
    if warmup_steps is None:
        warmup_steps = round(hp.warmup_fraction * steps) if hp.warmup_fraction is not None else t.warmup_steps
    model = dataclasses.replace(base.model, **shape.model_overrides())
    train = dataclasses.replace(t, steps=steps, tokens=None, lr=float(f"{lr:.6g}"),
                                warmup_steps=min(warmup_steps, steps),
                                batch_size=hp.batch_size or t.batch_size,
                                weight_decay=t.weight_decay if hp.weight_decay is None else hp.weight_decay,
                                seed=t.seed if hp.seed is None else hp.seed, **train_overrides)
    return dataclasses.replace(base, model=model, train=train)


def _scalar_hparams(spec: Spec) -> HParams:
    if spec.hparams.axes:
        raise ValueError("spec.hparams has list axes: pass one of spec.hparams.points() as hp")
    return spec.hparams


def tokens_per_step(spec: Spec, base: RunConfig, hp: HParams | None = None) -> int:
    return ((hp or _scalar_hparams(spec)).batch_size or base.train.batch_size) * base.train.seq_len


def _model_of(shape: Shape, base: RunConfig):
    return dataclasses.replace(base.model, **shape.model_overrides())


def _isoflop_runs(spec: Spec, base: RunConfig, vocab: int, notes: list[str]) -> list[dict]:
    iso = spec.isoflop
    drafts = []
    for bi, budget in enumerate(iso.budgets):
        if iso.adaptive and iso.n_opt(budget.flops) is None:
            continue  # pending: centred once the budgets below it finish (sweeps.adaptive)
        tolerance = None
        if budget.n_params or iso.points is None:
            targets = budget.n_params or spec.sizes.n_params
            size_key = f"isoflop.budgets[{bi}].n_params" if budget.n_params else "sizes.n_params"
            names = [(f"{size_key}[{i}]", "") for i in range(len(targets))]
        else:
            targets = iso.centred_sizes(budget.flops)
            names = [("isoflop.points", f" (budget {bi}, centred size {i + 1} of {iso.points})")
                     for i in range(iso.points)]
            # Nobody chose these targets, so a shape a quarter of the way to the next size is as good:
            # the sizes stay distinct and ordered, and tiny models (a coarse grid of shapes) can be centred.
            tolerance = max(spec.sizes.tolerance, iso.span ** (0.25 / (iso.points - 1)) - 1)
        kept = 0
        for target, (key, which) in zip(targets, names):
            shape = shape_for(target, key, spec, base, vocab, which, tolerance)
            for hp, suffix in spec.hparams.points():
                draft = _isoflop_draft(spec, base, bi, target, shape, key + which, hp, suffix, notes)
                if draft is not None:
                    kept += 1
                    drafts.append(draft)
        if kept == 0:
            raise ConfigError(f"{spec.path}: key 'isoflop.budgets[{bi}]' = {budget.flops:.4g} keeps no size: every size "
                              f"falls outside isoflop.tokens_per_param {list(iso.tokens_per_param)}; widen the window "
                              "or list other sizes")
    return drafts


def _isoflop_draft(spec: Spec, base: RunConfig, bi: int, target: float, shape: Shape, size_name: str, hp: HParams,
                   suffix: str, notes: list[str]) -> dict | None:
    """One run of `shape` at budget `bi` under hyperparameters `hp`; None when outside the D/N window.
    Steps come from this run's own batch size, so every batch size spends the same budget."""
    iso, budget = spec.isoflop, spec.isoflop.budgets[bi]
    per_step_tokens = tokens_per_step(spec, base, hp)
    step_flops = accounting.flops_per_token(_model_of(shape, base), base.train.seq_len)[iso.formula] * per_step_tokens
    steps = round(budget.flops / step_flops)
    miss = abs(steps * step_flops - budget.flops) / budget.flops
    if steps < 1 or miss > iso.tolerance:
        centred = iso.points is not None and budget.n_params is None
        raise ConfigError(
            f"{spec.path}: key 'isoflop.budgets[{bi}]' = {budget.flops:.4g} is too small for {size_name} = "
            f"{target:.4g} (N={shape.n_params:,}{suffix}): one step of {per_step_tokens} tokens costs {step_flops:.4g} "
            f"FLOPs ({iso.formula}), so {max(steps, 1)} steps miss the budget by {miss:.1%} (tolerance "
            f"{iso.tolerance:.0%}); raise the budget, {'narrow isoflop.span' if centred else 'drop that size'}, "
            "or lower hparams.batch_size")
    tokens_per_param = steps * per_step_tokens / shape.n_params
    window = iso.tokens_per_param
    if window and not window[0] <= tokens_per_param <= window[1]:
        notes.append(f"C={budget.flops:.3g} N~{target:.3g}{suffix}: skipped, {tokens_per_param:.3g} tokens/param is "
                     f"outside isoflop.tokens_per_param {list(window)}")
        return None
    return {"config": hparams_for(spec, base, shape, steps, hp=hp), "role": "run", "target_n": target,
            "budget": budget.flops, "label": f"C={budget.flops:.3g} N~{target:.3g}{suffix}"}


def _grid_runs(spec: Spec, base: RunConfig, vocab: int, notes: list[str]) -> list[dict]:
    grid = spec.grid
    drafts = []
    for si, target in enumerate(spec.sizes.n_params):
        shape = shape_for(target, f"sizes.n_params[{si}]", spec, base, vocab)
        if grid.tokens is not None:
            budgets = [(f"D={d:.3g}", d) for d in grid.tokens]
        else:
            budgets = [(f"D/N={r:g}", r * shape.n_params) for r in grid.tokens_per_param]
        for tag, tokens in budgets:
            for hp, suffix in spec.hparams.points():  # steps from each run's own batch size: same tokens
                steps = max(1, round(tokens / tokens_per_step(spec, base, hp)))
                drafts.append({"config": hparams_for(spec, base, shape, steps, hp=hp), "role": "run",
                               "target_n": target, "label": f"N~{target:.3g} {tag}{suffix}"})
    return drafts


def _wsd_runs(spec: Spec, base: RunConfig, vocab: int, notes: list[str]) -> list[dict]:
    drafts = []
    for si, target in enumerate(spec.sizes.n_params):
        shape = shape_for(target, f"sizes.n_params[{si}]", spec, base, vocab)
        for hp, suffix in spec.hparams.points():  # a branch must inherit its own hyperparameters' stable run
            drafts += _wsd_family(spec, base, target, shape, hp, suffix)
    return drafts


def _wsd_family(spec: Spec, base: RunConfig, target: float, shape: Shape, hp: HParams, suffix: str) -> list[dict]:
    """One size's stable run under `hp` and the cooldown branches that start from it."""
    wsd, per_step_tokens = spec.wsd, tokens_per_step(spec, base, hp)
    if wsd.branch_tokens is not None:
        wanted = list(wsd.branch_tokens)
        key = "wsd.branch_tokens"
    else:
        wanted = [r * shape.n_params for r in wsd.branch_tokens_per_param]
        key = "wsd.branch_tokens_per_param"
    totals = sorted({max(2, round(tokens / per_step_tokens)) for tokens in wanted})
    points = {total: total - decay_steps(total, wsd.decay_fraction) for total in totals}
    if hp.warmup_fraction is not None:
        warmup = round(hp.warmup_fraction * totals[0])
    else:
        warmup = base.train.warmup_steps
    if warmup > min(points.values()):
        raise ConfigError(f"{spec.path}: key '{key}': the shortest branch of size {target:.4g}{suffix} ({totals[0]} "
                          f"steps) starts its cooldown at step {points[totals[0]]}, before the {warmup}-step warmup "
                          "ends; raise the smallest branch or lower hparams.warmup_fraction")
    parent_label = f"N~{target:.3g} stable{suffix}"
    keep = tuple(sorted(set(points.values())))
    parent = hparams_for(spec, base, shape, max(keep), warmup, hp=hp, schedule="wsd", decay_fraction=0.0,
                         decay_shape=wsd.decay_shape)
    drafts = [{"config": parent, "role": "parent", "target_n": target, "label": parent_label, "keep_steps": keep}]
    for total in totals:
        branch = hparams_for(spec, base, shape, total, warmup, hp=hp, schedule="wsd",
                             decay_fraction=wsd.decay_fraction, decay_shape=wsd.decay_shape)
        drafts.append({"config": branch, "role": "branch", "target_n": target,
                       "label": f"N~{target:.3g} D={total * per_step_tokens:.3g}{suffix}",
                       "parent_run_id": parent_label, "branch_step": points[total]})
    return drafts
