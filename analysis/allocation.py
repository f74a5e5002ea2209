"""From a fit and a compute budget: the compute-optimal N and D, the loss they buy, and a model shape.

The shape comes from `scaling.shapes.choose_shape`, the chooser the sweep runner uses, which targets
total parameters (embeddings included). For a fit in the non-embedding convention the target is
raised by the chosen shape's embedding size until that settles, so the shape's non-embedding count is
near N_opt. The vocabulary is the fit's own (`spec.vocab_size`, recorded from the runs) unless given;
with neither there is no shape, since a guessed vocabulary can move the embedding by a large factor.
Each allocation says how far its budget, N_opt and D_opt lie beyond the data the fit saw.
"""

from __future__ import annotations

import dataclasses
import html

import numpy as np

from analysis import frontier
from analysis.prediction import check_max_extrapolation, extrapolation_factors
from analysis.result import FitResult, _clean, _frame_html, _html_list
from scaling.errors import DataError


@dataclasses.dataclass(frozen=True)
class Allocation:
    C: float
    N_opt: float
    D_opt: float
    L_opt: float | None
    tokens_per_param: float
    n_convention: str
    intervals: dict[str, tuple[float, float]]
    shape: dict | None
    notes: tuple[str, ...] = ()
    vocab_size: int | None = None  # the vocabulary the shape was chosen for
    extrapolation: dict[str, float] | None = None  # C, N_opt, D_opt: factor beyond the fit's range (None: unknown)
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return _clean(dataclasses.asdict(self))  # JSON has no NaN: an undefined interval end becomes null

    def to_frame(self):
        """One row per quantity (N_opt, D_opt, L_opt, tokens_per_param) with its interval, if any."""
        import pandas as pd

        rows = []
        for name in ("N_opt", "D_opt", "L_opt", "tokens_per_param"):
            lo, hi = self.intervals.get(name, (None, None))
            rows.append({"quantity": name, "estimate": getattr(self, name), "lo": lo, "hi": hi,
                         "extrapolation": (self.extrapolation or {}).get(name)})
        return pd.DataFrame(rows)

    def _repr_html_(self) -> str:
        shape = "no shape (no vocabulary)" if self.shape is None else ", ".join(f"{k} {v}" for k, v in self.shape.items())
        head = f"<p><b>allocation at C = {self.C:.3g} FLOPs</b> ({self.n_convention} N); shape: {html.escape(shape)}</p>"
        return (f"<div>{head}{_frame_html(self.to_frame())}{_html_list('warnings', list(self.warnings))}"
                f"{_html_list('notes', list(self.notes))}</div>")


def allocate(result: FitResult, budget: float, vocab_size: int | None = None,
             max_extrapolation: float = 100.0) -> Allocation:
    """N_opt, D_opt, L_opt (intervals when bootstrapped) and a shape at `budget` FLOPs. `vocab_size`
    overrides the fit's recorded vocabulary."""
    if not (np.isfinite(budget) and budget > 0):
        raise DataError(f"budget must be a positive number of FLOPs, got {budget}")
    if vocab_size is not None and not vocab_size > 0:
        raise DataError(f"--vocab-size must be a positive number of tokens, got {vocab_size}")
    check_max_extrapolation(max_extrapolation)
    if not frontier.has_frontier(result.spec.form):
        raise DataError(f"a {result.spec.method} fit of form {result.spec.form!r} gives no compute-optimal "
                        "allocation; fit with --method parametric, vpnls, isoflop, envelope or kaplan (nd)")
    at = {k: float(v) for k, v in frontier.optimum(result, budget).items()}
    bounds = frontier.optimum_intervals(result, budget)
    intervals = {k: (float(np.ravel(lo)[0]), float(np.ravel(hi)[0])) for k, (lo, hi) in bounds.items()}
    notes = []
    if result.spec.form == "power_law":
        notes.append("D = C / (6 N_opt): the D_opt(C) power law was fitted separately")
    vocab = vocab_size if vocab_size is not None else result.spec.vocab_size
    if vocab is None:
        shape = None
        notes.append("no shape: the fit does not record the runs' vocabulary; pass --vocab-size V "
                     "(e.g. 50304 for GPT-2's BPE)")
    else:
        shape = _shape(at["N_opt"], int(vocab), result.spec.n_convention, notes)
    extrapolation, warnings = _extrapolation(result, budget, at, max_extrapolation, notes)
    loss = at["L_opt"] if np.isfinite(at["L_opt"]) else None
    return Allocation(C=float(budget), N_opt=at["N_opt"], D_opt=at["D_opt"], L_opt=loss,
                      tokens_per_param=at["tokens_per_param"], n_convention=result.spec.n_convention,
                      intervals=intervals, shape=shape, notes=tuple(notes),
                      vocab_size=None if vocab is None else int(vocab), extrapolation=extrapolation,
                      warnings=warnings)


def _extrapolation(result: FitResult, budget: float, at: dict, max_extrapolation: float, notes: list):
    """Factor beyond the fitted range for the budget (against C), N_opt (against N) and D_opt (against D)."""
    factors = extrapolation_factors(result.fit_range, {"C": budget, "N": at["N_opt"], "D": at["D_opt"]})
    if factors is None:
        notes.append("extrapolation unknown: the fit file does not record the range of N, D and C it was fitted "
                     "on; re-fit with a current `scaling fit` to record it")
        return None, ()
    named = {"C": ("C", budget), "N": ("N_opt", at["N_opt"]), "D": ("D_opt", at["D_opt"])}
    out = {named[k][0]: float(v) for k, v in factors.items()}
    beyond = [f"{named[k][0]} = {named[k][1]:.3g} is {float(v):.3g}x outside the fitted {k} range "
              f"[{result.fit_range[k][0]:.3g}, {result.fit_range[k][1]:.3g}]"
              for k, v in factors.items() if float(v) > max_extrapolation]
    warnings = (("; ".join(beyond) + f" (more than {max_extrapolation:g}x): the allocation is extrapolated "
                 "far past the fit's data"),) if beyond else ()
    return out, warnings


def _shape(n_opt: float, vocab_size: int, convention: str, notes: list) -> dict | None:
    try:
        from scaling.shapes import choose_shape
    except ImportError:
        notes.append("no shape: scaling.shapes is not available in this installation")
        return None
    target = n_opt
    shape = choose_shape(target, vocab_size=vocab_size)
    if convention == "nonembedding":
        # choose_shape targets total N: add the embedding of the shape it lands on until that settles
        # (the embedding grows with the width the larger target picks).
        for _ in range(10):
            target = n_opt + (shape.n_params - shape.n_params_nonembedding)
            previous, shape = shape, choose_shape(target, vocab_size=vocab_size)
            if shape == previous:
                break
    out = dataclasses.asdict(shape)
    n_here = shape.n_params if convention == "total" else shape.n_params_nonembedding
    if abs(np.log(n_here / n_opt)) > np.log(1.1):
        notes.append(f"the nearest shape has {n_here:.3g} parameters ({convention}), "
                     f"{n_here / n_opt - 1:+.0%} from N_opt")
    return out
