"""Fit specifications and results: frozen, and serialised to JSON in full so a fit can be re-run."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from scaling.errors import DataError

SCHEMA = "scaling.fit/1"


@dataclasses.dataclass(frozen=True)
class FitSpec:
    """Everything needed to reproduce a fit: method and form, objective, starts, data identity."""

    method: str  # parametric | vpnls | isoflop | envelope | kaplan
    form: str  # chinchilla | kaplan_nd | kaplan_n | ... | power_law
    loss: str  # huber_log | mse_linear | ols_loglog
    delta: float | None
    init_grid: dict | None
    n_convention: str
    flops: str
    data_hash: str
    n_points: int
    dropped: tuple[str, ...] = ()
    d_derived: bool = False
    source: str = ""
    options: dict = dataclasses.field(default_factory=dict)
    loss_label: str = "loss"
    vocab_size: int | None = None  # the runs' vocabulary, when the table recorded one (for `allocate`)


@dataclasses.dataclass(frozen=True)
class FitResult:
    """Parameters, objective and derived quantities; bootstrap intervals when resampled.
    `samples` holds the bootstrap replicates' parameters (name -> list), so intervals for any budget
    can be computed later (`allocate`). `details` is the method's own record (solver status, per-budget
    parabolas, ...); `diagnostics` is what a reader must know before trusting the numbers
    ({code, severity, message} each, see analysis.diagnostics); `fit_range` is the span of N, D and C
    the fit saw, so that predictions can say how far they extrapolate."""

    spec: FitSpec
    params: dict[str, float]
    objective: float | None = None
    derived: dict[str, float] = dataclasses.field(default_factory=dict)
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    notes: tuple[str, ...] = ()
    diagnostics: tuple[dict, ...] = ()
    fit_range: dict[str, list[float]] | None = None
    intervals: dict[str, tuple[float, float]] | None = None
    bootstrap: dict[str, Any] | None = None
    samples: dict[str, list[float]] | None = None
    predictions: list[dict[str, float]] | None = None

    def value(self, name: str) -> float:
        """A parameter or derived quantity by name."""
        if name in self.params:
            return self.params[name]
        return self.derived[name]

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, **_clean(dataclasses.asdict(self))}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict) -> FitResult:
        if d.get("schema") != SCHEMA:
            raise DataError(f"not a fit result (schema {d.get('schema')!r}, expected {SCHEMA!r})")
        spec = d["spec"]
        spec = FitSpec(**{**spec, "dropped": tuple(spec.get("dropped", ()))})
        fields = {f.name for f in dataclasses.fields(cls)} - {"spec"}
        d = dict(d)
        if isinstance(d.get("diagnostics"), dict):  # files written before `details` had its own name
            d["details"] = d.pop("diagnostics")
        numeric = ("params", "derived", "intervals", "samples", "predictions")
        rest = {k: (_unclean(v) if k in numeric and v is not None else v) for k, v in d.items() if k in fields}
        rest["notes"] = tuple(rest.get("notes", ()))
        rest["diagnostics"] = tuple(rest.get("diagnostics", ()))
        if rest.get("intervals") is not None:
            rest["intervals"] = {k: tuple(v) for k, v in rest["intervals"].items()}
        return cls(spec=spec, **rest)


# Parameters each form needs, and which of them must be positive for the law to mean anything.
REQUIRED_PARAMS = {
    "chinchilla": (("E", "A", "B", "alpha", "beta"), ("A", "B", "alpha", "beta")),
    "power_law": (("k_N", "a", "k_D", "b"), ("k_N", "k_D")),
    "kaplan_nd": (("N_c", "D_c", "alpha_N", "alpha_D"), ("N_c", "D_c", "alpha_N", "alpha_D")),
}


def load_fit(path: str | Path) -> FitResult:
    """Read a FIT.json written by `scaling fit --out`, refusing anything that is not a usable fit."""
    path = Path(path)
    again = "re-create it with `scaling fit ... --out`"
    if not path.exists():
        raise DataError(f"{path}: no such fit file; write one with `scaling fit ... --out {path}`")
    if not path.is_file():
        raise DataError(f"{path}: is a directory, not a fit file; pass the FIT.json that `scaling fit --out` wrote")
    try:
        raw = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not a JSON fit result ({type(err).__name__}); {again}") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: holds a JSON {type(raw).__name__}, not a fit result object; {again}")
    try:
        result = FitResult.from_dict(raw)
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise DataError(f"{path}: not a readable fit result ({type(err).__name__}: {err}); {again}") from None
    check_params(result, str(path))
    return result


def check_params(result: FitResult, where: str) -> None:
    """Every parameter a number, the form's parameters present, and positive where the law needs it."""
    if not isinstance(result.params, dict):
        raise DataError(f"{where}: 'params' is not an object of named numbers")
    for name, value in result.params.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DataError(f"{where}: parameter {name} = {value!r} is not a number; re-create the fit with "
                            "`scaling fit ... --out`")
    needed, positive = REQUIRED_PARAMS.get(result.spec.form, ((), ()))
    missing = [k for k in needed if k not in result.params]
    if missing:
        raise DataError(f"{where}: a {result.spec.form} fit needs parameter(s) {missing}; the file has "
                        f"{sorted(result.params)}")
    absent = [k for k in needed if not math.isfinite(result.params[k])]
    if absent:
        raise DataError(f"{where}: parameter(s) {absent} are null or not finite: this fit has no usable law; "
                        "re-create it with `scaling fit ... --out`")
    _check_shapes(result, where)
    bad = [f"{k} = {result.params[k]:g}" for k in positive if not result.params[k] > 0]
    if bad:
        raise DataError(f"{where}: {', '.join(bad)}: a {result.spec.form} law needs these positive; this is not "
                        "a usable fit")


def _check_shapes(result: FitResult, where: str) -> None:
    """The optional parts later commands read: ranges of two numbers, objects where objects belong."""
    def numbers(value, n=None) -> bool:
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                      for v in value)
        return ok and (n is None or len(value) == n)

    problems = []
    if result.fit_range is not None and not (isinstance(result.fit_range, dict) and all(
            numbers(v, 2) for v in result.fit_range.values())):
        problems.append("'fit_range' must map N, D, C to [low, high]")
    if result.intervals is not None and not (isinstance(result.intervals, dict) and all(
            numbers(v, 2) for v in result.intervals.values())):
        problems.append("'intervals' must map names to [low, high]")
    if result.samples is not None and not (isinstance(result.samples, dict) and all(
            numbers(v) for v in result.samples.values())):
        problems.append("'samples' must map names to lists of numbers")
    for name in ("bootstrap", "details"):
        value = getattr(result, name)
        if value is not None and not isinstance(value, dict):
            problems.append(f"'{name}' must be an object")
    if not all(isinstance(d, dict) and {"code", "severity", "message"} <= set(d) for d in result.diagnostics):
        problems.append("'diagnostics' must be a list of {code, severity, message}")
    if problems:
        raise DataError(f"{where}: {'; '.join(problems)}; re-create the fit with `scaling fit ... --out`")


def _clean(obj):
    """JSON has no NaN/inf: they are written as null (the fit's diagnostics name each one)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _clean(obj.item())
    return obj


def _unclean(obj):
    if obj is None:
        return float("nan")
    if isinstance(obj, str) and obj in ("nan", "inf", "-inf"):  # files from before null was used
        return float(obj)
    if isinstance(obj, dict):
        return {k: _unclean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unclean(v) for v in obj]
    return obj
