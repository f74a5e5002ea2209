"""Decoder-only transformer in Flax NNX.

Pre-norm RMSNorm blocks, rotary position embeddings, causal attention through
`jax.nn.dot_product_attention`, GELU or SwiGLU MLP, tied or untied embeddings. Parameters are
float32; activations run in the compute dtype; logits and the softmax are float32.
Names carry shapes: B batch, L sequence, D d_model, H heads, K head dim, F d_ff, V vocab.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.config import ModelConfig


def compute_dtype(name: str, backend: str | None = None) -> jnp.dtype:
    """Resolve a dtype name; "auto" is bfloat16 on GPU/TPU and float32 on CPU."""
    if name == "auto":
        backend = backend or jax.default_backend()
        return jnp.dtype(jnp.float32 if backend == "cpu" else jnp.bfloat16)
    return jnp.dtype(name)


def rotary(x_BxLxHxK: jax.Array, base: float) -> jax.Array:
    """Rotate pairs (first half, second half) of each head by position-dependent angles."""
    length, head_dim = x_BxLxHxK.shape[1], x_BxLxHxK.shape[-1]
    inv_freq_K2 = 1.0 / base ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim)
    angle_LxK2 = jnp.arange(length, dtype=jnp.float32)[:, None] * inv_freq_K2[None, :]
    sin, cos = jnp.sin(angle_LxK2)[None, :, None, :], jnp.cos(angle_LxK2)[None, :, None, :]
    x1, x2 = jnp.split(x_BxLxHxK.astype(jnp.float32), 2, axis=-1)
    rotated = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return rotated.astype(x_BxLxHxK.dtype)


def _linear(d_in: int, d_out: int, std: float, dtype, rngs: nnx.Rngs) -> nnx.Linear:
    return nnx.Linear(d_in, d_out, use_bias=False, dtype=dtype, param_dtype=jnp.float32,
                      kernel_init=nnx.initializers.normal(std), rngs=rngs)


class Attention(nnx.Module):
    def __init__(self, cfg: ModelConfig, dtype, rngs: nnx.Rngs):
        d = cfg.d_model
        self.n_heads, self.rope_base = cfg.n_heads, cfg.rope_base
        self.qkv = _linear(d, 3 * d, cfg.init_std, dtype, rngs)
        # GPT-2's residual scaling keeps the residual stream's variance independent of depth.
        self.out = _linear(d, d, cfg.init_std / (2 * cfg.n_layers) ** 0.5, dtype, rngs)

    def __call__(self, x_BxLxD: jax.Array) -> jax.Array:
        b, length, d = x_BxLxD.shape
        qkv_BxLx3xHxK = self.qkv(x_BxLxD).reshape(b, length, 3, self.n_heads, d // self.n_heads)
        q_BxLxHxK, k_BxLxHxK, v_BxLxHxK = (qkv_BxLx3xHxK[:, :, i] for i in range(3))
        q_BxLxHxK, k_BxLxHxK = rotary(q_BxLxHxK, self.rope_base), rotary(k_BxLxHxK, self.rope_base)
        y_BxLxHxK = jax.nn.dot_product_attention(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, is_causal=True)
        return self.out(y_BxLxHxK.reshape(b, length, d))


class MLP(nnx.Module):
    def __init__(self, cfg: ModelConfig, dtype, rngs: nnx.Rngs):
        d, f, std = cfg.d_model, cfg.d_ff, cfg.init_std
        self.swiglu = cfg.mlp == "swiglu"
        self.up = _linear(d, f, std, dtype, rngs)
        self.gate = _linear(d, f, std, dtype, rngs) if self.swiglu else None
        self.down = _linear(f, d, std / (2 * cfg.n_layers) ** 0.5, dtype, rngs)

    def __call__(self, x_BxLxD: jax.Array) -> jax.Array:
        if self.swiglu:
            h_BxLxF = jax.nn.silu(self.gate(x_BxLxD)) * self.up(x_BxLxD)
        else:
            h_BxLxF = jax.nn.gelu(self.up(x_BxLxD))
        return self.down(h_BxLxF)


class Block(nnx.Module):
    def __init__(self, cfg: ModelConfig, dtype, rngs: nnx.Rngs):
        self.attn_norm = nnx.RMSNorm(cfg.d_model, epsilon=cfg.norm_eps, dtype=dtype, rngs=rngs)
        self.attn = Attention(cfg, dtype, rngs)
        self.mlp_norm = nnx.RMSNorm(cfg.d_model, epsilon=cfg.norm_eps, dtype=dtype, rngs=rngs)
        self.mlp = MLP(cfg, dtype, rngs)

    def __call__(self, x_BxLxD: jax.Array) -> jax.Array:
        x_BxLxD = x_BxLxD + self.attn(self.attn_norm(x_BxLxD))
        return x_BxLxD + self.mlp(self.mlp_norm(x_BxLxD))


class Transformer(nnx.Module):
    def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs, backend: str | None = None):
        if cfg.vocab_size is None or cfg.d_ff is None:
            raise ValueError("Transformer needs a resolved config (vocab_size and d_ff set)")
        dtype = compute_dtype(cfg.dtype, backend)
        self.dtype = dtype
        self.embed = nnx.Embed(cfg.vocab_size, cfg.d_model, dtype=dtype, param_dtype=jnp.float32,
                               embedding_init=nnx.initializers.normal(cfg.init_std), rngs=rngs)
        self.blocks = nnx.List([Block(cfg, dtype, rngs) for _ in range(cfg.n_layers)])
        self.final_norm = nnx.RMSNorm(cfg.d_model, epsilon=cfg.norm_eps, dtype=dtype, rngs=rngs)
        self.head = None if cfg.tie_embeddings else _linear(cfg.d_model, cfg.vocab_size, cfg.init_std, dtype, rngs)

    def __call__(self, tokens_BxL: jax.Array) -> jax.Array:
        """Next-token logits, float32, shape (B, L, V)."""
        x_BxLxD = self.embed(tokens_BxL)
        for block in self.blocks:
            x_BxLxD = block(x_BxLxD)
        x_BxLxD = self.final_norm(x_BxLxD)
        w_DxV = self.embed.embedding[...].T if self.head is None else self.head.kernel[...]
        # The head's matmul runs in the compute dtype but accumulates and returns float32 logits.
        return jnp.einsum("bld,dv->blv", x_BxLxD.astype(self.dtype), w_DxV.astype(self.dtype),
                          preferred_element_type=jnp.float32)


def cross_entropy(logits_BxLxV: jax.Array, targets_BxL: jax.Array) -> jax.Array:
    """Mean next-token cross-entropy in nats (float32 log-softmax)."""
    logprobs_BxLxV = jax.nn.log_softmax(logits_BxLxV.astype(jnp.float32), axis=-1)
    picked_BxL = jnp.take_along_axis(logprobs_BxLxV, targets_BxL[..., None], axis=-1)[..., 0]
    return -picked_BxL.mean()
