import math

import pytest

from scaling.accounting import param_counts
from scaling.config import ModelConfig
from scaling.shapes import choose_shape, shape_for


@pytest.mark.parametrize("target", [2e5, 1e6, 3e6, 1e7, 1e8])
def test_lands_near_target_with_buildable_shape(target):
    shape = choose_shape(target)
    assert abs(math.log(shape.n_params / target)) <= math.log(1.05)
    assert shape.d_model % shape.n_heads == 0 and (shape.d_model // shape.n_heads) % 2 == 0
    model = ModelConfig(**shape.model_overrides())
    assert param_counts(model)["n_params"] == shape.n_params


def test_gpt2_small_shape():
    shape = choose_shape(124e6, vocab_size=50257)
    assert (shape.d_model, shape.n_layers, shape.n_heads) == (768, 12, 12)


def test_bigger_targets_give_bigger_models():
    sizes = [choose_shape(n).n_params for n in (1e5, 1e6, 1e7)]
    assert sizes == sorted(sizes)


def test_swiglu_and_untied_are_counted():
    tied, untied = shape_for(128, 2, 256), shape_for(128, 2, 256, tie_embeddings=False)
    assert untied.n_params - tied.n_params == 128 * 256
    assert shape_for(128, 2, 256, mlp="swiglu").d_ff % 32 == 0


def test_rejects_bad_target():
    with pytest.raises(ValueError):
        choose_shape(-1)
