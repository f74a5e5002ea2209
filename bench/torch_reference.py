"""The same decoder-only transformer and train step as `scaling.model` / `scaling.step`, in PyTorch.

Used only by bench/throughput.py as a reference point: pre-norm RMSNorm, rotary embeddings (same
half-split rotation), causal scaled-dot-product attention, GELU or SwiGLU MLP, tied or untied
embeddings, float32 logits, AdamW with global-norm clipping. Needs the optional `bench` extra (torch).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def rotary(x_BxHxLxK: torch.Tensor, base: float) -> torch.Tensor:
    length, head_dim = x_BxHxLxK.shape[-2], x_BxHxLxK.shape[-1]
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=x_BxHxLxK.device) / head_dim)
    angle_LxK2 = torch.arange(length, dtype=torch.float32, device=x_BxHxLxK.device)[:, None] * inv_freq[None, :]
    sin, cos = angle_LxK2.sin(), angle_LxK2.cos()
    x1, x2 = x_BxHxLxK.float().chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x_BxHxLxK.dtype)


class Block(nn.Module):
    def __init__(self, d: int, heads: int, d_ff: int, mlp: str, eps: float, rope_base: float):
        super().__init__()
        self.heads, self.rope_base, self.swiglu = heads, rope_base, mlp == "swiglu"
        self.attn_norm, self.mlp_norm = nn.RMSNorm(d, eps=eps), nn.RMSNorm(d, eps=eps)
        self.qkv, self.out = nn.Linear(d, 3 * d, bias=False), nn.Linear(d, d, bias=False)
        self.up, self.down = nn.Linear(d, d_ff, bias=False), nn.Linear(d_ff, d, bias=False)
        self.gate = nn.Linear(d, d_ff, bias=False) if self.swiglu else None

    def forward(self, x_BxLxD: torch.Tensor) -> torch.Tensor:
        b, length, d = x_BxLxD.shape
        qkv = self.qkv(self.attn_norm(x_BxLxD)).view(b, length, 3, self.heads, d // self.heads)
        q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
        q, k = rotary(q, self.rope_base), rotary(k, self.rope_base)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, length, d)
        x_BxLxD = x_BxLxD + self.out(y)
        h = self.mlp_norm(x_BxLxD)
        h = F.silu(self.gate(h)) * self.up(h) if self.swiglu else F.gelu(self.up(h), approximate="tanh")
        return x_BxLxD + self.down(h)


class Transformer(nn.Module):
    def __init__(self, cfg):
        """`cfg` is a resolved scaling.config.ModelConfig."""
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.mlp, cfg.norm_eps, cfg.rope_base)
                                    for _ in range(cfg.n_layers))
        self.final_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.head = None if cfg.tie_embeddings else nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        for p in self.parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, std=cfg.init_std)
        for block in self.blocks:
            for proj in (block.out, block.down):
                nn.init.normal_(proj.weight, std=cfg.init_std / math.sqrt(2 * cfg.n_layers))

    def forward(self, tokens_BxL: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens_BxL)
        for block in self.blocks:
            x = block(x)
        x = self.final_norm(x)
        weight = self.embed.weight if self.head is None else self.head.weight
        return F.linear(x, weight).float()


def make_train_step(cfg, train, compile_model: bool, device: str = "cpu"):
    """A closure running one optimizer step on a (B, L+1) token batch on `device`; returns the loss tensor."""
    model = Transformer(cfg).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": train.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=train.lr, betas=(train.beta1, train.beta2),
                                  fused=device == "cuda")  # PyTorch's fastest AdamW on a GPU
    forward = torch.compile(model) if compile_model else model

    def step(batch_BxL1: torch.Tensor) -> torch.Tensor:
        logits = forward(batch_BxL1[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch_BxL1[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    return step, sum(p.numel() for p in model.parameters())
