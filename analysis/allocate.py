"""From a fit and a compute budget: the compute-optimal N and D, the loss they buy, and a model shape.

The shape comes from `scaling.shapes.choose_shape`, the chooser the sweep runner uses, which targets
total parameters (embeddings included). For a fit in the non-embedding convention the target is
raised by the chosen shape's embedding size until that settles, so the shape's non-embedding count is
near N_opt.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from analysis import frontier
from analysis.result import FitResult
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

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def allocate(result: FitResult, budget: float, vocab_size: int = 256) -> Allocation:
    if not (np.isfinite(budget) and budget > 0):
        raise DataError(f"budget must be a positive number of FLOPs, got {budget}")
    if not frontier.has_frontier(result.spec.form):
        raise DataError(f"a {result.spec.method} fit of form {result.spec.form!r} gives no compute-optimal "
                        "allocation; fit with --method parametric, vpnls, isoflop, envelope or kaplan (nd)")
    at = {k: float(v) for k, v in frontier.optimum(result, budget).items()}
    bounds = frontier.optimum_intervals(result, budget)
    intervals = {k: (float(np.ravel(lo)[0]), float(np.ravel(hi)[0])) for k, (lo, hi) in bounds.items()}
    notes = []
    if result.spec.form == "power_law":
        notes.append("D = C / (6 N_opt): the D_opt(C) power law was fitted separately")
    shape = _shape(at["N_opt"], vocab_size, result.spec.n_convention, notes)
    loss = at["L_opt"] if np.isfinite(at["L_opt"]) else None
    return Allocation(C=float(budget), N_opt=at["N_opt"], D_opt=at["D_opt"], L_opt=loss,
                      tokens_per_param=at["tokens_per_param"], n_convention=result.spec.n_convention,
                      intervals=intervals, shape=shape, notes=tuple(notes))


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
