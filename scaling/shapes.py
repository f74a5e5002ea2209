"""Shape chooser: a target parameter count -> a concrete transformer shape.

The rule (documented so that sweeps and `allocate` agree):
  * head_dim = 64 when d_model >= 256, else d_model / 4 (4 heads); d_model is a multiple of 64 from
    256 up and a multiple of 16 below (so head_dim is a multiple of 4 and even, as RoPE needs).
  * d_ff follows the MLP kind: 4 * d_model for GELU, 8/3 * d_model rounded up to 32 for SwiGLU.
  * Among all (n_layers, d_model) with n_layers <= max_layers, take those whose total N lies within
    `tolerance` of the target (in log space) and pick the one whose aspect ratio d_model / n_layers is
    closest to `aspect_ratio` (64 by default, GPT-2 small's 768/12; Kaplan et al. 2020 find loss flat
    over a wide band of aspect ratios). If none is within tolerance, take the closest N.
N counts embeddings (`n_params`, total); the exact N the shape lands on is reported.
"""

from __future__ import annotations

import dataclasses
import math

from scaling.accounting import param_counts
from scaling.config import ModelConfig, default_d_ff


@dataclasses.dataclass(frozen=True)
class Shape:
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    vocab_size: int
    n_params: int
    n_params_nonembedding: int

    def model_overrides(self) -> dict[str, int]:
        """The `model.*` config keys this shape sets."""
        return {"d_model": self.d_model, "n_layers": self.n_layers, "n_heads": self.n_heads,
                "d_ff": self.d_ff, "vocab_size": self.vocab_size}


def head_count(d_model: int) -> int:
    return d_model // 64 if d_model >= 256 else 4


def candidate_widths(max_width: int = 8192) -> list[int]:
    return list(range(16, 256, 16)) + list(range(256, max_width + 1, 64))


def shape_for(d_model: int, n_layers: int, vocab_size: int, mlp: str = "gelu",
              tie_embeddings: bool = True) -> Shape:
    model = ModelConfig(d_model=d_model, n_layers=n_layers, n_heads=head_count(d_model),
                        vocab_size=vocab_size, mlp=mlp, tie_embeddings=tie_embeddings)
    model = dataclasses.replace(model, d_ff=default_d_ff(model))
    counts = param_counts(model)
    return Shape(d_model, n_layers, model.n_heads, model.d_ff, vocab_size,
                 counts["n_params"], counts["n_params_nonembedding"])


def choose_shape(n_target: float, vocab_size: int = 256, mlp: str = "gelu", tie_embeddings: bool = True,
                 aspect_ratio: float = 64.0, tolerance: float = 0.05, max_layers: int = 64) -> Shape:
    """The shape whose total parameter count is near `n_target`, by the rule in the module docstring."""
    if not n_target > 0 or not math.isfinite(n_target):
        raise ValueError(f"target parameter count must be a positive number, got {n_target}")
    shapes = [shape_for(d, n_layers, vocab_size, mlp, tie_embeddings)
              for n_layers in range(1, max_layers + 1) for d in candidate_widths()]

    def size_error(shape: Shape) -> float:
        return abs(math.log(shape.n_params / n_target))

    def aspect_error(shape: Shape) -> float:
        return abs(math.log(shape.d_model / shape.n_layers / aspect_ratio))

    close = [s for s in shapes if size_error(s) <= math.log1p(tolerance)]
    if close:
        return min(close, key=lambda s: (aspect_error(s), size_error(s)))
    return min(shapes, key=lambda s: (size_error(s), aspect_error(s)))
