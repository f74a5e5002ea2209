"""Decoder-only transformer in Flax NNX.

Pre-norm RMSNorm blocks, rotary position embeddings, causal softmax attention, GELU or SwiGLU MLP,
tied or untied embeddings. Parameters are float32; activations run in the compute dtype; logits and
the softmax are float32. The residual stream is kept as a (tokens, d_model) matrix so that every
projection is a plain 2-D matmul (XLA:CPU otherwise inserts slow transposes around 3-D ones).
Attention is `jax.nn.dot_product_attention` (cuDNN's fused kernel on GPU) or, on CPU, a blocked
causal form that skips most of the masked upper triangle; both compute the same function.
Names carry shapes: B batch, L sequence, T = B*L tokens, D d_model, H heads, K head dim, F d_ff, V vocab.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from scaling.config import ModelConfig


def compute_dtype(name: str, backend: str | None = None) -> jnp.dtype:
    """Resolve a dtype name; "auto" is bfloat16 on GPU/TPU and float32 on CPU."""
    if name == "auto":
        backend = backend or jax.default_backend()
        return jnp.dtype(jnp.float32 if backend == "cpu" else jnp.bfloat16)
    return jnp.dtype(name)


def rotary(x_BxLx___xK: jax.Array, base: float) -> jax.Array:
    """Rotate pairs (first half, second half) of each head by position-dependent angles.

    Positions run along axis 1 and head features along the last axis; any axes between (heads, or
    query/key and heads) share the angles."""
    length, head_dim = x_BxLx___xK.shape[1], x_BxLx___xK.shape[-1]
    inv_freq_K2 = 1.0 / base ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim)
    angle_LxK2 = jnp.arange(length, dtype=jnp.float32)[:, None] * inv_freq_K2[None, :]
    # cos on both halves; sin with the sign the half-swap needs: [x1, x2] -> [x1 c - x2 s, x2 c + x1 s].
    cos_LxK = jnp.concatenate([jnp.cos(angle_LxK2)] * 2, axis=-1)
    sin_LxK = jnp.concatenate([-jnp.sin(angle_LxK2), jnp.sin(angle_LxK2)], axis=-1)
    expand = (None,) * (x_BxLx___xK.ndim - 3)
    cos_LxK, sin_LxK = cos_LxK[(None, slice(None)) + expand], sin_LxK[(None, slice(None)) + expand]
    x = x_BxLx___xK.astype(jnp.float32)
    rotated = x * cos_LxK + jnp.roll(x, head_dim // 2, axis=-1) * sin_LxK
    return rotated.astype(x_BxLx___xK.dtype)


def blocked_causal_attention(q_BxHxLxK: jax.Array, k_BxHxLxK: jax.Array, v_BxHxLxK: jax.Array,
                             n_blocks: int) -> jax.Array:
    """Causal softmax attention (q pre-scaled) computed in `n_blocks` query blocks.

    Query block i attends to the keys up to its own end, so the masked scores right of each block
    are never computed: (n+1)/2n of the full L x L work. Scores and softmax are float32."""
    length = q_BxHxLxK.shape[2]
    block = length // n_blocks
    outputs = []
    for i in range(n_blocks):
        end = (i + 1) * block
        q_i, k_i, v_i = q_BxHxLxK[:, :, i * block:end], k_BxHxLxK[:, :, :end], v_BxHxLxK[:, :, :end]
        scores_BxHxQxS = jnp.einsum("bhqk,bhsk->bhqs", q_i, k_i, preferred_element_type=jnp.float32)
        visible_QxS = (jnp.arange(block)[:, None] + i * block) >= jnp.arange(end)[None, :]
        probs = jax.nn.softmax(jnp.where(visible_QxS, scores_BxHxQxS, -jnp.inf), axis=-1)
        outputs.append(jnp.einsum("bhqs,bhsk->bhqk", probs.astype(v_i.dtype), v_i))
    return outputs[0] if n_blocks == 1 else jnp.concatenate(outputs, axis=2)


def attention_blocks(length: int, target_block: int = 128) -> int:
    """Query blocks for the blocked CPU attention: blocks of about `target_block` positions."""
    n = max(1, length // target_block)
    while length % n:
        n -= 1
    return n


def attention_implementation(backend: str, dtype: jnp.dtype, head_dim: int) -> str:
    """"cudnn" (fused flash attention) on GPU where cuDNN supports the shape and dtype; "blocked" on
    CPU; otherwise XLA's reference attention."""
    if backend == "gpu" and dtype in (jnp.bfloat16, jnp.float16) and head_dim % 8 == 0 and head_dim <= 128:
        return "cudnn"
    return "blocked" if backend == "cpu" else "xla"


def _linear(d_in: int, d_out: int, std: float, dtype, rngs: nnx.Rngs) -> nnx.Linear:
    return nnx.Linear(d_in, d_out, use_bias=False, dtype=dtype, param_dtype=jnp.float32,
                      kernel_init=nnx.initializers.normal(std), rngs=rngs)


class Attention(nnx.Module):
    def __init__(self, cfg: ModelConfig, dtype, rngs: nnx.Rngs, implementation: str = "xla"):
        d = cfg.d_model
        self.n_heads, self.rope_base, self.implementation = cfg.n_heads, cfg.rope_base, implementation
        self.qkv = _linear(d, 3 * d, cfg.init_std, dtype, rngs)
        # GPT-2's residual scaling keeps the residual stream's variance independent of depth.
        self.out = _linear(d, d, cfg.init_std / (2 * cfg.n_layers) ** 0.5, dtype, rngs)

    def __call__(self, x_TxD: jax.Array, length: int) -> jax.Array:
        t, d = x_TxD.shape
        b, h, k = t // length, self.n_heads, d // self.n_heads
        qkv_BxLx3xHxK = self.qkv(x_TxD).reshape(b, length, 3, h, k)
        # Rotary embeddings in the projection's own layout, before any transpose.
        qk_BxLx2xHxK = rotary(qkv_BxLx3xHxK[:, :, :2], self.rope_base)
        v_BxLxHxK = qkv_BxLx3xHxK[:, :, 2]
        if self.implementation == "blocked":
            q_BxHxLxK = (qk_BxLx2xHxK[:, :, 0] * k ** -0.5).transpose(0, 2, 1, 3)
            k_BxHxLxK = qk_BxLx2xHxK[:, :, 1].transpose(0, 2, 1, 3)
            y_BxHxLxK = blocked_causal_attention(q_BxHxLxK, k_BxHxLxK, v_BxLxHxK.transpose(0, 2, 1, 3),
                                                 attention_blocks(length))
            y_BxLxHxK = y_BxHxLxK.transpose(0, 2, 1, 3)
        else:
            y_BxLxHxK = fused_attention(qk_BxLx2xHxK[:, :, 0], qk_BxLx2xHxK[:, :, 1], v_BxLxHxK, self.implementation)
        return self.out(y_BxLxHxK.reshape(t, d))


def fused_attention(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, implementation: str) -> jax.Array:
    """jax.nn.dot_product_attention, causal; cuDNN when asked and available, else XLA's (with a warning)."""
    if implementation == "cudnn":
        try:
            return jax.nn.dot_product_attention(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, is_causal=True,
                                                implementation="cudnn")
        except (RuntimeError, ValueError, NotImplementedError) as err:  # no cuDNN, or a shape it refuses
            warn_cudnn_fallback(err)
    return jax.nn.dot_product_attention(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, is_causal=True)


_cudnn_fallback_warned = False  # one warning per process: every layer of every traced step would repeat it


def warn_cudnn_fallback(err: Exception) -> None:
    """Say once that attention runs XLA's reference kernel, and why: it is slower and holds the whole
    (L, L) score matrix, so throughput and MFU drop without anything else showing it."""
    global _cudnn_fallback_warned
    if _cudnn_fallback_warned:
        return
    _cudnn_fallback_warned = True
    reason = " ".join(f"{type(err).__name__}: {err}".split())[:300]
    warnings.warn(f"cuDNN's fused attention failed ({reason}); falling back to XLA's slower reference attention. "
                  "Check that jax's CUDA plugin finds cuDNN, or pick a 16-bit dtype and a head dim that is a "
                  "multiple of 8 up to 128", RuntimeWarning, stacklevel=2)


class MLP(nnx.Module):
    def __init__(self, cfg: ModelConfig, dtype, rngs: nnx.Rngs):
        d, f, std = cfg.d_model, cfg.d_ff, cfg.init_std
        self.swiglu = cfg.mlp == "swiglu"
        self.up = _linear(d, f, std, dtype, rngs)
        self.gate = _linear(d, f, std, dtype, rngs) if self.swiglu else None
        self.down = _linear(f, d, std / (2 * cfg.n_layers) ** 0.5, dtype, rngs)

    def __call__(self, x_TxD: jax.Array) -> jax.Array:
        if self.swiglu:
            h_TxF = jax.nn.silu(self.gate(x_TxD)) * self.up(x_TxD)
        else:
            h_TxF = jax.nn.gelu(self.up(x_TxD))
        return self.down(h_TxF)


class Block(nnx.Module):
    def __init__(self, cfg: ModelConfig, dtype, rngs: nnx.Rngs, attention: str = "xla"):
        self.attn_norm = nnx.RMSNorm(cfg.d_model, epsilon=cfg.norm_eps, dtype=dtype, rngs=rngs)
        self.attn = Attention(cfg, dtype, rngs, attention)
        self.mlp_norm = nnx.RMSNorm(cfg.d_model, epsilon=cfg.norm_eps, dtype=dtype, rngs=rngs)
        self.mlp = MLP(cfg, dtype, rngs)

    def __call__(self, x_TxD: jax.Array, length: int) -> jax.Array:
        x_TxD = x_TxD + self.attn(self.attn_norm(x_TxD), length)
        return x_TxD + self.mlp(self.mlp_norm(x_TxD))


class Transformer(nnx.Module):
    def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs, backend: str | None = None,
                 attention: str | None = None):
        """`attention`: "blocked", "cudnn" or "xla"; by default the best for the backend."""
        if cfg.vocab_size is None or cfg.d_ff is None:
            raise ValueError("Transformer needs a resolved config (vocab_size and d_ff set)")
        backend = backend or jax.default_backend()
        dtype = compute_dtype(cfg.dtype, backend)
        self.dtype = dtype
        attention = attention or attention_implementation(backend, dtype, cfg.d_model // cfg.n_heads)
        self.embed = nnx.Embed(cfg.vocab_size, cfg.d_model, dtype=dtype, param_dtype=jnp.float32,
                               embedding_init=nnx.initializers.normal(cfg.init_std), rngs=rngs)
        self.blocks = nnx.List([Block(cfg, dtype, rngs, attention) for _ in range(cfg.n_layers)])
        self.final_norm = nnx.RMSNorm(cfg.d_model, epsilon=cfg.norm_eps, dtype=dtype, rngs=rngs)
        self.head = None if cfg.tie_embeddings else _linear(cfg.d_model, cfg.vocab_size, cfg.init_std, dtype, rngs)

    def __call__(self, tokens_BxL: jax.Array) -> jax.Array:
        """Next-token logits, float32, shape (B, L, V)."""
        b, length = tokens_BxL.shape
        x_TxD = self.embed(tokens_BxL.reshape(b * length))
        for block in self.blocks:
            x_TxD = block(x_TxD, length)
        x_TxD = self.final_norm(x_TxD)
        w_DxV = self.embed.embedding[...].T if self.head is None else self.head.kernel[...]
        logits_TxV = head_logits(x_TxD.astype(self.dtype), w_DxV.astype(self.dtype))
        return logits_TxV.reshape(b, length, -1)


@jax.custom_vjp
def head_logits(x_TxD: jax.Array, w_DxV: jax.Array) -> jax.Array:
    """x @ w in the inputs' dtype, accumulated and returned as float32 logits.

    The backward matmuls run in the inputs' dtype too: the logits' float32 cotangent is cast down first,
    as mixed-precision training does everywhere else. Left to autodiff, a bfloat16 x float32 product
    is promoted to float32, and on a GPU the head's two backward matmuls then ran in float32, the largest
    cost of a GPT-2-small step (BENCHMARKS.md, GPU). In float32 this is the plain product and its plain
    gradient.
    """
    return jnp.dot(x_TxD, w_DxV, preferred_element_type=jnp.float32)


def _head_logits_fwd(x_TxD, w_DxV):
    return head_logits(x_TxD, w_DxV), (x_TxD, w_DxV)


def _head_logits_bwd(residuals, grad_TxV):
    x_TxD, w_DxV = residuals
    grad_TxV = grad_TxV.astype(x_TxD.dtype)
    grad_x = jnp.dot(grad_TxV, w_DxV.T, preferred_element_type=jnp.float32).astype(x_TxD.dtype)
    grad_w = jnp.dot(x_TxD.T, grad_TxV, preferred_element_type=jnp.float32).astype(w_DxV.dtype)
    return grad_x, grad_w


head_logits.defvjp(_head_logits_fwd, _head_logits_bwd)


@jax.custom_vjp
def cross_entropy(logits_BxLxV: jax.Array, targets_BxL: jax.Array) -> jax.Array:
    """Mean next-token cross-entropy in nats, computed in float32 from logits of any float dtype:
    mean(logsumexp(logits) - logits[target]).

    The gradient, (softmax - one_hot) / tokens in the logits' dtype, is written in one elementwise pass
    over the logits; autodiff of the same formula adds a separate scatter pass, and over a
    (tokens x 50k) array each pass costs milliseconds on a GPU.
    """
    return _cross_entropy_fwd(logits_BxLxV, targets_BxL)[0]


def _cross_entropy_fwd(logits_BxLxV, targets_BxL):
    # The residual is the logits as given: a float32 copy of a bfloat16 array would be written out whole.
    logits32_BxLxV = logits_BxLxV.astype(jnp.float32)
    logsumexp_BxL = jax.nn.logsumexp(logits32_BxLxV, axis=-1)
    picked_BxL = jnp.take_along_axis(logits32_BxLxV, targets_BxL[..., None], axis=-1)[..., 0]
    return (logsumexp_BxL - picked_BxL).mean(), (logits_BxLxV, logsumexp_BxL, targets_BxL)


def _cross_entropy_bwd(residuals, grad):
    logits_BxLxV, logsumexp_BxL, targets_BxL = residuals
    one_hot_BxLxV = jnp.arange(logits_BxLxV.shape[-1]) == targets_BxL[..., None]
    probs_BxLxV = jnp.exp(logits_BxLxV.astype(jnp.float32) - logsumexp_BxL[..., None])
    grad_BxLxV = (probs_BxLxV - one_hot_BxLxV) * (grad / targets_BxL.size)
    # Integer targets take a float0 cotangent.
    return grad_BxLxV.astype(logits_BxLxV.dtype), np.zeros(targets_BxL.shape, dtype=jax.dtypes.float0)


cross_entropy.defvjp(_cross_entropy_fwd, _cross_entropy_bwd)
