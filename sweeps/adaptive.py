"""prior = "adaptive": isoFLOP budgets run smallest first, each centred on the optimum that the finished
budgets below it extrapolate to.

The centring rule, per budget in ascending order:
  * nothing finished below it (the smallest budget): the start law, isoflop.adaptive_start;
  * one finished budget below: the start law's exponent, shifted to pass through that budget's minimum;
  * two or more: the least-squares power law N_opt = k C^a through their minima.
A budget is ready once every budget below it has finished (every run completed, diverged or failed);
until then it is pending and has no runs. A finished budget's minimum is the vertex of the parabola of
loss against log N through its completed runs. When that vertex lies outside the sizes trained (or the
parabola opens downwards) it would be an extrapolation, so the budget's lowest-loss size stands in for it
(the edge, for a monotone profile: it moves the next centre the right way without trusting the parabola
beyond the data), and the stage records a warning that `sweep run` and `sweep plan` print. A stand-in
only steers while no finished budget has a true minimum: minima among the sizes, once there are any, are
the only ones the rule above uses (one: shifted start law; two or more: power law).

Each ready budget's centre is recorded in SWEEP_DIR/adaptive.json (with the minima it came from) before
its runs are planned; a recorded centre is used as recorded, so a re-run plans the same runs whatever
the results read now, and the file says how every budget was placed.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from scaling import io
from scaling.errors import ScalingError
from scaling.run_status import COMPLETED, FINISHED
from sweeps import store
from sweeps.spec import Spec

STATE_FILE = "adaptive.json"


@dataclasses.dataclass(frozen=True)
class Minimum:
    """Where one finished budget's loss is lowest, as the next budgets' centring uses it."""

    flops: float
    n_opt: float
    inside: bool  # the parabola vertex lies among the sizes (else n_opt is the lowest-loss size)
    warning: str = ""


@dataclasses.dataclass(frozen=True)
class Stage:
    """One budget's centre: n_opt None while it is pending."""

    flops: float
    n_opt: float | None
    how: str
    minima: tuple[Minimum, ...] = ()  # the finished budgets it was extrapolated from

    def to_dict(self) -> dict:
        return {"flops": self.flops, "n_opt": self.n_opt, "how": self.how,
                "from": [dataclasses.asdict(m) for m in self.minima]}


def budget_minimum(flops: float, n_params, losses) -> Minimum:
    """The parabola vertex in (log N, loss), or the lowest-loss size when the vertex is not among the sizes.
    A few lines of numpy rather than analysis.isoflop: the sweeps layer may not import analysis."""
    log_n, loss = np.log(np.asarray(n_params, float)), np.asarray(losses, float)
    if len(np.unique(log_n)) >= 3:
        c2, c1, _ = np.polyfit(log_n, loss, 2)
        if c2 > 0 and log_n.min() <= -c1 / (2 * c2) <= log_n.max():
            return Minimum(flops, float(np.exp(-c1 / (2 * c2))), True)
    best = float(np.exp(log_n[np.argmin(loss)]))
    return Minimum(flops, best, False,
                   f"budget {flops:.3g}: its parabola has no minimum among its sizes ({np.exp(log_n.min()):.3g} .. "
                   f"{np.exp(log_n.max()):.3g}); its lowest-loss size {best:.3g} stands in for the optimum")


def centre(start, minima: list[Minimum], flops: float) -> tuple[float, str]:
    """N_opt at `flops` from the finished budgets' minima (the rule in the module docstring), and how.
    Stand-ins (minima outside their sizes) steer only while no budget has a minimum among its sizes."""
    inside = [m for m in minima if m.inside]
    if len(inside) >= 2:
        a, log_k = np.polyfit(np.log([m.flops for m in inside]), np.log([m.n_opt for m in inside]), 1)
        named = ", ".join(f"{m.flops:.3g}" for m in inside)
        return float(math.exp(log_k) * flops ** a), f"power law through the minima of budgets {named} (a = {a:.3g})"
    if inside or minima:
        m = inside[0] if inside else minima[-1]
        what = "minimum" if m.inside else "lowest-loss size (its minimum lay outside its sizes)"
        return (m.n_opt * (flops / m.flops) ** start.exponent,
                f"start exponent {start.exponent:.3g} through budget {m.flops:.3g}'s {what} {m.n_opt:.3g}")
    return start.n_opt(flops), f"start law {start.text.removeprefix('adaptive, start ')}"


def finished_budgets(sweep_dir: Path | None) -> dict[float, tuple[list[float], list[float]]]:
    """Per budget whose every planned run has finished: (N, final validation loss) of its completed runs."""
    if sweep_dir is None or not (Path(sweep_dir) / "sweep.json").exists():
        return {}
    by_budget: dict[float, list[tuple[str, dict | None]]] = {}
    for record in store.load_records(sweep_dir):
        if record.get("budget") is not None:
            summary = store.read_summary(store.run_dir(sweep_dir, record["run_id"]))
            by_budget.setdefault(float(record["budget"]), []).append((record, summary))
    out = {}
    for flops, runs in by_budget.items():
        if all(summary and summary.get("status") in FINISHED for _, summary in runs):
            done = [(r["n_params"], r["config"]["train"]["lr"], s["final_val_loss"]) for r, s in runs
                    if s["status"] == COMPLETED and isinstance(s.get("final_val_loss"), (int, float))
                    and math.isfinite(s["final_val_loss"])]
            best = best_loss_per_size(done)
            out[flops] = (list(best), list(best.values()))
    return out


def best_loss_per_size(runs: list[tuple[float, float, float]]) -> dict[float, float]:
    """(N, lr, loss) of a budget's runs -> each size's loss at its best lr, seeds averaged first: the rule of
    `scaling fit --best-of lr` (analysis.loading), restated because sweeps may not import analysis. Untuned lrs
    would otherwise pull the parabola, and so the next budget's centre, off the tuned optimum."""
    by_point: dict[tuple[float, float], list[float]] = {}
    for n, lr, loss in runs:
        by_point.setdefault((n, lr), []).append(loss)
    best: dict[float, float] = {}
    for (n, _), losses in sorted(by_point.items()):
        best[n] = min(best.get(n, math.inf), sum(losses) / len(losses))
    return best


def read_stages(sweep_dir: Path | None) -> dict[float, Stage]:
    """The centres recorded in SWEEP_DIR/adaptive.json, by budget."""
    path = Path(sweep_dir) / STATE_FILE if sweep_dir is not None else None
    if path is None or not path.exists():
        return {}
    try:
        raw = io.read_json(path)
        return {float(s["flops"]): Stage(float(s["flops"]), float(s["n_opt"]), str(s["how"]),
                                         tuple(Minimum(**m) for m in s["from"])) for s in raw["stages"]}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ScalingError(f"{path} is unreadable ({type(err).__name__}: {err}); it records where each budget of "
                           "this adaptive sweep was centred: restore it, or start the sweep in a new --out") from None


def stages(spec: Spec, sweep_dir: Path | None = None) -> list[Stage]:
    """Every budget's centre, smallest budget first: recorded, derived from finished budgets, or pending."""
    iso = spec.isoflop
    recorded, finished = read_stages(sweep_dir), finished_budgets(sweep_dir)
    out, minima = [], []
    flops_sorted = sorted(b.flops for b in iso.budgets)
    for i, flops in enumerate(flops_sorted):
        if flops in recorded:
            stage = recorded[flops]
        elif all(below in finished for below in flops_sorted[:i]):
            n_opt, how = centre(iso.prior, minima, flops)
            stage = Stage(flops, n_opt, how, tuple(minima))
        else:
            stage = Stage(flops, None, f"pending: centred once budget {flops_sorted[i - 1]:.3g} finishes")
        out.append(stage)
        if flops in finished and finished[flops][0]:
            minima.append(budget_minimum(flops, *finished[flops]))
    return out


def with_centres(spec: Spec, stage_list: list[Stage]) -> Spec:
    """The spec with the ready budgets' centres filled in, for sweeps.planner.make_plan."""
    centres = tuple((s.flops, s.n_opt) for s in stage_list if s.n_opt is not None)
    return dataclasses.replace(spec, isoflop=dataclasses.replace(spec.isoflop, centres=centres))


def record(sweep_dir: Path, stage_list: list[Stage]) -> None:
    """Write the ready budgets' centres to SWEEP_DIR/adaptive.json (same centres, same bytes)."""
    ready = [s.to_dict() for s in stage_list if s.n_opt is not None]
    path = Path(sweep_dir) / STATE_FILE
    text = io.to_json({"stages": ready}) + "\n"
    if not path.exists() or path.read_text() != text:
        io.atomic_write(path, text)


def is_adaptive(spec: Spec) -> bool:
    return spec.isoflop is not None and spec.isoflop.adaptive


def describe(stage_list: list[Stage]) -> list[str]:
    """Lines for `sweep plan` and `sweep run`: each budget's centre and how it was found, then warnings."""
    lines = [f"C={s.flops:.3g}: " + (f"centre N_opt {s.n_opt:.3g} ({s.how})" if s.n_opt is not None else s.how)
             for s in stage_list]
    warnings = {m.warning for s in stage_list for m in s.minima if m.warning}
    return lines + [f"warning: {w}" for w in sorted(warnings)]
