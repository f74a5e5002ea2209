"""Sweep specs: TOML files parsed and validated into frozen dataclasses.

A spec names its kind and has these tables (every key is checked; unknown ones are rejected by name):

  name, kind, description     kind is "isoflop", "grid" or "wsd"
  [sizes]    n_params          target total parameter counts: a list, or {min, max, num} (log-spaced)
             aspect_ratio, tolerance, max_layers       passed to scaling.shapes.choose_shape
  [hparams]  lr, lr_multiplier, lr_base_width, lr_width_exponent
                                 lr = lr * multiplier * (lr_base_width / d_model) ** exponent
             warmup_fraction, batch_size, weight_decay, seed      warmup = round(fraction * steps)
             any of them may be a list: the sweep trains the product of the lists at every point
  [isoflop]  budgets (list, or {min, max, num}; an entry may be {flops, n_params} with its own sizes),
             formula ("flops_exact", "flops_6nd", "flops_6nd_nonembed"), tolerance (0.01),
             tokens_per_param = [lo, hi] (optional: keep only sizes whose D/N falls in this window),
             prior ("tokens_per_param:R" or "fit:PATH/FIT.json": a predicted N_opt(C)),
             points, span (instead of sizes.n_params: `points` sizes per budget, log-spaced over a
             ratio `span` (16) between largest and smallest, centred on the prior's N_opt(C)),
             prior = "adaptive" with adaptive_start (a prior as above, default "tokens_per_param:20"):
             budgets run smallest first, each centred on the optimum extrapolated from the finished
             budgets (sweeps/adaptive.py)
  [grid]     tokens or tokens_per_param
  [wsd]      branch_tokens or branch_tokens_per_param, decay_fraction, decay_shape
  [base]     a run config ([base.model], [base.data], [base.train], [base.checkpoint]) for every run;
             the keys the sweep sets itself (shape, steps, lr, warmup, schedule) may not appear there.
  [slurm]    partition, time, cpus_per_task, gpus, mem, account, extra (sbatch arguments): each run's
             job under --executor slurm (sweeps/slurm.py); not part of the runs' configs or ids.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
import tomllib
import typing
from pathlib import Path
from typing import Any

from scaling import accounting, config as config_lib
from scaling.chinchilla import chinchilla_G, chinchilla_exponents
from scaling.config import FRACTION, OPEN_UNIT_INTERVAL, POSITIVE, Rule, Where, check_keys, field_names, one_of, option
from scaling.errors import ConfigError
from sweeps import slurm as slurm_lib

KINDS = ("isoflop", "grid", "wsd")
FORMULAS = tuple(accounting.FLOP_FORMULAS)

# Keys of the run config that the sweep sets itself, so a spec's [base] must leave them alone.
SWEEP_OWNED = {
    "model": ("d_model", "n_layers", "n_heads", "d_ff"),
    "train": ("steps", "tokens"),
}
HPARAM_OWNED = {"lr": "train.lr", "warmup_fraction": "train.warmup_steps", "batch_size": "train.batch_size",
                "weight_decay": "train.weight_decay", "seed": "train.seed"}


@dataclasses.dataclass(frozen=True)
class Sizes:
    n_params: tuple[float, ...]
    aspect_ratio: float = 64.0
    tolerance: float = 0.05  # how far (relative) the chosen shape's N may be from the target
    max_layers: int = 64


def _train_rule(name: str) -> Rule | None:
    """The range of run config key train.NAME, which the [hparams] key of the same quantity obeys too."""
    return config_lib.rule_of(config_lib.TrainConfig, name)


@dataclasses.dataclass(frozen=True)
class HParams:
    """The [hparams] table; each field's `check` is the range of its values, a list's elements included."""

    lr: float | None = option(None, "peak lr; None: base.train.lr, unscaled", check=_train_rule("lr"))
    lr_base_width: int | None = option(None, "width at which lr applies as given; None: no width scaling",
                                       check=POSITIVE)
    lr_width_exponent: float = option(1.0, "lr scales as (lr_base_width / d_model) ** exponent")
    warmup_fraction: float | None = option(None, "warmup = round(fraction * steps); None: base.train.warmup_steps "
                                                 "as given", check=FRACTION)
    batch_size: int | None = option(None, "None: base.train.batch_size", check=_train_rule("batch_size"))
    lr_multiplier: float = option(1.0, "times the per-size lr rule, so one list tunes every size around its rule",
                                  check=POSITIVE)
    weight_decay: float | None = option(None, "None: base.train.weight_decay", check=_train_rule("weight_decay"))
    seed: int | None = option(None, "None: base.train.seed", check=_train_rule("seed"))
    # Keys the spec gave as lists, in spec order: (key, values). Their fields above keep the defaults;
    # `points()` gives one scalar HParams per element of the product.
    axes: tuple[tuple[str, tuple], ...] = ()

    def given(self, name: str) -> bool:
        return getattr(self, name) is not None or any(key == name for key, _ in self.axes)

    def points(self) -> tuple[tuple["HParams", str], ...]:
        """One (scalar HParams, label suffix) per element of the list axes' product; the suffix names
        the list axes only (" lr=0.001 seed=1"), so a spec without lists keeps its labels (suffix "")."""
        names = [key for key, _ in self.axes]
        return tuple((dataclasses.replace(self, axes=(), **dict(zip(names, combo))),
                      "".join(f" {key}={value:g}" for key, value in zip(names, combo)))
                     for combo in itertools.product(*(values for _, values in self.axes)))


@dataclasses.dataclass(frozen=True)
class Budget:
    flops: float
    n_params: tuple[float, ...] | None = None  # sizes for this budget; None: [sizes].n_params


@dataclasses.dataclass(frozen=True)
class Prior:
    """A predicted compute-optimal size, N_opt(C) = coef * C ** exponent, as every supported prior is a
    power law in C: a tokens-per-parameter ratio r gives sqrt(C / 6r) (C = 6ND, D = rN)."""

    text: str  # as the spec wrote it, e.g. "tokens_per_param:20"
    coef: float
    exponent: float
    n_convention: str = "total"  # a fit's N may leave out embeddings; the sweep's sizes count them
    flops: str | None = None  # a fit's C convention (e.g. "flops_6nd"); None: any

    def n_opt(self, flops: float) -> float:
        return self.coef * flops ** self.exponent


@dataclasses.dataclass(frozen=True)
class IsoFlop:
    budgets: tuple[Budget, ...]
    formula: str = "flops_exact"
    tolerance: float = 0.01
    tokens_per_param: tuple[float, float] | None = None
    prior: Prior | None = None
    points: int | None = None  # None: the sizes are listed (sizes.n_params or per budget)
    span: float = 16.0  # largest / smallest centred size
    adaptive: bool = False  # prior = "adaptive": `prior` is the start law, `centres` what results gave
    centres: tuple[tuple[float, float], ...] = ()  # adaptive: (budget, N_opt), set by sweeps.adaptive

    def n_opt(self, flops: float) -> float | None:
        """The predicted optimum at a budget; adaptive: its recorded centre, None while it is pending."""
        if self.adaptive:
            return dict(self.centres).get(flops)
        return self.prior.n_opt(flops)

    def centred_sizes(self, flops: float) -> tuple[float, ...]:
        """`points` target sizes log-spaced over `span`, whose geometric mean is the predicted N_opt(C)."""
        n_opt = self.n_opt(flops)
        return tuple(n_opt * self.span ** (i / (self.points - 1) - 0.5) for i in range(self.points))


@dataclasses.dataclass(frozen=True)
class Grid:
    tokens: tuple[int, ...] | None = None
    tokens_per_param: tuple[float, ...] | None = None


@dataclasses.dataclass(frozen=True)
class Wsd:
    branch_tokens: tuple[int, ...] | None = None
    branch_tokens_per_param: tuple[float, ...] | None = None
    decay_fraction: float = 0.2
    decay_shape: str = "1-sqrt"


@dataclasses.dataclass(frozen=True)
class Spec:
    name: str
    kind: str
    path: str
    sizes: Sizes
    hparams: HParams
    base: dict  # raw run-config tables, already validated by scaling.config.from_dict
    isoflop: IsoFlop | None = None
    grid: Grid | None = None
    wsd: Wsd | None = None
    description: str = ""
    slurm: slurm_lib.SlurmOptions = slurm_lib.SlurmOptions()  # what --executor slurm asks for per run

    def base_config(self) -> config_lib.RunConfig:
        return config_lib.from_dict(self.base)


def _number(value: Any, key: str, where: Where, integer: bool = False, rule: Rule | None = POSITIVE) -> float:
    """A number in range `rule` (positive unless told), or with `integer` a whole one: TOML writes 1e6 as a
    float, so a whole float counts as the int it equals."""
    if integer and isinstance(value, float) and value.is_integer():
        value = int(value)
    return config_lib.check_value(key, value, int if integer else float, rule, where)


def _numbers(value: Any, key: str, where: Where, integer: bool = False) -> tuple:
    """A non-empty list of positive numbers, or {min, max, num} spaced evenly in log space."""
    if isinstance(value, dict):
        check_keys(value, key, ("min", "max", "num"), where)
        missing = [k for k in ("min", "max", "num") if k not in value]
        if missing:
            raise where.error(key, f"range needs min, max and num; missing {', '.join(missing)}")
        lo, hi = _number(value["min"], f"{key}.min", where), _number(value["max"], f"{key}.max", where)
        num = _number(value["num"], f"{key}.num", where, integer=True)
        if hi < lo:
            raise where.error(key, f"range has max ({hi:g}) below min ({lo:g})")
        if num == 1:
            values = [lo]
        else:
            values = [lo * (hi / lo) ** (i / (num - 1)) for i in range(num)]
        return tuple(round(v) if integer else v for v in values)
    if not isinstance(value, list) or not value:
        raise where.error(key, f"must be a non-empty list of numbers or a {{min, max, num}} range, got {value!r}")
    return tuple(_number(v, f"{key}[{i}]", where, integer) for i, v in enumerate(value))


def _one_of(table: dict, keys: tuple[str, str], section: str, where: Where) -> str:
    given = [k for k in keys if k in table]
    if len(given) != 1:
        raise where.error(section, f"needs exactly one of {keys[0]} or {keys[1]}")
    return given[0]


def _sizes(raw: Any, where: Where, required: bool) -> Sizes:
    table = check_keys(raw if raw is not None else {}, "sizes", field_names(Sizes), where)
    if "n_params" not in table:
        if required:
            raise where.error("sizes.n_params", "is missing: list the target parameter counts, e.g. n_params = [1e5, 3e5]")
        n_params: tuple = ()
    else:
        n_params = _numbers(table["n_params"], "sizes.n_params", where)
    return Sizes(n_params=n_params,
                 aspect_ratio=_number(table.get("aspect_ratio", 64.0), "sizes.aspect_ratio", where),
                 tolerance=_number(table.get("tolerance", 0.05), "sizes.tolerance", where),
                 max_layers=_number(table.get("max_layers", 64), "sizes.max_layers", where, integer=True))


def _hparam(name: str, value: Any, key: str, where: Where) -> Any:
    """An [hparams] value, of its HParams field's type and within the range that field declares; seed takes
    an int only, where the other whole-number keys also take a whole float."""
    rule = config_lib.rule_of(HParams, name)
    if name == "seed":
        return config_lib.check_value(key, value, int, rule, where)
    return _number(value, key, where, integer=int in typing.get_args(typing.get_type_hints(HParams)[name]), rule=rule)


def _hparam_axis(value: list, key: str, where: Where) -> tuple:
    if not value:
        raise where.error(key, "is an empty list; give at least one value or a single number")
    values = tuple(_hparam(key.split(".")[1], v, f"{key}[{i}]", where) for i, v in enumerate(value))
    if len(set(values)) != len(values):
        raise where.error(key, f"lists a value twice ({list(value)}); each value is one set of runs")
    return values


def _hparams(raw: Any, where: Where) -> HParams:
    table = check_keys(raw if raw is not None else {}, "hparams", field_names(HParams, leave_out=("axes",)), where)
    scalars, axes = {}, []
    for name, value in table.items():
        key = f"hparams.{name}"
        if isinstance(value, list):
            axes.append((name, _hparam_axis(value, key, where)))
        else:
            scalars[name] = _hparam(name, value, key, where)
    return HParams(**scalars, axes=tuple(axes))


FIT_FORMS = ("chinchilla", "power_law")  # the forms whose N_opt(C) is a power law the prior can hold
ADAPTIVE_START = "tokens_per_param:20"  # adaptive_start's default: Chinchilla's ratio


def _prior(value: Any, where: Where, key: str = "isoflop.prior") -> Prior:
    usage = 'must be "tokens_per_param:R" (e.g. "tokens_per_param:20") or "fit:PATH/FIT.json"'
    if key == "isoflop.prior":
        usage = usage.replace(" or ", ", ") + ' or "adaptive"'
    if not isinstance(value, str) or ":" not in value:
        raise where.error(key, f"{usage}, got {value!r}")
    kind, arg = (part.strip() for part in value.split(":", 1))
    if kind == "tokens_per_param":
        try:
            ratio = float(arg)
        except ValueError:
            raise where.error(key, f"{usage}; '{arg}' is not a number") from None
        if not (math.isfinite(ratio) and ratio > 0):
            raise where.error(key, f"needs a positive tokens-per-parameter ratio, got {arg}")
        return Prior(value, (6 * ratio) ** -0.5, 0.5)
    if kind == "fit" and arg:
        return _fit_prior(value, Path(arg), where, key)
    raise where.error(key, f"{usage}, got {value!r}")


def _fit_prior(text: str, path: Path, where: Where, key: str = "isoflop.prior") -> Prior:
    """N_opt(C) from a FIT.json, read directly: the sweeps layer sits below the analysis that wrote it."""
    def bad(why: str) -> ConfigError:
        return where.error(key, f"fit file {path} {why}")

    if not path.is_file():
        raise bad("does not exist or is not a file; write one with `scaling fit ... --out`")
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise bad(f"is not readable JSON ({type(err).__name__})") from None
    if not isinstance(raw, dict) or raw.get("schema") != "scaling.fit/1":
        raise bad("is not a fit result (schema 'scaling.fit/1' expected)")
    fit_spec, params = raw.get("spec"), raw.get("params")
    if not isinstance(fit_spec, dict) or not isinstance(params, dict):
        raise bad("has no 'spec' or 'params' object")
    form = fit_spec.get("form")
    if form not in FIT_FORMS:
        raise bad(f"is a {form!r} fit; a prior needs a fit of form {' or '.join(FIT_FORMS)} "
                  "(--method isoflop, envelope, parametric or vpnls)")
    needed = ("E", "A", "B", "alpha", "beta") if form == "chinchilla" else ("k_N", "a")
    p = {}
    for name in needed:
        v = params.get(name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise bad(f"has no finite parameter {name} (got {v!r}); this fit has no usable law")
        p[name] = float(v)
    positive = ("A", "B", "alpha", "beta") if form == "chinchilla" else ("k_N",)
    if any(p[name] <= 0 for name in positive):
        raise bad(f"needs {', '.join(positive)} positive, got {', '.join(f'{n} = {p[n]:g}' for n in positive)}")
    if form == "chinchilla":  # N_opt = G (C/6)^a
        a, _ = chinchilla_exponents(p["alpha"], p["beta"])
        coef = chinchilla_G(p["A"], p["B"], p["alpha"], p["beta"]) * 6.0 ** -a
    else:
        coef, a = p["k_N"], p["a"]
    convention = fit_spec.get("n_convention", "total")
    flops = fit_spec.get("flops")
    return Prior(text, coef, a, convention if isinstance(convention, str) else "total",
                 flops if isinstance(flops, str) else None)


def _isoflop(raw: Any, where: Where) -> IsoFlop:
    # adaptive and centres follow from prior = "adaptive"; adaptive_start is the spec's own key
    known = field_names(IsoFlop, leave_out=("adaptive", "centres")) + ("adaptive_start",)
    table = check_keys(raw, "isoflop", known, where)
    if "budgets" not in table:
        raise where.error("isoflop.budgets", "is missing: list the compute budgets in FLOPs, e.g. budgets = [1e13, 3e13]")
    raw_budgets = table["budgets"]
    budgets = []
    if isinstance(raw_budgets, list) and raw_budgets and any(isinstance(b, dict) for b in raw_budgets):
        for i, entry in enumerate(raw_budgets):
            key = f"isoflop.budgets[{i}]"
            if isinstance(entry, dict):
                check_keys(entry, key, field_names(Budget), where)
                if "flops" not in entry:
                    raise where.error(f"{key}.flops", "is missing")
                sizes = _numbers(entry["n_params"], f"{key}.n_params", where) if "n_params" in entry else None
                budgets.append(Budget(_number(entry["flops"], f"{key}.flops", where), sizes))
            else:
                budgets.append(Budget(_number(entry, key, where)))
    else:
        budgets = [Budget(flops) for flops in _numbers(raw_budgets, "isoflop.budgets", where)]
    window = None
    if "tokens_per_param" in table:
        window = table["tokens_per_param"]
        if not (isinstance(window, list) and len(window) == 2):
            raise where.error("isoflop.tokens_per_param", f"must be [low, high], got {window!r}")
        window = tuple(_number(v, f"isoflop.tokens_per_param[{i}]", where) for i, v in enumerate(window))
        if window[1] < window[0]:
            raise where.error("isoflop.tokens_per_param", f"has high below low: {list(window)}")
    tolerance = _number(table.get("tolerance", 0.01), "isoflop.tolerance", where)
    adaptive = table.get("prior") == "adaptive"
    prior = None
    if adaptive:
        prior = _adaptive_prior(table, budgets, where)
    elif "prior" in table:
        prior = _prior(table["prior"], where)
    points, span = None, 16.0
    if "points" in table:
        points = _number(table["points"], "isoflop.points", where, integer=True)
        if points < 3:
            raise where.error("isoflop.points", f"must be at least 3 (a parabola per budget), got {points}")
        if prior is None:
            raise where.error("isoflop.points", 'needs isoflop.prior to centre the sizes on, e.g. '
                              'prior = "tokens_per_param:20"')
        if all(b.n_params is not None for b in budgets):
            raise where.error("isoflop.points", "is unused: every budget lists its own n_params; remove one")
    if "adaptive_start" in table and not adaptive:
        raise where.error("isoflop.adaptive_start", "applies only with isoflop.prior = 'adaptive'; remove it")
    if "span" in table:
        if points is None:
            raise where.error("isoflop.span", "applies only with isoflop.points; set points or remove span")
        span = _number(table["span"], "isoflop.span", where)
        if not span > 1:
            raise where.error("isoflop.span", f"must be above 1 (largest over smallest size), got {span:g}")
    formula = config_lib.check_range("isoflop.formula", table.get("formula", "flops_exact"), one_of(FORMULAS), where)
    return IsoFlop(tuple(budgets), formula, tolerance, window, prior, points, span, adaptive)


def _adaptive_prior(table: dict, budgets: list[Budget], where: Where) -> Prior:
    """prior = "adaptive": the start law (adaptive_start) centres the budgets nothing has finished below."""
    if "points" not in table:
        raise where.error("isoflop.prior", "= 'adaptive' centres each budget's sizes: set isoflop.points (e.g. 5)")
    listed = [i for i, b in enumerate(budgets) if b.n_params is not None]
    if listed:
        raise where.error(f"isoflop.budgets[{listed[0]}].n_params", "is fixed, but prior = 'adaptive' centres every "
                          "budget; give the budget as a number")
    start = _prior(table.get("adaptive_start", ADAPTIVE_START), where, "isoflop.adaptive_start")
    return dataclasses.replace(start, text=f"adaptive, start {start.text}")


def _grid(raw: Any, where: Where) -> Grid:
    table = check_keys(raw, "grid", field_names(Grid), where)
    key = _one_of(table, ("tokens", "tokens_per_param"), "grid", where)
    values = _numbers(table[key], f"grid.{key}", where, integer=key == "tokens")
    return Grid(**{key: values})


def _wsd(raw: Any, where: Where) -> Wsd:
    table = check_keys(raw, "wsd", field_names(Wsd), where)
    key = _one_of(table, ("branch_tokens", "branch_tokens_per_param"), "wsd", where)
    values = _numbers(table[key], f"wsd.{key}", where, integer=key == "branch_tokens")
    fraction = _number(table.get("decay_fraction", 0.2), "wsd.decay_fraction", where, rule=OPEN_UNIT_INTERVAL)
    shape = config_lib.check_range("wsd.decay_shape", table.get("decay_shape", "1-sqrt"),
                                   one_of(config_lib.DECAY_SHAPES), where)
    return Wsd(**{key: values}, decay_fraction=fraction, decay_shape=shape)


def _base(raw: Any, kind: str, hparams: HParams, where: Where) -> dict:
    table = check_keys(raw if raw is not None else {}, "base", tuple(config_lib.SECTIONS), where)
    try:
        config_lib.from_dict(table)
    except ConfigError as err:  # name the key as it is spelled in the spec: base.train.lr, not train.lr
        message = re.sub(r"'((?:%s)\.\w+)'" % "|".join(config_lib.SECTIONS), r"'base.\1'", str(err))
        raise ConfigError(f"{where.path}: in [base]: {message}") from None
    for section, keys in SWEEP_OWNED.items():
        for key in keys:
            if key in table.get(section, {}):
                raise where.error(f"base.{section}.{key}", "is set by the sweep (shape chooser or budget); remove it")
    train = table.get("train", {})
    for name, key in HPARAM_OWNED.items():
        if hparams.given(name) and key.split(".")[1] in train:
            raise where.error(f"base.{key}", f"conflicts with hparams.{name}; set it in one place")
    if kind == "wsd":
        for key in ("schedule", "decay_fraction", "decay_shape"):
            if key in train:
                raise where.error(f"base.train.{key}", "is set by the wsd sweep; use the [wsd] table")
    return table


def parse(raw: dict, path: str = "<spec>") -> Spec:
    """Validate a spec already read from TOML."""
    where = Where(path)
    check_keys(raw, "", field_names(Spec, leave_out=("path",)), where)  # path is where it was read
    if "kind" not in raw:
        raise where.error("kind", f"is missing: set kind = one of {', '.join(KINDS)}")
    kind = config_lib.check_range("kind", raw["kind"], one_of(KINDS), where)
    for other in KINDS:
        if other != kind and other in raw:
            raise where.error(other, f"does not apply to kind '{kind}'; remove the [{other}] table")
    if kind not in raw:
        raise where.error(kind, f"is missing: a '{kind}' spec needs a [{kind}] table")
    isoflop = _isoflop(raw[kind], where) if kind == "isoflop" else None
    per_budget_sizes = isoflop is not None and all(b.n_params is not None for b in isoflop.budgets)
    centred = isoflop is not None and isoflop.points is not None
    sizes = _sizes(raw.get("sizes"), where, required=not (per_budget_sizes or centred))
    if centred and sizes.n_params:
        raise where.error("isoflop.points", "conflicts with sizes.n_params: give a size list or points (sizes "
                          "centred on the prior's N_opt), not both")
    hparams = _hparams(raw.get("hparams"), where)
    name = raw.get("name", Path(path).stem)
    if not isinstance(name, str) or not name:
        raise where.error("name", f"must be a non-empty string, got {name!r}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise where.error("description", "must be a string")
    return Spec(name=name, kind=kind, path=path, sizes=sizes, hparams=hparams,
                base=_base(raw.get("base"), kind, hparams, where), isoflop=isoflop,
                grid=_grid(raw[kind], where) if kind == "grid" else None,
                wsd=_wsd(raw[kind], where) if kind == "wsd" else None, description=description,
                slurm=slurm_lib.parse_table(raw.get("slurm"), path))


def parse_text(text: str, path: str = "<spec>", overrides: list[str] = ()) -> Spec:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    for item in overrides:
        parts, value = config_lib.parse_setting(item, "key=value (e.g. base.train.seed=1)")
        config_lib.set_key(raw, parts, value, path)
    return parse(raw, path)


def load(path: str | Path, overrides: list[str] = ()) -> Spec:
    """Read and validate the spec at `path`, with optional `--set key=value` overrides."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep spec not found: {path}; pass a TOML file such as sweeps/quickstart.toml")
    return parse_text(path.read_text(), str(path), overrides)
