"""`results.parquet`: one row per finished run or WSD cooldown branch, the table the analysis reads.

Columns (types fixed by SCHEMA, so that an all-null column keeps its type):
  run_id, status ("completed", "diverged", "failed"), budget (isoflop: the spec's nominal FLOP budget;
  null otherwise), n_params, n_params_embedding, n_params_nonembedding, tokens (D consumed),
  unique_tokens, flops_6nd, flops_6nd_nonembed, flops_exact (C consumed, per formula), final_val_loss
  (nats), val_bpb, parent_run_id and branch_tokens (WSD branches: the stable run and the tokens it had
  consumed where the cooldown starts; null otherwise), then extras: branch_step, d_model, n_layers,
  n_heads, d_ff, vocab_size, seq_len, batch_size, lr, warmup_steps, schedule, steps, target_n, label,
  sweep_name, kind, wall_time_s, error, then every other hyperparameter of the run's config (seed,
  weight_decay, warmup_fraction = warmup_steps / steps, min_lr_ratio, beta1, beta2, grad_clip,
  grad_accum, decay_fraction and decay_shape (the wsd cooldown), mlp, tie_embeddings) and what the run
  measured: final_train_loss (mean of the last steps), epochs (tokens / unique training tokens),
  tokens_per_param (tokens / n_params), mfu and train_tokens_per_s. `lr` is the resolved peak lr, after
  the spec's width rule and lr_multiplier; a list axis of the spec shows as a column with several values.
WSD stable-phase runs are not rows: their loss is taken at a high learning rate and is no (N, D) point.
Failed runs carry their planned N and the tokens they consumed (0 when they never started). A run whose
summary.json is damaged stays visible as status "corrupt summary" (no loss; the analysis skips it).
Finished runs in runs/ that the current plan no longer lists (re-planned with `sweep run --force`) keep
their rows: collecting never drops a finished run.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from scaling import io
from scaling.accounting import FLOP_FORMULAS, N_COUNTS
from scaling.errors import ScalingError
from scaling.run_status import FINISHED
from sweeps import store

SCHEMA = pa.schema([
    ("run_id", pa.string()), ("status", pa.string()), ("budget", pa.float64()),
    ("n_params", pa.int64()), ("n_params_embedding", pa.int64()), ("n_params_nonembedding", pa.int64()),
    ("tokens", pa.int64()), ("unique_tokens", pa.int64()),
    ("flops_6nd", pa.float64()), ("flops_6nd_nonembed", pa.float64()), ("flops_exact", pa.float64()),
    ("final_val_loss", pa.float64()), ("val_bpb", pa.float64()),
    ("parent_run_id", pa.string()), ("branch_tokens", pa.int64()), ("branch_step", pa.int64()),
    ("d_model", pa.int64()), ("n_layers", pa.int64()), ("n_heads", pa.int64()), ("d_ff", pa.int64()),
    ("vocab_size", pa.int64()), ("seq_len", pa.int64()), ("batch_size", pa.int64()), ("lr", pa.float64()),
    ("warmup_steps", pa.int64()), ("schedule", pa.string()), ("steps", pa.int64()), ("target_n", pa.float64()),
    ("label", pa.string()), ("sweep_name", pa.string()), ("kind", pa.string()), ("wall_time_s", pa.float64()),
    ("error", pa.string()),
    ("seed", pa.int64()), ("weight_decay", pa.float64()), ("warmup_fraction", pa.float64()),
    ("min_lr_ratio", pa.float64()), ("beta1", pa.float64()), ("beta2", pa.float64()), ("grad_clip", pa.float64()),
    ("grad_accum", pa.int64()), ("decay_fraction", pa.float64()), ("decay_shape", pa.string()),
    ("mlp", pa.string()), ("tie_embeddings", pa.bool_()),
    ("final_train_loss", pa.float64()), ("epochs", pa.float64()), ("tokens_per_param", pa.float64()),
    ("mfu", pa.float64()), ("train_tokens_per_s", pa.float64()),
])
# Hyperparameters copied from the run's config as they are (records of older runs may lack newer keys).
TRAIN_HPARAMS = ("seed", "weight_decay", "min_lr_ratio", "beta1", "beta2", "grad_clip", "grad_accum", "decay_fraction",
                 "decay_shape")
MODEL_HPARAMS = ("mlp", "tie_embeddings")


def row(record: dict, summary: dict) -> dict:
    model, train = record["config"]["model"], record["config"]["train"]
    tokens = summary.get("tokens") or 0
    per_token = {k: record[k] / record["tokens_planned"] for k in FLOP_FORMULAS}
    return {
        "run_id": record["run_id"], "status": summary["status"], "budget": record.get("budget"),
        **{k: summary.get(k, record[k]) for k in N_COUNTS},
        "tokens": tokens, "unique_tokens": summary.get("unique_tokens"),
        **{k: summary.get(k, per_token[k] * tokens) for k in per_token},
        "final_val_loss": summary.get("final_val_loss"), "val_bpb": summary.get("val_bpb"),
        "parent_run_id": record.get("parent_run_id"), "branch_tokens": record.get("branch_tokens"),
        "branch_step": record.get("branch_step"),
        **{k: model[k] for k in ("d_model", "n_layers", "n_heads", "d_ff", "vocab_size")},
        **{k: train[k] for k in ("seq_len", "batch_size", "lr", "warmup_steps", "schedule", "steps")},
        "target_n": record.get("target_n"), "label": record.get("label"), "sweep_name": record.get("sweep_name"),
        "kind": record.get("kind"), "wall_time_s": summary.get("wall_time_s"), "error": summary.get("error"),
        **{k: train.get(k) for k in TRAIN_HPARAMS}, **{k: model.get(k) for k in MODEL_HPARAMS},
        "warmup_fraction": train["warmup_steps"] / train["steps"],
        **measured(summary, tokens, summary.get("n_params", record["n_params"])),
    }


def measured(summary: dict, tokens: int, n_params: int) -> dict:
    """What the run measured beyond its loss; epochs from the counts when an older summary lacks it."""
    unique = summary.get("unique_tokens")
    epochs = summary.get("epochs", tokens / unique if unique else None)
    return {"final_train_loss": summary.get("final_train_loss"), "epochs": epochs,
            "tokens_per_param": tokens / n_params, "mfu": summary.get("mfu"),
            "train_tokens_per_s": summary.get("train_tokens_per_s")}


def all_records(sweep_dir: str | Path) -> list[dict]:
    """The plan's records, then those of earlier plans' runs still in runs/."""
    records = store.load_records(sweep_dir)
    return records + store.unplanned_records(sweep_dir, {r["run_id"] for r in records})


def rows(sweep_dir: str | Path) -> list[dict]:
    found = []
    for record in all_records(sweep_dir):
        if record.get("role") == "parent":
            continue
        directory = store.run_dir(sweep_dir, record["run_id"])
        summary = store.read_summary(directory)
        if summary and summary.get("status") in FINISHED:
            found.append(row(record, summary))
        elif not store.is_locked(directory) and (problem := store.summary_problem(directory)):
            found.append(row(record, {"status": store.CORRUPT, "error": problem}))
    return found


def problems(sweep_dir: str | Path) -> list[str]:
    """One line per run whose summary.json is damaged (for `warning:` lines)."""
    found = []
    for record in all_records(sweep_dir):
        directory = store.run_dir(sweep_dir, record["run_id"])
        if not store.is_locked(directory) and (problem := store.summary_problem(directory)):
            found.append(f"run {record['run_id']}: {problem}")
    return found


def check_out(path: Path) -> None:
    """The results file may replace a results file, never a directory or some other file."""
    if path.is_dir():
        raise ScalingError(f"--out {path} is a directory; pass a file path, e.g. {path / 'results.parquet'}")
    if path.exists():
        with open(path, "rb") as handle:
            if handle.read(4) != b"PAR1":
                raise ScalingError(f"--out {path} exists and is not a parquet file; collect replaces only a results "
                                   "file: pass a new path")


def collect(sweep_dir: str | Path, out: str | Path | None = None) -> tuple[Path, int]:
    """Write the results table (atomically); returns its path and the number of rows."""
    import pyarrow.parquet as pq

    path = Path(out) if out else Path(sweep_dir) / "results.parquet"
    check_out(path)
    table = pa.Table.from_pylist(rows(sweep_dir), schema=SCHEMA)
    io.atomic_write(path, lambda handle: pq.write_table(table, handle))
    return path, table.num_rows
