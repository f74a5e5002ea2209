"""Load a table of runs (sweep `results.parquet`, a CSV, or a DataFrame) into N, D, loss, C arrays.

Two layouts are understood:
  * a sweep's results (columns `n_params`, `tokens`, `final_val_loss`, `flops_*`, `status`, ...): only
    completed runs are kept, N follows `n_convention`, C follows `flops`;
  * any other table with columns `N`, `D`, `loss` and optionally `C`, `run_id`, `budget`; `columns`
    maps those names to the table's own (e.g. {"N": "Model Size", "C": "Training FLOP"}).
If D is missing and C is given, D = C / (6 N); if N is missing and C and D are given (isoFLOP tables
published as budget, tokens, loss), N = C / (6 D); the table's notes say so. If C is missing, C = 6 N D.
The loss a table holds is named (`loss_label`) so that figures and tables never call a training loss or a
published smoothed loss "final validation loss".

Tuned rows (`best_of`, for tables with an `lr` column, e.g. a sweep with an lr list): a point is the rows
that share N, D and every other setting the table records (SETTINGS: batch size, warmup, weight decay,
...), so they differ only in lr and seed. "lr" (the default when some point has several lrs) first
averages the loss over seeds at each (point, lr) (seed repeats are noise, and the minimum over seeds
would be biased low), then keeps the lr with the lowest loss at each point: Porian et al. (2024)'s tuned
setting. Every point's lrs and losses are kept in `lr_choices` (for the report and the edge diagnostic).
"none" keeps every row as it is, seeds as repeats. The notes say how many rows each step removed.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from scaling.accounting import FLOPS_COLUMNS, N_CONVENTIONS
from scaling.errors import DataError
from scaling.run_status import COMPLETED

if TYPE_CHECKING:
    import pandas as pd

SWEEP_LOSS_LABEL = "final validation loss (nats/token)"
BEST_OF = ("lr", "none")
# Columns that make rows at one (N, D) different experiments, apart from lr and seed (sweeps record them).
SETTINGS = ("batch_size", "seq_len", "warmup_steps", "weight_decay", "min_lr_ratio", "beta1", "beta2", "grad_clip",
            "schedule", "decay_fraction", "decay_shape", "mlp", "tie_embeddings", "d_model", "n_layers", "vocab_size")


@dataclasses.dataclass(frozen=True)
class LrChoice:
    """The lrs tried at one point (N, D and settings) with their (seed-mean) losses, and the one kept."""

    N: float
    D: float
    budget: float  # nan where unknown
    lrs: tuple[float, ...]  # ascending
    losses: tuple[float, ...]
    best: float

    @property
    def at_edge(self) -> bool:
        """The best lr is the smallest or the largest tried: the optimum may lie beyond the grid."""
        return self.best in (self.lrs[0], self.lrs[-1])


@dataclasses.dataclass(frozen=True, eq=False)
class RunTable:
    """Validated runs: one row per (N, D) point. `group` names the unit a bootstrap resamples
    (the parent run for checkpoints or cooldown branches of one run, else the row itself)."""

    N: np.ndarray
    D: np.ndarray
    loss: np.ndarray
    C: np.ndarray
    labels: np.ndarray  # str per row: run_id, or "row i" (0-based data row of the source)
    group: np.ndarray  # str per row
    budget: np.ndarray  # nominal budget per row, nan where unknown
    source: str = "<table>"
    n_convention: str = "total"
    flops: str = "given"
    d_derived: bool = False
    notes: tuple[str, ...] = ()
    loss_label: str = "loss"
    vocab_size: int | None = None
    lr_choices: tuple[LrChoice, ...] = ()  # best_of="lr": each point's lr grid and the lr kept

    def __len__(self) -> int:
        return len(self.N)

    def __repr__(self) -> str:
        return (f"<RunTable {len(self)} points from {self.source}: N convention {self.n_convention}, "
                f"C {self.flops}, loss {self.loss_label}>")

    def to_frame(self):
        """One row per point: N, D, C, loss, budget, label and bootstrap group."""
        import pandas as pd

        return pd.DataFrame({"N": self.N, "D": self.D, "C": self.C, "loss": self.loss, "budget": self.budget,
                             "label": self.labels, "group": self.group})

    def _repr_html_(self) -> str:
        import html

        return f"<div><p>{html.escape(repr(self))}</p>{self.to_frame().to_html(index=False, border=0)}</div>"

    @property
    def data_hash(self) -> str:
        """Hash of the points themselves (N, D, loss, C, group), not of the file they came from."""
        h = hashlib.sha256()
        for arr in (self.N, self.D, self.loss, self.C):
            h.update(np.ascontiguousarray(arr, dtype="<f8").tobytes())
        h.update("\x00".join(self.group.tolist()).encode())
        return h.hexdigest()[:16]

    def subset(self, mask: np.ndarray) -> RunTable:
        idx = np.asarray(mask)
        pick = lambda a: a[idx]
        return dataclasses.replace(self, N=pick(self.N), D=pick(self.D), loss=pick(self.loss),
                                   C=pick(self.C), labels=pick(self.labels), group=pick(self.group),
                                   budget=pick(self.budget))

    def has_repeated_groups(self) -> bool:
        return len(np.unique(self.group)) < len(self.group)


def load_runs(source: str | Path | pd.DataFrame, columns: dict[str, str] | None = None,
              n_convention: str = "total", flops: str | None = None, final_only: bool = False,
              drop_invalid: bool = False, loss_label: str | None = None, best_of: str | None = None) -> RunTable:
    """Read and validate a table of runs. Rows with non-finite or non-positive N, D, loss or C are an
    error naming the rows, unless `drop_invalid` (then they are dropped and listed in `notes`).
    `final_only` keeps the last row (largest D) of each run_id, for tables of whole training curves.
    `best_of` ("lr", "none", or None: "lr" when some point has several lrs) picks the tuned rows."""
    import pandas as pd

    if best_of is not None and best_of not in BEST_OF:
        raise DataError(f"unknown --best-of {best_of!r}; use one of {', '.join(BEST_OF)}")
    if n_convention not in N_CONVENTIONS:
        raise DataError(f"unknown N convention {n_convention!r}; use one of {sorted(N_CONVENTIONS)}")
    if flops is not None and flops not in FLOPS_COLUMNS:
        raise DataError(f"unknown FLOP formula {flops!r}; use one of {sorted(FLOPS_COLUMNS)}")
    name = "<DataFrame>" if isinstance(source, pd.DataFrame) else str(source)
    df = source.copy() if isinstance(source, pd.DataFrame) else _read(Path(source))
    df = df.reset_index(drop=True)
    df["_row"] = [f"row {i}" for i in range(len(df))]
    if columns:
        missing = [col for col in columns.values() if col not in df.columns]
        if missing:
            raise DataError(f"{name}: column(s) {missing} named in --columns not found; "
                            f"the table has {_user_columns(df)}")
        df = df.rename(columns={src: dst for dst, src in columns.items()})
    notes: list[str] = []
    sweep = "n_params" in df.columns or "final_val_loss" in df.columns
    label = loss_label or (SWEEP_LOSS_LABEL if sweep else (columns or {}).get("loss", "loss"))
    if sweep:
        df, flops_used = _from_sweep(df, name, n_convention, flops, notes)
    else:
        df, flops_used = _from_generic(df, name, flops, notes)
        if n_convention != "total":
            notes.append(f"N convention {n_convention!r} taken as given: this table has a single N column")
    d_derived = any(n.startswith("D derived as C/(6N)") for n in notes)

    if final_only and "run_id" in df.columns:
        before = len(df)
        df = df.sort_values(["run_id", "D"], kind="stable").groupby("run_id", sort=False).tail(1)
        df = df.sort_index()
        notes.append(f"kept the final row of each run: {len(df)} of {before} rows")

    df = _check_values(df, name, drop_invalid, notes)
    if len(df) == 0:
        raise DataError(f"{name}: no usable rows (need N, D, loss > 0 and finite)")
    df, lr_choices = _tuned(df, name, best_of, notes)
    labels = (df["run_id"].astype(str) if "run_id" in df.columns else df["_row"]).to_numpy(dtype=object)
    group = _groups(df)
    budget = (pd.to_numeric(df["budget"], errors="coerce").to_numpy(dtype=float)
              if "budget" in df.columns else np.full(len(df), np.nan))
    return RunTable(N=df["N"].to_numpy(float), D=df["D"].to_numpy(float), loss=df["loss"].to_numpy(float),
                    C=df["C"].to_numpy(float), labels=labels.astype(str), group=group, budget=budget,
                    source=name, n_convention=n_convention, flops=flops_used, d_derived=d_derived,
                    notes=tuple(notes), loss_label=str(label), vocab_size=_vocab_size(df), lr_choices=lr_choices)


def from_arrays(N, D, loss, C=None, run_id=None, budget=None, source: str = "<arrays>") -> RunTable:
    """A RunTable straight from arrays (synthetic data, tests)."""
    import pandas as pd

    frame = {"N": np.asarray(N, float), "D": np.asarray(D, float), "loss": np.asarray(loss, float)}
    if C is not None:
        frame["C"] = np.asarray(C, float)
    if run_id is not None:
        frame["run_id"] = list(run_id)
    if budget is not None:
        frame["budget"] = np.asarray(budget, float)
    table = load_runs(pd.DataFrame(frame))
    return dataclasses.replace(table, source=source)


def drop_highest_loss(table: RunTable, k: int) -> tuple[RunTable, tuple[str, ...]]:
    """Remove the k rows with the highest loss (Epoch drop the 5 highest as outliers)."""
    if k < 0:
        raise DataError(f"--drop-highest must be >= 0, got {k}")
    if k == 0:
        return table, ()
    if k >= len(table):
        raise DataError(f"cannot drop the {k} highest-loss rows of a table with {len(table)} rows")
    order = np.argsort(-table.loss, kind="stable")
    keep = np.ones(len(table), bool)
    keep[order[:k]] = False
    return table.subset(keep), tuple(table.labels[order[:k]])


def _read(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.exists():
        raise DataError(f"{path}: no such file; pass a results.parquet or a CSV of runs")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path)
    except Exception as err:  # pandas raises many types; all mean the same thing to the user
        raise DataError(f"{path}: could not read the table ({type(err).__name__}: {err})") from err
    raise DataError(f"{path}: unknown table format {suffix!r}; use .parquet or .csv")


def _from_sweep(df, name, n_convention, flops, notes):
    """Map a sweep's results.parquet onto N, D, loss, C."""
    if "status" in df.columns:
        done = df["status"].astype(str) == COMPLETED
        if (~done).any():
            notes.append(f"skipped {int((~done).sum())} run(s) whose status is not '{COMPLETED}'")
        df = df[done].copy()
    n_col = N_CONVENTIONS[n_convention]
    need = [n_col, "tokens", "final_val_loss"]
    missing = [col for col in need if col not in df.columns]
    if missing:
        raise DataError(f"{name}: sweep results lack column(s) {missing} (N convention {n_convention!r})")
    available = [key for key, col in FLOPS_COLUMNS.items() if col in df.columns]
    if flops is None:
        flops = "exact" if "exact" in available else (available[0] if available else None)
    elif flops not in available:
        raise DataError(f"{name}: no {FLOPS_COLUMNS[flops]!r} column for --flops {flops}; "
                        f"this table records {available or 'no FLOP columns'}")
    out = df.rename(columns={n_col: "N", "tokens": "D", "final_val_loss": "loss"})
    if flops is None:
        out["C"] = 6.0 * out["N"] * out["D"]
        flops = "6ND (computed)"
        notes.append("no FLOP column: C = 6 N D")
    else:
        out["C"] = df[FLOPS_COLUMNS[flops]]
    if "parent_run_id" in df.columns:
        out["_parent"] = df["parent_run_id"]
    return out, flops


def _from_generic(df, name, flops, notes):
    if flops is not None:
        notes.append(f"--flops {flops} ignored: the table has a single C column")
    if "N" not in df.columns and "C" in df.columns and "D" in df.columns:
        df["N"] = df["C"] / (6.0 * df["D"])
        notes.append("N derived as C/(6D): the table gives compute and tokens, not model size")
    missing = [col for col in ("N", "loss") if col not in df.columns]
    if missing:
        raise DataError(f"{name}: missing column(s) {missing}; map them with --columns, "
                        f"e.g. --columns N=\"Model Size\" (the table has {_user_columns(df)}); a table of "
                        "budget, tokens and loss needs C and D mapped (N = C/(6D))")
    if "D" not in df.columns:
        if "C" not in df.columns:
            raise DataError(f"{name}: need a D (tokens) or a C (FLOPs) column; map one with --columns")
        df["D"] = df["C"] / (6.0 * df["N"])
        notes.append("D derived as C/(6N): the table gives compute and model size, not tokens")
        return df, "given"
    if "C" not in df.columns:
        import pandas as pd
        n, d = (pd.to_numeric(df[k], errors="coerce").to_numpy(float) for k in ("N", "D"))
        with np.errstate(over="ignore", invalid="ignore"):
            df["C"] = 6.0 * n * d
        overflow = np.isinf(df["C"].to_numpy(float)) & np.isfinite(n) & np.isfinite(d)  # bad inputs: named below
        if overflow.any():
            raise DataError(f"{name}: C = 6ND overflows for {int(overflow.sum())} row(s) (e.g. N = "
                            f"{float(df['N'][overflow].iloc[0]):.3g}, D = {float(df['D'][overflow].iloc[0]):.3g}); "
                            "N must be parameters and D tokens, not scaled values")
        return df, "6ND (computed)"
    return df, "given"


def _check_values(df, name, drop_invalid, notes):
    import pandas as pd

    cols = ["N", "D", "loss", "C"]
    values = df[cols].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    bad = ~(np.isfinite(values) & (values > 0)).all(axis=1)
    if not bad.any():
        return df
    rows = df.loc[bad, "run_id"].astype(str) if "run_id" in df.columns else df.loc[bad, "_row"]
    which = [f"{r} ({', '.join(c for c, ok in zip(cols, v) if not (np.isfinite(ok) and ok > 0))})"
             for r, v in zip(rows, values[bad])]
    shown = "; ".join(which[:8]) + (f"; and {len(which) - 8} more" if len(which) > 8 else "")
    if not drop_invalid:
        raise DataError(f"{name}: {len(which)} row(s) with non-finite or non-positive values: {shown} "
                        f"(rows count from 0 after the header); fix them or pass --drop-invalid")
    notes.append(f"dropped {len(which)} invalid row(s): {shown}")
    df = df[~bad].copy()
    df[cols] = values[~bad]
    return df


def _tuned(df, name: str, best_of: str | None, notes: list) -> tuple:
    """The rows `best_of` keeps, and each point's lr choice (see the module docstring)."""
    if best_of == "none" or (best_of is None and "lr" not in df.columns):
        if "lr" in df.columns and _several_lrs(df):
            notes.append("--best-of none: kept every lr's rows; a fit through untuned runs describes an lr-averaged "
                         "loss, not the tuned one")
        return df, ()
    if "lr" not in df.columns:
        raise DataError(f"{name}: --best-of lr needs an lr column and this table has none; pass --best-of none")
    if best_of is None and not _several_lrs(df):
        return df, ()
    df = _mean_over_seeds(df, notes)
    return _best_lr(df, notes)


def _point_columns(df) -> list[str]:
    return ["N", "D"] + [col for col in SETTINGS if col in df.columns]


def _several_lrs(df) -> bool:
    return bool((df.groupby(_point_columns(df), dropna=False)["lr"].nunique() > 1).any())


def _mean_over_seeds(df, notes: list):
    """One row per (point, lr): the seed-mean loss, labelled with every run it averages."""
    if "seed" not in df.columns:
        return df
    keys = _point_columns(df) + ["lr"]
    grouped = df.groupby(keys, dropna=False, sort=False)
    if (grouped.size() == 1).all():
        return df
    before = len(df)
    run_ids = df["run_id"].astype(str) if "run_id" in df.columns else df["_row"]
    parents = df["_parent"].where(df["_parent"].notna(), run_ids) if "_parent" in df.columns else run_ids
    df = df.assign(_ids=run_ids, _parents=parents.astype(str))
    grouped = df.groupby(keys, dropna=False, sort=False)
    merged = grouped.head(1).copy()
    merged["loss"] = grouped["loss"].transform("mean")[merged.index]
    merged["_ids"] = grouped["_ids"].transform(lambda ids: "+".join(ids))[merged.index]
    merged["_parents"] = grouped["_parents"].transform(lambda ids: "+".join(sorted(set(ids))))[merged.index]
    merged = merged.assign(run_id=merged["_ids"], _parent=merged["_parents"]).drop(columns=["_ids", "_parents"])
    notes.append(f"averaged the loss over seeds at each (N, D, lr): {before} rows -> {len(merged)}")
    return merged


def _best_lr(df, notes: list):
    """Keep the lowest-loss lr at each point; record every point's lr grid."""
    keys = _point_columns(df)
    best_index = df.groupby(keys, dropna=False, sort=False)["loss"].idxmin()
    choices = []
    for _, group in df.groupby(keys, dropna=False, sort=False):
        group = group.sort_values("lr", kind="stable")
        best = group.loc[group["loss"].idxmin()]
        budget = _float_or_nan(best.get("budget"))
        choices.append(LrChoice(float(best["N"]), float(best["D"]), budget, tuple(group["lr"].astype(float)),
                                tuple(group["loss"].astype(float)), float(best["lr"])))
    kept = df.loc[sorted(best_index.to_numpy())]
    if len(kept) < len(df):
        notes.append(f"--best-of lr: kept the lowest-loss lr at each of {len(kept)} points (N, D and settings), "
                     f"dropped {len(df) - len(kept)} of {len(df)} rows")
    return kept, tuple(choices)


def _float_or_nan(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _groups(df) -> np.ndarray:
    """Bootstrap unit per row: parent run for cooldown branches, else run_id, else the row."""
    if "_parent" in df.columns and "run_id" in df.columns:
        parent = df["_parent"].where(df["_parent"].notna(), df["run_id"])
        return parent.astype(str).to_numpy(dtype=object).astype(str)
    if "run_id" in df.columns:
        return df["run_id"].astype(str).to_numpy(dtype=object).astype(str)
    return df["_row"].to_numpy(dtype=object).astype(str)


def _vocab_size(df) -> int | None:
    """The runs' vocabulary when the table records a single one (sweep results do)."""
    if "vocab_size" not in df.columns:
        return None
    values = df["vocab_size"].dropna().unique()
    return int(values[0]) if len(values) == 1 and float(values[0]) > 0 else None


def _user_columns(df) -> list[str]:
    return [c for c in df.columns if not str(c).startswith("_")]
