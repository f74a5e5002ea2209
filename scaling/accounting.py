"""Parameter counts and training FLOPs under the named conventions of ARCHITECTURE.md.

N is reported three ways:
  n_params               every trainable parameter, embeddings included
  n_params_embedding     the token embedding, plus the output head when it is not tied
  n_params_nonembedding  the rest: attention, MLP and RMSNorm scales

C per training token is reported under three formulas:
  flops_6nd              6 * n_params
  flops_6nd_nonembed     6 * n_params_nonembedding
  flops_exact            3 * forward matmul FLOPs: the q/k/v/o projections, the MLP, causal attention
                         (QK^T and AV over the causal half, i.e. seq_len/2 keys per query on average)
                         and the output head; the embedding gather is not a matmul and is excluded.
                         The factor 3 is forward + backward (backward = 2 * forward for matmuls).
"""

from __future__ import annotations

from scaling.config import ModelConfig, default_d_ff

# The named C formulas: the key each is recorded under (summary, plan, results column) -> what it counts.
# flops_exact first: the default wherever one formula is picked.
FLOP_FORMULAS = {
    "flops_exact": "3 * forward matmul FLOPs (projections, MLP, causal-half attention, output head) * tokens",
    "flops_6nd": "6 * n_params * tokens",
    "flops_6nd_nonembed": "6 * n_params_nonembedding * tokens",
}
# The names --flops takes: each formula's key without its "flops_" prefix -> the key.
FLOPS_COLUMNS = {column.removeprefix("flops_"): column for column in FLOP_FORMULAS}
N_COUNTS = ("n_params", "n_params_embedding", "n_params_nonembedding")  # the keys param_counts returns
# The N conventions a fit may use (--n-convention): name -> the count it takes as N.
N_CONVENTIONS = {"total": "n_params", "nonembedding": "n_params_nonembedding"}


def _d_ff(model: ModelConfig) -> int:
    return model.d_ff or default_d_ff(model)


def _mlp_matrices(model: ModelConfig) -> int:
    return 3 if model.mlp == "swiglu" else 2


def param_counts(model: ModelConfig) -> dict[str, int]:
    """Exact trainable parameter counts of `scaling.model.Transformer` for this config."""
    if model.vocab_size is None:
        raise ValueError("param_counts needs model.vocab_size; resolve the config first")
    d, vocab = model.d_model, model.vocab_size
    attention = 4 * d * d  # fused qkv (3 d^2) + output projection (d^2), no biases
    mlp = _mlp_matrices(model) * d * _d_ff(model)
    norms = 2 * d  # two RMSNorm scales per block
    nonembedding = model.n_layers * (attention + mlp + norms) + d  # + final RMSNorm
    embedding = vocab * d * (1 if model.tie_embeddings else 2)
    return {
        "n_params": embedding + nonembedding,
        "n_params_embedding": embedding,
        "n_params_nonembedding": nonembedding,
    }


def forward_matmul_flops_per_token(model: ModelConfig, seq_len: int) -> int:
    """Forward-pass matmul FLOPs per token (2 FLOPs per multiply-add), causal attention halved."""
    d = model.d_model
    projections = 2 * 4 * d * d
    mlp = 2 * _mlp_matrices(model) * d * _d_ff(model)
    attention = 2 * 2 * d * seq_len // 2  # QK^T and AV, each 2*d per key, seq_len/2 keys on average
    head = 2 * d * model.vocab_size
    return model.n_layers * (projections + mlp + attention) + head


def flops_per_token(model: ModelConfig, seq_len: int) -> dict[str, int]:
    """Training FLOPs per token under each named formula."""
    counts = param_counts(model)
    return {
        "flops_6nd": 6 * counts["n_params"],
        "flops_6nd_nonembed": 6 * counts["n_params_nonembedding"],
        "flops_exact": 3 * forward_matmul_flops_per_token(model, seq_len),
    }


def training_flops(model: ModelConfig, seq_len: int, tokens: int) -> dict[str, float]:
    """Total training FLOPs for `tokens` tokens under each named formula."""
    return {name: float(per_token) * tokens for name, per_token in flops_per_token(model, seq_len).items()}
