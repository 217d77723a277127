"""Transformer building blocks shared by every family: attention with a key/value cache and
optional rotary position embedding, the MLP, pre-LayerNorm blocks (causal for generation,
bidirectional for encoding), their initialisation, and the choice of attention kernels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from aigc.errors import ConfigError


class AttentionBackends:
    """The kernels ``F.scaled_dot_product_attention`` may use, by the names of
    ``torch.nn.attention.SDPBackend``'s members (``["math"]``); none named: PyTorch picks.
    ``with backends():`` runs attention on them.

    On the CPU, for rows of up to about a hundred tokens, the fused kernel's backward is several
    times slower in bf16 than the plain math kernel's (torch 2.14), so models that train there in
    bf16 name ``math``."""

    def __init__(self, names: Sequence[str] | None) -> None:
        kernels = {name.lower(): kernel for name, kernel in SDPBackend.__members__.items()}
        kernels.pop("error")
        names = list(names or [])
        unknown = [name for name in names if name.lower() not in kernels]
        if unknown:
            raise ConfigError(
                f"unknown attention backends {unknown}; choose from {sorted(kernels)}"
            )
        self.kernels = [kernels[name.lower()] for name in names]

    def __call__(self) -> AbstractContextManager:
        return sdpa_kernel(self.kernels) if self.kernels else nullcontext()


class KVCache:
    """Keys and values of one attention layer for positions [0, block_size) of a batch.

    The buffers are allocated once, by the first update, because only then are the batch size,
    dtype (autocast may make it bf16) and device of the keys known.
    """

    def __init__(self, block_size: int) -> None:
        self.block_size = block_size
        self.k: Tensor | None = None
        self.v: Tensor | None = None

    def update(self, k: Tensor, v: Tensor, pos: int) -> tuple[Tensor, Tensor]:
        """Store k, v (B, nh, T, hs) at positions [pos, pos + T); return all keys/values so far."""
        if self.k is None:
            B, nh, _, hs = k.shape
            self.k = k.new_empty(B, nh, self.block_size, hs)
            self.v = v.new_empty(B, nh, self.block_size, hs)
        end = pos + k.size(2)
        self.k[:, :, pos:end] = k
        self.v[:, :, pos:end] = v
        return self.k[:, :, :end], self.v[:, :, :end]  # (B, nh, end, hs)


class Rotary(nn.Module):
    """Rotary position embedding (Su et al. 2021): each pair of a head's channels is turned by an
    angle proportional to the token's position, at one frequency per pair, so that the score of a
    rotated query and key depends on their positions only through the offset between them."""

    def __init__(self, head_dim: int, base: float = 10_000.0) -> None:
        super().__init__()
        if head_dim % 2:  # channels turn in pairs
            raise ConfigError(
                f"rotary positions need an even head size (n_embd / n_head), not {head_dim}"
            )
        frequencies = base ** -(torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        self.register_buffer("frequencies", frequencies, persistent=False)  # (hs/2,)

    def forward(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        """cos and sin of the angles of ``positions`` ((T,) or (B, T)): each (1 or B, 1, T, hs/2),
        to broadcast over heads."""
        angles = positions.float()[..., None] * self.frequencies  # (..., T, hs/2)
        if angles.dim() == 2:
            angles = angles[None]
        return angles.cos()[:, None], angles.sin()[:, None]


def rotate(x: Tensor, angles: tuple[Tensor, Tensor]) -> Tensor:
    """x (B, nh, T, hs) turned by ``angles`` (cos, sin from `Rotary`), its first half of channels
    paired with its second."""
    cos, sin = angles
    x1, x2 = x.float().chunk(2, dim=-1)  # turned in fp32, the angles' dtype, then cast back
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).type_as(x)


class SelfAttention(nn.Module):
    """Multi-head self-attention: causal (each position sees those before it), or over all
    positions that a padding mask keeps."""

    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool, causal: bool) -> None:
        super().__init__()
        if n_embd % n_head != 0:
            raise ValueError(f"n_embd={n_embd} is not divisible by n_head={n_head}")
        self.n_head = n_head
        self.dropout = dropout
        self.causal = causal
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=bias)  # one matmul for q, k and v
        self.out_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        cache: KVCache | None = None,
        pos: int = 0,
        mask: Tensor | None = None,
        angles: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """x (B, T, C) at places pos, pos + 1, ... (in the cache); mask (B, T), True where a token
        is real (non-causal attention only), or (B, T, S): True where query t may see key s (in
        place of the causal mask); angles: the rotary embedding of x's positions, if any."""
        B, T, C = x.shape
        # (B, T, 3C) -> 3 x (B, nh, T, hs); views only, SDPA accepts the strided layout
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        if angles is not None:  # keys are cached rotated: a rotation depends on its own position
            q, k = rotate(q, angles), rotate(k, angles)
        if cache is not None:
            k, v = cache.update(k, v, pos)  # (B, nh, pos + T, hs)
        # Causal: either all queries start at position 0 (training, prefill) and the plain causal
        # mask is right, or a single new query (cached decoding) may attend to every cached key.
        full = mask is not None and mask.dim() == 3
        attn_mask = mask
        if mask is not None:  # (B, 1, T, S) queries and keys, or (B, 1, 1, S) keys to see
            attn_mask = mask[:, None] if full else mask[:, None, None, :]
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=self.causal and T > 1 and not full,
        )  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.out_proj(y))


class MLP(nn.Module):
    def __init__(self, n_embd: int, dropout: float, bias: bool) -> None:
        super().__init__()
        self.up_proj = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.act = nn.GELU()
        self.down_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.down_proj(self.act(self.up_proj(x))))


class Block(nn.Module):
    """A pre-LayerNorm Transformer block: self-attention, then a GELU MLP, each on a residual."""

    def __init__(
        self, n_embd: int, n_head: int, dropout: float, bias: bool, causal: bool = True
    ) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = SelfAttention(n_embd, n_head, dropout, bias, causal)
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = MLP(n_embd, dropout, bias)

    def forward(
        self,
        x: Tensor,
        cache: KVCache | None = None,
        pos: int = 0,
        mask: Tensor | None = None,
        angles: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        x = x + self.attn(self.ln_1(x), cache, pos, mask, angles)
        return x + self.mlp(self.ln_2(x))


def causal_mask(real: Tensor) -> Tensor:
    """The attention mask ``(B, T, T)`` of rows whose tokens ``real`` ``(B, T)`` marks (False:
    padding, which no query sees): query t sees key s when s <= t."""
    place = torch.arange(real.size(1), device=real.device)
    sees = (place[:, None] >= place[None, :])[None]  # (1, T, T)
    return sees & real[:, None, :]


def init_transformer_weights(model: nn.Module, blocks: Sequence[Block]) -> None:
    """GPT-2's initialisation: N(0, 0.02) weights, zero biases, and residual output projections
    shrunk by sqrt(2 * layers), so that the residual stream's variance does not grow with depth
    (each block adds two residual branches)."""
    for module in model.modules():
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
    for block in blocks:
        for proj in (block.attn.out_proj, block.mlp.down_proj):
            nn.init.normal_(proj.weight, mean=0.0, std=0.02 / math.sqrt(2 * len(blocks)))
