import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling import model as model_module
from scaling.config import ModelConfig, RunConfig, TrainConfig, resolve
from scaling.model import (Transformer, attention_blocks, attention_implementation, blocked_causal_attention,
                           compute_dtype, cross_entropy, fused_attention, head_logits, rotary)


def make_model(**fields) -> Transformer:
    config = resolve(RunConfig(model=ModelConfig(**fields), train=TrainConfig(steps=1)), 256)
    return Transformer(config.model, nnx.Rngs(0))


@pytest.mark.parametrize("fields", [dict(), dict(mlp="swiglu", tie_embeddings=False)])
def test_output_shape_and_dtype(fields):
    model = make_model(d_model=32, n_layers=2, n_heads=4, **fields)
    logits = model(jnp.zeros((3, 17), jnp.int32))
    assert logits.shape == (3, 17, 256) and logits.dtype == jnp.float32


def test_bfloat16_compute_keeps_float32_params_and_logits_and_bfloat16_head_gradient():
    model = make_model(d_model=32, n_layers=1, n_heads=2, dtype="bfloat16")
    graphdef, params = nnx.split(model)
    assert {x.dtype for x in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
    tokens = jax.random.randint(jax.random.key(0), (2, 9), 0, 256)
    assert model(tokens[:, :-1]).dtype == jnp.float32

    def loss(p):
        return cross_entropy(nnx.merge(graphdef, p)(tokens[:, :-1]), tokens[:, 1:])

    hlo = jax.jit(jax.grad(loss)).lower(params).as_text()
    # The head's three matmuls (the only ones with a vocabulary-sized dimension, 256) take bfloat16
    # operands, the two of its backward pass included.
    operands = [line.split("dot_general")[1].split("->")[0] for line in hlo.splitlines() if "dot_general" in line]
    head = [types for types in operands if "256x" in types or "x256" in types]
    assert len(head) == 3 and all(types.count("bf16>") == 2 for types in head), head


def test_head_logits_gradient_is_the_matmul_gradient_in_float32():
    key_x, key_w = jax.random.split(jax.random.key(4))
    x, w = jax.random.normal(key_x, (5, 8)), jax.random.normal(key_w, (8, 11))
    custom = jax.grad(lambda x, w: jnp.sin(head_logits(x, w)).sum(), (0, 1))(x, w)
    plain = jax.grad(lambda x, w: jnp.sin(x @ w).sum(), (0, 1))(x, w)
    for a, b in zip(custom, plain):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def reference_cross_entropy(logits, targets):
    logprobs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return -jnp.take_along_axis(logprobs, targets[..., None], axis=-1)[..., 0].mean()


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_cross_entropy_value_and_gradient_match_autodiff_of_log_softmax(dtype):
    key_logits, key_targets = jax.random.split(jax.random.key(3))
    logits = (4 * jax.random.normal(key_logits, (3, 7, 50))).astype(dtype)
    targets = jax.random.randint(key_targets, (3, 7), 0, 50)
    np.testing.assert_allclose(cross_entropy(logits, targets), reference_cross_entropy(logits, targets), rtol=1e-6)
    # Scaled by 3 to check the incoming cotangent is applied, not assumed to be 1.
    grad = jax.grad(lambda x: 3 * cross_entropy(x, targets))(logits)
    expected = jax.grad(lambda x: 3 * reference_cross_entropy(x, targets))(logits)
    assert grad.dtype == dtype
    tolerance = 1e-6 if dtype == jnp.float32 else 1e-2  # bfloat16 keeps 8 bits of the gradient
    np.testing.assert_allclose(np.asarray(grad, np.float32), np.asarray(expected, np.float32),
                               rtol=tolerance, atol=tolerance * float(jnp.abs(expected.astype(jnp.float32)).max()))


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


def test_a_failed_cudnn_attention_warns_once_and_computes_xla_attention(monkeypatch):
    real = jax.nn.dot_product_attention

    def without_cudnn(*args, implementation=None, **kwargs):
        if implementation == "cudnn":
            raise RuntimeError("cuDNN is not\ndetected.")
        return real(*args, implementation=implementation, **kwargs)

    monkeypatch.setattr(jax.nn, "dot_product_attention", without_cudnn)
    monkeypatch.setattr(model_module, "_cudnn_fallback_warned", False)
    q, k, v = jax.random.normal(jax.random.key(5), (3, 2, 16, 2, 8))
    with pytest.warns(RuntimeWarning, match=r"^cuDNN's fused attention failed \(RuntimeError: cuDNN is not detected\.\); "
                                            r"falling back to XLA's"):
        y = fused_attention(q, k, v, "cudnn")
    np.testing.assert_allclose(y, real(q, k, v, is_causal=True), rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second fallback in the same process says nothing
        fused_attention(q, k, v, "cudnn")
        fused_attention(q, k, v, "xla")


@pytest.mark.parametrize("fields", [dict(), dict(mlp="swiglu", tie_embeddings=False)])
def test_blocked_and_reference_attention_give_the_same_model(fields):
    config = resolve(RunConfig(model=ModelConfig(d_model=32, n_layers=2, n_heads=4, **fields),
                               train=TrainConfig(steps=1, seq_len=256)), 256)
    tokens = jax.random.randint(jax.random.key(1), (2, 256), 0, 256)
    blocked = Transformer(config.model, nnx.Rngs(0), attention="blocked")(tokens)
    reference = Transformer(config.model, nnx.Rngs(0), attention="xla")(tokens)
    np.testing.assert_allclose(blocked, reference, rtol=1e-5, atol=1e-5)


needs_gpu = pytest.mark.skipif(jax.default_backend() != "gpu", reason="needs a GPU (cuDNN's fused attention)")


def relative_error(x, reference) -> float:
    x, reference = (np.asarray(jnp.asarray(a, jnp.float32), np.float64) for a in (x, reference))
    return float(np.linalg.norm(x - reference) / np.linalg.norm(reference))


@needs_gpu
def test_cudnn_attention_is_used_and_matches_xla_in_bfloat16():
    config = resolve(RunConfig(model=ModelConfig(d_model=128, n_layers=2, n_heads=2, dtype="bfloat16"),
                               train=TrainConfig(steps=1, seq_len=512)), 256)
    tokens = jax.random.randint(jax.random.key(2), (4, 513), 0, 256)

    def forward_and_grad(attention: str):
        graphdef, params = nnx.split(Transformer(config.model, nnx.Rngs(0), attention=attention))

        def loss(p):
            return cross_entropy(nnx.merge(graphdef, p)(tokens[:, :-1]), tokens[:, 1:])

        fn = jax.jit(jax.value_and_grad(loss))
        return fn(params), fn.lower(params).compile().as_text()

    (cudnn_loss, cudnn_grads), cudnn_hlo = forward_and_grad("cudnn")
    (xla_loss, xla_grads), xla_hlo = forward_and_grad("xla")
    assert "cudnn" in cudnn_hlo.lower() and "fmha" in cudnn_hlo.lower()  # the fused kernel, not the fallback
    assert "fmha" not in xla_hlo.lower()
    assert abs(float(cudnn_loss) - float(xla_loss)) < 1e-2 * float(xla_loss)
    flat = lambda g: jnp.concatenate([x.ravel() for x in jax.tree.leaves(g)])  # noqa: E731
    assert relative_error(flat(cudnn_grads), flat(xla_grads)) < 2e-2
