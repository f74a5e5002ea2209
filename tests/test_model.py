import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling.config import ModelConfig, RunConfig, TrainConfig, resolve
from scaling.model import (Transformer, attention_blocks, attention_implementation, blocked_causal_attention,
                           compute_dtype, cross_entropy, rotary)


def make_model(**fields) -> Transformer:
    config = resolve(RunConfig(model=ModelConfig(**fields), train=TrainConfig(steps=1)), 256)
    return Transformer(config.model, nnx.Rngs(0))


@pytest.mark.parametrize("fields", [dict(), dict(mlp="swiglu", tie_embeddings=False)])
def test_output_shape_and_dtype(fields):
    model = make_model(d_model=32, n_layers=2, n_heads=4, **fields)
    logits = model(jnp.zeros((3, 17), jnp.int32))
    assert logits.shape == (3, 17, 256) and logits.dtype == jnp.float32


def test_bfloat16_compute_keeps_float32_params_and_logits():
    model = make_model(d_model=32, n_layers=1, n_heads=2, dtype="bfloat16")
    params = nnx.state(model, nnx.Param)
    assert {x.dtype for x in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
    assert model(jnp.zeros((1, 8), jnp.int32)).dtype == jnp.float32


def test_no_position_sees_the_future():
    model = make_model(d_model=32, n_layers=2, n_heads=4)
    tokens = jax.random.randint(jax.random.key(1), (2, 24), 0, 256)
    logits = model(tokens)
    cut = 10
    changed = tokens.at[:, cut:].set((tokens[:, cut:] + 7) % 256)
    changed_logits = model(changed)
    np.testing.assert_allclose(logits[:, :cut], changed_logits[:, :cut], rtol=1e-5, atol=1e-5)
    assert not np.allclose(logits[:, cut:], changed_logits[:, cut:])


def test_rotary_preserves_norm_and_encodes_relative_position():
    x = jax.random.normal(jax.random.key(0), (1, 6, 2, 8))
    y = rotary(x, 10000.0)
    np.testing.assert_allclose(jnp.linalg.norm(x, axis=-1), jnp.linalg.norm(y, axis=-1), rtol=1e-5)
    # A query/key pair at the same offset scores the same wherever it sits.
    q = jnp.broadcast_to(x[:, :1], x.shape)
    k = jnp.broadcast_to(x[:, 1:2], x.shape)
    rq, rk = rotary(q, 10000.0), rotary(k, 10000.0)
    score_01 = jnp.sum(rq[0, 0] * rk[0, 1], axis=-1)
    score_34 = jnp.sum(rq[0, 3] * rk[0, 4], axis=-1)
    np.testing.assert_allclose(score_01, score_34, rtol=1e-4, atol=1e-5)


def test_cross_entropy_matches_uniform_and_one_hot():
    uniform = jnp.zeros((2, 5, 256))
    targets = jnp.ones((2, 5), jnp.int32)
    assert float(cross_entropy(uniform, targets)) == pytest.approx(np.log(256), rel=1e-6)
    confident = jax.nn.one_hot(targets, 256) * 100.0
    assert float(cross_entropy(confident, targets)) < 1e-6


def test_tied_head_uses_embedding():
    model = make_model(d_model=32, n_layers=1, n_heads=2)
    assert model.head is None
    untied = make_model(d_model=32, n_layers=1, n_heads=2, tie_embeddings=False)
    assert untied.head.kernel[...].shape == (32, 256)


def test_compute_dtype_auto():
    assert compute_dtype("auto", "cpu") == jnp.float32
    assert compute_dtype("auto", "gpu") == jnp.bfloat16
    assert compute_dtype("float32", "gpu") == jnp.float32


@pytest.mark.parametrize("length,blocks", [(16, 1), (256, 2), (384, 3), (96, 4)])
def test_blocked_attention_equals_masked_softmax(length, blocks):
    q, k, v = jax.random.normal(jax.random.key(2), (3, 2, 3, length, 8))
    scores = jnp.einsum("bhqk,bhsk->bhqs", q, k)
    causal = jnp.tril(jnp.ones((length, length), bool))
    expected = jnp.einsum("bhqs,bhsk->bhqk", jax.nn.softmax(jnp.where(causal, scores, -jnp.inf), axis=-1), v)
    np.testing.assert_allclose(blocked_causal_attention(q, k, v, blocks), expected, rtol=1e-5, atol=1e-6)


def test_attention_blocks_divide_the_sequence():
    assert attention_blocks(256) == 2 and attention_blocks(1024) == 8 and attention_blocks(100) == 1
    for length in (128, 200, 384, 1000, 2048):
        assert length % attention_blocks(length) == 0


def test_attention_implementation_by_backend():
    assert attention_implementation("cpu", jnp.float32, 64) == "blocked"
    assert attention_implementation("gpu", jnp.bfloat16, 64) == "cudnn"
    assert attention_implementation("gpu", jnp.float32, 64) == "xla"  # cuDNN's fused kernel is 16-bit only
    assert attention_implementation("gpu", jnp.bfloat16, 12) == "xla"
    assert attention_implementation("tpu", jnp.bfloat16, 64) == "xla"


@pytest.mark.parametrize("fields", [dict(), dict(mlp="swiglu", tie_embeddings=False)])
def test_blocked_and_reference_attention_give_the_same_model(fields):
    config = resolve(RunConfig(model=ModelConfig(d_model=32, n_layers=2, n_heads=4, **fields),
                               train=TrainConfig(steps=1, seq_len=256)), 256)
    tokens = jax.random.randint(jax.random.key(1), (2, 256), 0, 256)
    blocked = Transformer(config.model, nnx.Rngs(0), attention="blocked")(tokens)
    reference = Transformer(config.model, nnx.Rngs(0), attention="xla")(tokens)
    np.testing.assert_allclose(blocked, reference, rtol=1e-5, atol=1e-5)
