"""Run configuration: frozen dataclasses loaded from TOML plus `key=value` overrides.

A config has five sections, `model`, `data`, `train`, `checkpoint` and `log` (tracking). Unknown keys, wrong
types and values outside the range a field declares (`option(..., check=RULE)`) are rejected with the key named;
a sweep spec's [hparams] reads its values with the same rules (`check_value`), so both refuse them alike.
`resolve` fills the fields that depend on the data (vocabulary size), on the backend (the compute dtype) or on
other fields (d_ff, steps from tokens); a run is identified by the hash of its resolved config.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Callable, Collection

from scaling.errors import ConfigError

SCHEDULES = ("cosine", "wsd", "constant")
DECAY_SHAPES = ("linear", "1-sqrt")
MLP_KINDS = ("gelu", "swiglu")
DTYPES = ("auto", "float32", "bfloat16", "float16")
BIN_DTYPES = ("uint16", "uint32")  # token dtypes of nanoGPT-format .bin files
BYTE_VOCAB = 256  # the byte tokenizer's vocabulary; a BPE vocabulary must be larger
HF_PREFIX = "hf:"  # data.tokenizer = "hf:PATH": a local Hugging Face tokenizer.json
WANDB_FORBIDDEN = ("/", "\\", "#", "?", "%", ":")  # characters W&B refuses in a project name
EVAL_BATCH = 16  # sequences per validation batch: the validation set is the same for every run


@dataclasses.dataclass(frozen=True)
class Rule:
    """The range a field's values must lie in, declared once on the field (`option(..., check=RULE)`) and
    applied by `check_range`, so a run config and a sweep spec refuse a value in the same words."""

    says: str  # completes "must be ...": "positive", "in [0, 1)"
    holds: Callable[[Any], bool]


POSITIVE = Rule("positive", lambda v: v > 0)
NONNEGATIVE = Rule(">= 0", lambda v: v >= 0)
FRACTION = Rule("in [0, 1)", lambda v: 0 <= v < 1)
UNIT_INTERVAL = Rule("in [0, 1]", lambda v: 0 <= v <= 1)
OPEN_UNIT_INTERVAL = Rule("in (0, 1)", lambda v: 0 < v < 1)


def one_of(choices: tuple[str, ...]) -> Rule:
    return Rule(f"one of {', '.join(choices)}", lambda v: v in choices)


def option(default: Any, meaning: str, check: Rule | None = None) -> Any:
    """A config field with its meaning, which `scaling train --help` lists (see `documented_keys`), and the
    range its values must lie in (None: any value of its type; a float must be finite all the same)."""
    return dataclasses.field(default=default, metadata={"help": meaning, "check": check})


def rule_of(cls: type, name: str) -> Rule | None:
    """The range declared on field `name` of dataclass `cls`, for a reader of the same quantity elsewhere."""
    return next(f.metadata.get("check") for f in dataclasses.fields(cls) if f.name == name)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    d_model: int = option(128, "width of the residual stream (model dimension)", check=POSITIVE)
    n_layers: int = option(2, "transformer blocks", check=POSITIVE)
    n_heads: int = option(4, "attention heads; d_model/n_heads must be even (rotary embeddings)", check=POSITIVE)
    d_ff: int | None = option(None, "MLP hidden width; unset: 4*d_model (gelu) or 8/3*d_model rounded up to 32 "
                                    "(swiglu)", check=POSITIVE)
    vocab_size: int | None = option(None, "embedding rows; unset: the tokenizer's vocabulary (may be larger, "
                                          "not smaller)", check=POSITIVE)
    mlp: str = option("gelu", "MLP kind", check=one_of(MLP_KINDS))
    tie_embeddings: bool = option(True, "share the input embedding matrix with the output head")
    dtype: str = option("auto", "compute dtype; auto is bfloat16 on GPU/TPU and float32 on CPU", check=one_of(DTYPES))
    rope_base: float = option(10000.0, "base of the rotary position embedding's wavelengths", check=POSITIVE)
    norm_eps: float = option(1e-6, "epsilon of the RMSNorm layers", check=POSITIVE)
    init_std: float = option(0.02, "std of the normal weight init (attention output: / sqrt(2*n_layers))",
                             check=POSITIVE)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    source: str = option("stdlib", "training text: stdlib (Python's own library source); a text, .parquet or .jsonl "
                                   "file or a directory of them; a datasets save_to_disk directory; a directory with "
                                   "nanoGPT train.bin/val.bin, or llm.c .bin shards")
    tokenizer: str = option("byte", "\"byte\", \"bpe:<vocab_size>\" (trained on the train split) or "
                                    "\"hf:<PATH>\" (a local Hugging Face tokenizer.json)")
    text_column: str = option("text", "the column holding the text in .parquet/.jsonl/save_to_disk sources")
    val_fraction: float = option(0.05, "fraction of documents held out for validation (chosen by a hash of each "
                                       "document's path)", check=OPEN_UNIT_INTERVAL)
    val_batches: int = option(8, f"validation batches of {EVAL_BATCH} sequences, the same at every eval",
                              check=POSITIVE)
    bin_dtype: str = option("uint16", "token dtype of nanoGPT-format train.bin/val.bin", check=one_of(BIN_DTYPES))
    cache_dir: str = option("", "tokenizer and token cache; empty: $SCALING_CACHE or ~/.cache/scaling")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    seq_len: int = option(128, "tokens per training sequence (the context length)", check=POSITIVE)
    batch_size: int = option(16, "global batch, in sequences, per optimizer step", check=POSITIVE)
    steps: int | None = option(None, "optimizer steps; give steps or tokens, not both", check=POSITIVE)
    tokens: int | None = option(None, "training tokens D instead of steps: steps = tokens / (batch_size * seq_len), "
                                      "rounded up", check=POSITIVE)
    lr: float = option(3e-3, "peak learning rate (AdamW)", check=POSITIVE)
    min_lr_ratio: float = option(0.1, "final lr / peak lr for cosine and wsd", check=UNIT_INTERVAL)
    warmup_steps: int = option(0, "steps of linear warmup up to lr (from lr/warmup_steps at step 0)",
                               check=NONNEGATIVE)
    schedule: str = option("cosine", "lr schedule after warmup (wsd: warmup-stable-decay)", check=one_of(SCHEDULES))
    decay_fraction: float = option(0.2, "wsd: fraction of the steps spent in the cooldown", check=UNIT_INTERVAL)
    decay_shape: str = option("linear", "wsd cooldown shape", check=one_of(DECAY_SHAPES))
    weight_decay: float = option(0.1, "AdamW decoupled weight decay, on matrices only (not norm scales)",
                                 check=NONNEGATIVE)
    beta1: float = option(0.9, "AdamW decay rate of the first moment", check=FRACTION)
    beta2: float = option(0.95, "AdamW decay rate of the second moment", check=FRACTION)
    grad_clip: float = option(1.0, "clip the global gradient norm to this; 0 turns clipping off", check=NONNEGATIVE)
    grad_accum: int = option(1, "micro-batches per step; batch_size must divide evenly", check=POSITIVE)
    seed: int = option(0, "seed of the weight init and of the batch sampler", check=NONNEGATIVE)
    eval_every: int = option(100, "steps between validation evaluations (the last step is always evaluated)",
                             check=POSITIVE)
    log_every: int = option(10, "steps between rows of metrics.jsonl and progress updates", check=POSITIVE)
    fsdp: bool = option(False, "shard parameters and optimizer state over the data axis (FSDP)")
    peak_flops: float | None = option(None, "declared peak FLOP/s per device, for MFU; unset: measured with a matmul",
                                      check=POSITIVE)


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    every: int = option(0, "steps between checkpoints; 0 saves only at the end", check=NONNEGATIVE)
    keep: int = option(2, "how many of the newest checkpoints to keep", check=POSITIVE)


@dataclasses.dataclass(frozen=True)
class LogConfig:
    """Experiment tracking (scaling.tracking): where metrics.jsonl's rows are also sent. Not part of the run id,
    so turning a tracker on for a rerun resumes the same run."""
    tensorboard: bool = option(False, "also write TensorBoard event files (pip install '.[tensorboard]')")
    tensorboard_dir: str = option("", "where the event files go, relative to the run directory; unset: "
                                      "RUN_DIR/tensorboard (a sweep: SWEEP_DIR/tensorboard/<run>)")
    wandb: str = option("", "a Weights & Biases project to also log to; unset: none (pip install '.[wandb]')")
    group: str = option("", "the W&B group; unset: none (a sweep: the sweep's name)")
    name: str = option("", "the W&B run name; unset: the run id (a sweep: the run's label)")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    log: LogConfig = LogConfig()


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "train": TrainConfig,
    "checkpoint": CheckpointConfig,
    "log": LogConfig,
}
NOT_IN_RUN_ID = ("log",)  # sections that say where a run reports, not what it trains


def documented_keys() -> list[tuple[str, Any, str]]:
    """(section.key, default, meaning) of every config key, from the fields themselves, so that the help
    cannot drift from the config: the meaning ends with the field's range ("; must be positive"), and a field
    declared without `option` has the meaning ""."""
    return [(f"{section}.{f.name}", f.default, _meaning(f)) for section, cls in SECTIONS.items()
            for f in dataclasses.fields(cls)]


def _meaning(field: dataclasses.Field) -> str:
    rule = field.metadata.get("check")
    return field.metadata.get("help", "") + (f"; must be {rule.says}" if rule else "")


@dataclasses.dataclass(frozen=True)
class Where:
    """Where keys were read, for the one error format of run configs and sweep specs:
    "<file>: key '<key>' <what is wrong and what to do>", or "config key ..." for a run config."""

    path: str = ""  # the file; "" for a run config, which may come from --set alone

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: key '{key}' {message}" if self.path else f"config key '{key}' {message}")


def field_names(cls: type, leave_out: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The keys a table read into dataclass `cls` may hold: its fields, less those the reader derives."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.name not in leave_out)


def check_keys(table: Any, key: str, known: Collection[str], where: Where) -> dict:
    """`table` when it is a table of known keys; else the error naming the table or its first unknown key
    (`key` is the table's own dotted name, "" at the top) and the keys it may hold."""
    if not isinstance(table, dict):
        raise where.error(key, "must be a table")
    for name in table:
        if name not in known:
            raise where.error(f"{key}.{name}" if key else name, f"is unknown; known keys here: {', '.join(known)}")
    return table


def _check_type(key: str, value: Any, annotation: Any, where: Where = Where()) -> Any:
    """Return `value` coerced to `annotation` (a field's type), or raise ConfigError naming `key`."""
    allowed = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    if value is None and type(None) in allowed:
        return None
    for typ in allowed:
        if typ is bool and isinstance(value, bool):
            return value
        if typ is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if typ is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if typ is str and isinstance(value, str):
            return value
    names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
    raise where.error(key, f"must be {names}, got {value!r} ({type(value).__name__})")


def check_range(key: str, value: Any, rule: Rule | None, where: Where = Where()) -> Any:
    """The one range check of run configs and sweep specs: `value` (already of its field's type; None passes)
    when it is finite and `rule` holds, else the error naming `key`."""
    if isinstance(value, float) and not math.isfinite(value):
        raise where.error(key, f"must be a finite number, got {value!r}")
    if value is not None and rule is not None and not rule.holds(value):
        raise where.error(key, f"must be {rule.says}, got {value!r}")
    return value


def check_value(key: str, value: Any, annotation: Any, rule: Rule | None, where: Where = Where()) -> Any:
    """A value read for a field of type `annotation` and range `rule`, coerced (an int given for a float)."""
    return check_range(key, _check_type(key, value, annotation, where), rule, where)


def read_fields(cls: type, table: Any, key: str, where: Where = Where()) -> dict[str, Any]:
    """A table's values for dataclass `cls`: keys known from its fields, types from their annotations."""
    hints = typing.get_type_hints(cls)
    check_keys(table, key, field_names(cls), where)
    return {name: _check_type(f"{key}.{name}", value, hints[name], where) for name, value in table.items()}


def from_dict(raw: dict[str, Any]) -> RunConfig:
    """Build a RunConfig from nested dicts, rejecting unknown sections, keys and wrong types."""
    check_keys(raw, "", SECTIONS, Where())
    sections = {name: SECTIONS[name](**read_fields(SECTIONS[name], body, name)) for name, body in raw.items()}
    config = RunConfig(**sections)
    validate(config)
    return config


def to_dict(config: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def parse_setting(text: str, usage: str) -> tuple[list[str], Any]:
    """The one `--set KEY=VALUE` parser (run configs and sweep specs): the dotted key split into its parts,
    and the value read as TOML, falling back to a bare string; null or none is None, as TOML has no null.
    `usage` says what the caller expects, e.g. "section.key=value"."""
    if "=" not in text:
        raise ConfigError(f"--set expects {usage}, got '{text}'")
    dotted, value_text = (part.strip() for part in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {value_text}")["v"]
    except tomllib.TOMLDecodeError:
        value = value_text
    if value_text.lower() in ("none", "null"):
        value = None
    return dotted.split("."), value


def set_key(raw: dict, parts: list[str], value: Any, where: str) -> None:
    """Set a parsed `--set` in nested tables read from TOML (`where` names their file), making tables
    on the way."""
    *parents, leaf = parts
    table = raw
    for part in parents:
        table = table.setdefault(part, {})
        if not isinstance(table, dict):
            raise ConfigError(f"--set {'.'.join(parts)}: '{part}' is not a table in {where}")
    table[leaf] = value


def parse_override(text: str) -> tuple[str, str, Any]:
    """Parse a run config's `section.key=value`."""
    parts, value = parse_setting(text, "section.key=value")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"--set key must look like section.key (e.g. train.lr), got '{text.split('=', 1)[0]}'")
    return parts[0], parts[1], value


def load(path: str | Path | None = None, overrides: list[str] = ()) -> RunConfig:
    """Load a TOML config (or defaults when `path` is None) and apply `section.key=value` overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            raw = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot parse config {path}: {err}") from err
    for text in overrides:
        section, key, value = parse_override(text)
        set_key(raw, [section, key], value, str(path or "the default config"))
    return from_dict(raw)


def validate(config: RunConfig) -> None:
    """Check each field's declared range, then the constraints between fields that ranges alone do not catch.
    Checked when the config is loaded: a NaN learning rate or a negative seed used to be accepted and fail only
    inside the training loop, after the run directory existed."""
    for section, cls in SECTIONS.items():
        values = getattr(config, section)
        for f in dataclasses.fields(cls):
            check_range(f"{section}.{f.name}", getattr(values, f.name), f.metadata.get("check"))
    m, d, t = config.model, config.data, config.train
    if m.d_model % m.n_heads:
        raise ConfigError(f"model.d_model ({m.d_model}) must be divisible by model.n_heads ({m.n_heads})")
    if (m.d_model // m.n_heads) % 2:
        raise ConfigError(f"head dimension d_model/n_heads = {m.d_model // m.n_heads} must be even for rotary embeddings")
    bpe_vocab_size(d.tokenizer)
    if not d.text_column.strip():
        raise ConfigError("data.text_column is empty; name the column that holds the text (default 'text')")
    if t.steps is not None and t.tokens is not None:
        raise ConfigError("give train.steps or train.tokens, not both")
    if t.batch_size % t.grad_accum:
        raise ConfigError(f"train.batch_size ({t.batch_size}) must be divisible by train.grad_accum ({t.grad_accum})")
    _validate_log(config.log)


def _validate_log(log: LogConfig) -> None:
    """What W&B would refuse only once the run has started, and an event directory outside the run's reach."""
    if Path(log.tensorboard_dir).is_absolute():
        raise ConfigError(f"log.tensorboard_dir must be relative to the run directory, got '{log.tensorboard_dir}'; "
                          "leave it unset for RUN_DIR/tensorboard")
    bad = [c for c in WANDB_FORBIDDEN if c in log.wandb]
    if bad or len(log.wandb) > 128:
        raise ConfigError(f"log.wandb must be a W&B project name (at most 128 characters, none of "
                          f"{' '.join(WANDB_FORBIDDEN)}), got '{log.wandb}'")


def bpe_vocab_size(tokenizer: str) -> int | None:
    """data.tokenizer -> the BPE vocabulary size, or None for "byte" and "hf:PATH": the one check of the spec
    (whether PATH holds a tokenizer is a question of the data, answered when it is read)."""
    if tokenizer == "byte" or (tokenizer.startswith(HF_PREFIX) and tokenizer.removeprefix(HF_PREFIX).strip()):
        return None
    size = tokenizer.removeprefix("bpe:")
    if tokenizer.startswith("bpe:") and size.isdigit() and int(size) > BYTE_VOCAB:
        return int(size)
    raise ConfigError(f"data.tokenizer must be 'byte' or 'bpe:<vocab_size>' with vocab_size > {BYTE_VOCAB}, or "
                      f"'hf:<path to a tokenizer.json>', got '{tokenizer}'")


def default_d_ff(model: ModelConfig) -> int:
    if model.mlp == "swiglu":
        return -(-(8 * model.d_model // 3) // 32) * 32
    return 4 * model.d_model


def resolve(config: RunConfig, vocab_size: int, backend: str | None = None) -> RunConfig:
    """Fill vocab_size (from the tokenizer), d_ff, steps and the compute dtype ("auto" for `backend`,
    default JAX's) so that nothing is left implicit: a run's id is the hash of what this returns."""
    from scaling.model import compute_dtype  # here, so that reading a config does not import JAX

    m, t = config.model, config.train
    if m.vocab_size is not None and m.vocab_size < vocab_size:
        raise ConfigError(f"model.vocab_size ({m.vocab_size}) is smaller than the tokenizer's vocabulary ({vocab_size})")
    model = dataclasses.replace(m, vocab_size=m.vocab_size or vocab_size, d_ff=m.d_ff or default_d_ff(m),
                                dtype=compute_dtype(m.dtype, backend).name)
    tokens_per_step = t.batch_size * t.seq_len
    if t.steps is None and t.tokens is None:
        raise ConfigError("set train.steps or train.tokens (e.g. --set train.steps=200)")
    steps = t.steps if t.steps is not None else max(1, -(-t.tokens // tokens_per_step))
    if t.warmup_steps > steps:
        raise ConfigError(f"train.warmup_steps ({t.warmup_steps}) exceeds the run's {steps} steps")
    train = dataclasses.replace(t, steps=steps, tokens=None)
    return dataclasses.replace(config, model=model, train=train)


# Keys added after runs had been recorded: at its default such a key is left out of the run id, so that a run
# made before the key existed keeps its id and resumes, and a sweep re-plans the same runs.
KEYS_ADDED_LATER = (("data", "text_column"),)


def config_hash(config: RunConfig, length: int = 12) -> str:
    """Stable identifier of a (resolved) config: sha256 of its canonical JSON (less NOT_IN_RUN_ID, and
    KEYS_ADDED_LATER at their defaults)."""
    fields, defaults = to_dict(config), to_dict(RunConfig())
    for section in NOT_IN_RUN_ID:
        del fields[section]
    for section, key in KEYS_ADDED_LATER:
        if fields[section][key] == defaults[section][key]:
            del fields[section][key]
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def to_toml(config: RunConfig) -> str:
    """Serialise a config back to TOML (None values are omitted, as TOML has no null)."""
    lines = []
    for name, section in to_dict(config).items():
        lines.append(f"[{name}]")
        for key, value in section.items():
            if value is None:
                continue
            lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    return "\n".join(lines)
