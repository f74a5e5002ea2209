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


@dataclasses.dataclass(frozen=True)
class FitResult:
    """Parameters, objective and derived quantities; bootstrap intervals when resampled.
    `samples` holds the bootstrap replicates' parameters (name -> list), so intervals for any budget
    can be computed later (`allocate`)."""

    spec: FitSpec
    params: dict[str, float]
    objective: float | None = None
    derived: dict[str, float] = dataclasses.field(default_factory=dict)
    diagnostics: dict[str, Any] = dataclasses.field(default_factory=dict)
    notes: tuple[str, ...] = ()
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
        rest = {k: _unclean(v) for k, v in d.items() if k in fields}
        rest["notes"] = tuple(rest.get("notes", ()))
        if rest.get("intervals") is not None:
            rest["intervals"] = {k: tuple(v) for k, v in rest["intervals"].items()}
        return cls(spec=spec, **rest)


def load_fit(path: str | Path) -> FitResult:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such fit file; write one with `scaling fit ... --out {path}`")
    try:
        return FitResult.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise DataError(f"{path}: not a readable fit result ({err}); re-create it with `scaling fit`") from err


def _clean(obj):
    """JSON has no NaN/inf: store them as strings so they survive a round trip."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else repr(obj)
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _clean(obj.item())
    return obj


def _unclean(obj):
    if obj in ("nan", "inf", "-inf"):
        return float(obj)
    if isinstance(obj, dict):
        return {k: _unclean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unclean(v) for v in obj]
    return obj
