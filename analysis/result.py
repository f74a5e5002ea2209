"""Fit specifications and results: frozen, and serialised to JSON in full so a fit can be re-run."""

from __future__ import annotations

import dataclasses
import html
import json
import math
from pathlib import Path
from typing import Any

from scaling.errors import DataError
from scaling.provenance import provenance as current_provenance

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


@dataclasses.dataclass(frozen=True, repr=False)  # the default repr would print every bootstrap replicate
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
    # The code that made the fit (scaling.provenance); None for a file written before fits recorded it.
    provenance: dict | None = dataclasses.field(default_factory=current_provenance)

    def value(self, name: str) -> float:
        """A parameter or derived quantity by name."""
        if name in self.params:
            return self.params[name]
        return self.derived[name]

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, **_clean(dataclasses.asdict(self))}

    def to_frame(self):
        """A tidy table: one row per parameter or derived quantity, with its estimate and interval."""
        return quantity_frame(self)

    def __repr__(self) -> str:
        return f"<FitResult {_headline(self)}>"

    def __str__(self) -> str:
        return format_fit(self)

    def _repr_html_(self) -> str:
        return fit_html(self)

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
        rest.setdefault("provenance", None)  # not this process' code: the file's, or unknown
        if rest.get("intervals") is not None:
            rest["intervals"] = {k: tuple(v) for k, v in rest["intervals"].items()}
        return cls(spec=spec, **rest)


@dataclasses.dataclass(frozen=True, repr=False)
class FitComparison:
    """Several methods fitted to one table (`analysis.fit(table, method=[...])`): the fits, the methods the
    data could not support (name -> reason) and the diagnostics that compare the methods' exponents."""

    results: tuple[FitResult, ...]
    failed: dict[str, str] = dataclasses.field(default_factory=dict)
    compared: tuple[dict, ...] = ()

    def __getitem__(self, method: str) -> FitResult:
        for result in self.results:
            if result.spec.method == method:
                return result
        raise KeyError(f"{method!r} was not fitted" + (f": {self.failed[method]}" if method in self.failed else ""))

    def to_frame(self):
        """One row per method: each quantity's estimate, its interval as QUANTITY_lo and QUANTITY_hi, and
        the reason (`error`) for a method the data could not support."""
        import pandas as pd

        rows = [_method_row(r) for r in self.results]
        rows += [{"method": name, "error": reason} for name, reason in self.failed.items()]
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        fitted = ", ".join(r.spec.method for r in self.results)
        return f"<FitComparison of {fitted}" + (f"; not fitted: {', '.join(self.failed)}>" if self.failed else ">")

    def __str__(self) -> str:
        blocks = [format_fit(r) for r in self.results] + [f"{k}: not fitted: {v}" for k, v in self.failed.items()]
        if self.compared:
            blocks.append("across methods:\n" + "\n".join(format_diagnostic(d) for d in self.compared))
        return "\n\n".join(blocks)

    def _repr_html_(self) -> str:
        diagnostics = _html_list("across methods", [_diagnostic_text(d) for d in self.compared])
        return f"<div>{_frame_html(self.to_frame())}{diagnostics}</div>"


@dataclasses.dataclass(frozen=True, repr=False)
class Moore:
    """What `analysis.moore` found: `summary` is moore.json's content (answers, doubling times, projections);
    trends, projection, placed and frontier are what the figure functions of analysis.trends.figures take.
    `figures` names those written to `out` (none without one); `warnings` are what the CLI prints to stderr."""

    summary: dict
    trends: dict
    projection: Any
    placed: Any
    frontier: Any
    anchor_year: int
    out: Any = None
    figures: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def answers(self) -> list[str]:
        return list(self.summary["answers"])

    def to_frame(self):
        """One row per series: doubling time in months with its 95% interval, growth per year, and whether
        it was fitted to data or stands in at its published rate."""
        import pandas as pd

        s = self.summary
        rows = [{"series": key, "doubling_months": months, "lo": s["doubling_months_ci"][key][0],
                 "hi": s["doubling_months_ci"][key][1], "growth_per_year": s["growth_per_year"].get(key),
                 "source": s["series"].get(key, {}).get("source")}
                for key, months in s["doubling_months"].items()]
        return pd.DataFrame(rows, columns=["series", "doubling_months", "lo", "hi", "growth_per_year", "source"])

    def __repr__(self) -> str:
        return f"<Moore {len(self.summary['doubling_months'])} series, {len(self.answers)} answers>"

    def __str__(self) -> str:
        return "\n".join(f"- {sentence}" for sentence in self.answers)

    def _repr_html_(self) -> str:
        return f"<div>{_html_list('answers', self.answers)}{_frame_html(self.to_frame())}</div>"


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


def quantity_frame(result: FitResult):
    """One row per parameter, then per derived quantity: estimate and bootstrap interval (NaN without one)."""
    import pandas as pd

    intervals = result.intervals or {}
    rows = [{"method": result.spec.method, "quantity": name, "kind": kind, "estimate": value,
             "lo": intervals.get(name, (math.nan, math.nan))[0], "hi": intervals.get(name, (math.nan, math.nan))[1]}
            for kind, values in (("parameter", result.params), ("derived", result.derived))
            for name, value in values.items()]
    return pd.DataFrame(rows, columns=["method", "quantity", "kind", "estimate", "lo", "hi"])


def _method_row(result: FitResult) -> dict:
    from analysis.diagnostics import has_invalid

    row = {"method": result.spec.method, "form": result.spec.form, "n_points": result.spec.n_points,
           "valid": not has_invalid(result.diagnostics)}
    for name, value in {**result.params, **result.derived}.items():
        row[name] = value
        if result.intervals and name in result.intervals:
            row[f"{name}_lo"], row[f"{name}_hi"] = result.intervals[name]
    return row | {"error": None}


def _headline(result: FitResult) -> str:
    spec = result.spec
    numbers = ", ".join(f"{k}={v:.4g}" for k, v in {**result.params, **result.derived}.items())
    boot = f", bootstrap {result.bootstrap['n_ok']}/{result.bootstrap['n']}" if result.bootstrap else ""
    return f"{spec.method} ({spec.form}) on {spec.n_points} points: {numbers}{boot}"


def fit_html(result: FitResult) -> str:
    """The notebook view: what was fitted to what, the quantities with intervals, then what to trust."""
    spec = result.spec
    head = (f"<p><b>{html.escape(spec.method)} fit</b> ({html.escape(spec.form)}, loss {html.escape(spec.loss)}) "
            f"on {spec.n_points} points of {html.escape(spec.source)}; N convention {html.escape(spec.n_convention)}, "
            f"C {html.escape(spec.flops)}, loss: {html.escape(spec.loss_label)}</p>")
    if result.intervals and result.bootstrap:
        head += f"<p>{html.escape(_bootstrap_line(result.bootstrap))}</p>"
    parts = [head, _frame_html(result.to_frame().drop(columns="method"))]
    if result.predictions:
        import pandas as pd

        parts.append(_frame_html(pd.DataFrame(result.predictions)))
    parts.append(_html_list("diagnostics", [_diagnostic_text(d) for d in result.diagnostics])
                 or "<p>diagnostics: none (no check flagged this fit)</p>")
    parts.append(_html_list("notes", list(result.notes)))
    return f"<div>{''.join(parts)}</div>"


def _frame_html(frame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", border=0)


def _html_list(title: str, items: list[str]) -> str:
    if not items:
        return ""
    return f"<p>{html.escape(title)}:</p><ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"


def _diagnostic_text(d: dict) -> str:
    return format_diagnostic(d).strip()


def format_diagnostic(d: dict) -> str:
    return f"  {'INVALID' if d['severity'] == 'invalid' else 'warning'} [{d['code']}] {d['message']}"


def format_fit(result: FitResult) -> str:
    """The text `scaling fit` prints (and `print(result)` shows): spec, quantities, predictions, diagnostics."""
    spec = result.spec
    lines = [f"{spec.method} fit ({spec.form}, loss {spec.loss}"
             + (f", delta {spec.delta:g}" if spec.delta else "") + f") on {spec.n_points} points of "
             f"{spec.source}", f"N convention {spec.n_convention}, C {spec.flops}, loss: {spec.loss_label}, "
             f"data hash {spec.data_hash}"]
    if spec.dropped:
        lines.append(f"dropped {len(spec.dropped)} row(s): {', '.join(spec.dropped[:10])}"
                     + (" ..." if len(spec.dropped) > 10 else ""))
    reliable = bool(result.bootstrap and result.bootstrap.get("reliable", False))
    if result.intervals and result.bootstrap:
        lines.append(_bootstrap_line(result.bootstrap))
    lines.append("")
    for name, value in {**result.params, **result.derived}.items():
        ci = (result.intervals or {}).get(name)
        text = f"   [{ci[0]:.4g}, {ci[1]:.4g}]" + ("" if reliable else " unreliable") if ci else ""
        lines.append(f"  {name:<10}{value:14.6g}{text}")
    if result.objective is not None:
        lines.append(f"  {'objective':<10}{result.objective:14.6g}")
    if result.predictions:
        lines += _prediction_lines(result.predictions, reliable)
    if result.diagnostics:
        lines += ["", "diagnostics:"] + [format_diagnostic(d) for d in result.diagnostics]
    else:
        lines += ["", "diagnostics: none (no check flagged this fit)"]
    if result.notes:
        lines.append("")
        lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def _bootstrap_line(b: dict) -> str:
    what = f"{b['n_ok']}/{b['n']} usable refits ({b.get('scheme', 'cases')} resampled, {b['n_units']} {b['unit']}s)"
    if b.get("reliable", False):
        return f"{b['level']:.0%} bootstrap intervals from {what}"
    return (f"bootstrap intervals UNRELIABLE: {b['n'] - b['n_ok']} of {b['n']} refits failed or were degenerate; "
            f"the ranges below come from the {b['n_ok']} survivors and are not {b['level']:.0%} intervals")


def _prediction_lines(predictions, reliable: bool) -> list[str]:
    lines = ["", f"  {'C':>10} {'N_opt':>11} {'D_opt':>11} {'L_opt':>8} {'D/N':>7}"]
    for row in predictions:
        loss = f"{row['L_opt']:8.4f}" if "L_opt" in row else f"{'-':>8}"
        lines.append(f"  {row['C']:10.3g} {row.get('N_opt', math.nan):11.4g} {row.get('D_opt', math.nan):11.4g} "
                     f"{loss} {row.get('tokens_per_param', math.nan):7.1f}")
        if "N_opt_lo" in row:
            lines.append(f"  {'':10} [{row['N_opt_lo']:.3g}, {row['N_opt_hi']:.3g}]"
                         + (f"  L [{row['L_opt_lo']:.4f}, {row['L_opt_hi']:.4f}]" if "L_opt_lo" in row else "")
                         + ("" if reliable else "  unreliable"))
    return lines
