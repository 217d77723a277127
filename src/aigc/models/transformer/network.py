"""A decoder-only GPT language model with key/value-cached sampling.

Architecture: token embeddings plus learned position embeddings (or rotary ones inside attention),
a stack of pre-LayerNorm blocks (causal multi-head self-attention, GELU MLP of 4x width;
``aigc.nn.transformer``), a final LayerNorm and an LM head that shares its weight with the token
embedding.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aigc.errors import ConfigError
from aigc.nn.transformer import Block, KVCache, Rotary, init_transformer_weights

# How a GPT tells positions apart: "learned", an embedding per position added to the token's
# (GPT-2), or "rotary", queries and keys turned by their positions' angles (RoPE), which makes
# attention depend on offsets between tokens rather than on where they are.
POSITION_ENCODINGS = ("learned", "rotary")


class GPT(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        n_layer: int,
        n_head: int,
        n_embd: int,
        dropout: float = 0.0,
        bias: bool = False,
        position_encoding: str = "learned",
    ) -> None:
        super().__init__()
        if position_encoding not in POSITION_ENCODINGS:
            raise ConfigError(
                f"unknown model.position_encoding {position_encoding!r}; "
                f"choose one of {list(POSITION_ENCODINGS)}"
            )
        if n_embd % n_head:  # heads split the width
            raise ConfigError(f"model.n_embd={n_embd} must be a multiple of model.n_head={n_head}")
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, n_embd)
        learned = position_encoding == "learned"
        self.wpe = nn.Embedding(block_size, n_embd) if learned else None
        self.rotary = None if learned else Rotary(n_embd // n_head)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, dropout, bias) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, bias=bias)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        # weight tying: the head scores a token by similarity to its input embedding
        self.lm_head.weight = self.wte.weight

        init_transformer_weights(self, self.blocks)

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Number of parameters; non_embedding leaves out the position embedding (the token
        embedding is counted, since it doubles as the LM head)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and self.wpe is not None:
            n -= self.wpe.weight.numel()
        return n

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """idx, targets: (B, T) token ids. Returns logits (B, T, vocab) and the mean
        cross-entropy against targets (None without targets)."""
        logits = self.logits(idx)  # (B, T, vocab)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss

    def logits(
        self,
        idx: Tensor,
        caches: list[KVCache] | None = None,
        pos: int = 0,
        positions: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> Tensor:
        """Next-token logits (B, T, vocab) of tokens idx (B, T) at positions pos, pos + 1, ...,
        adding their keys and values to ``caches`` (one per block) when given. ``positions``
        ((T,) or (B, T)) gives the tokens other position embeddings than their places; ``mask``
        (B, T, pos + T) says which keys each query sees, in place of the causal mask."""
        return self.lm_head(self._hidden(idx, caches, pos, positions, mask))

    def _hidden(
        self,
        idx: Tensor,
        caches: list[KVCache] | None = None,
        pos: int = 0,
        positions: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> Tensor:
        """Final hidden states (B, T, C) of tokens idx (B, T) at positions pos, pos + 1, ..."""
        T = idx.size(1)
        if pos + T > self.block_size:
            raise ValueError(
                f"cannot run {T} tokens from position {pos}: block_size is {self.block_size}; "
                "crop the input to its last block_size tokens"
            )
        if positions is None:
            positions = torch.arange(pos, pos + T, device=idx.device)  # (T,)
        x = self.wte(idx)  # (B, T, C)
        angles = None
        if self.wpe is not None:
            x = x + self.wpe(positions)
        else:
            angles = self.rotary(positions)  # computed once, used by every block
        x = self.drop(x)
        for block, cache in zip(self.blocks, caches or [None] * len(self.blocks), strict=True):
            x = block(x, cache, pos, mask, angles)
        return self.ln_f(x)

    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Extend the prompt idx (B, T) by max_new_tokens sampled tokens: (B, T + max_new_tokens).

        See `stream` for the sampling options.
        """
        new = self.stream(idx, max_new_tokens, temperature, top_k, top_p, use_cache, generator)
        return torch.cat([idx, *new], dim=1)

    def stream(
        self,
        idx: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> Iterator[Tensor]:
        """Sample max_new_tokens tokens after the prompt idx (B, T), yielding each (B, 1) batch.

        Each token is drawn from the logits for the last (at most) block_size tokens, positions
        counted from the start of that window, as in training. temperature 0 is greedy; top_k
        keeps the k most likely tokens; top_p keeps the fewest most likely tokens whose total
        probability reaches top_p. use_cache changes only the speed: the logits agree up to
        floating-point rounding.
        """
        check_sampling_args(temperature, top_k, top_p)
        if idx.size(1) == 0:
            raise ValueError("the prompt must contain at least one token")
        window = idx[:, -self.block_size :]  # (B, t) the tokens the next one is conditioned on
        caches = [KVCache(self.block_size) for _ in self.blocks] if use_cache else None
        n_cached = 0  # leading tokens of window whose keys/values the caches hold
        for _ in range(max_new_tokens):
            with torch.no_grad(), _eval_mode(self):
                if caches is None:
                    h = self._hidden(window)
                else:
                    # the whole prompt on the first step, then just the newest token
                    h = self._hidden(window[:, n_cached:], caches, n_cached)
                    n_cached = window.size(1)
                logits = self.lm_head(h[:, -1]).float()  # (B, vocab)
                next_id = sample_token(logits, temperature, top_k, top_p, generator)  # (B, 1)
            window = torch.cat([window, next_id], dim=1)
            if window.size(1) > self.block_size:
                # The window slides by one token. Positions count from the window's start, as in
                # training, so every token now sits at a new position and all cached keys/values
                # are stale: from here on each step recomputes the whole window.
                window = window[:, 1:]
                caches = None
            yield next_id


@contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    # entered per sampling step rather than around the whole stream, so that a caller that stops
    # consuming the stream early never finds the module left in eval mode
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def check_sampling_args(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raises ValueError for a temperature, top_k or top_p that `stream` cannot sample with."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")


def sample_token(
    logits: Tensor,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator | None,
) -> Tensor:
    """Draw one token id per row of logits (B, vocab): (B, 1)."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    # Filter by masking to -inf instead of slicing, so the distribution keeps its full width:
    # multinomial then consumes the generator the same way whatever the filter keeps.
    if top_k is not None:
        kth_largest = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth_largest, float("-inf"))
    if top_p is not None:
        sorted_logits, order = logits.sort(dim=-1, descending=True)  # (B, vocab)
        sorted_probs = sorted_logits.softmax(dim=-1)
        # drop a token once the more likely ones already reach top_p; the top token always stays
        drop = sorted_probs.cumsum(dim=-1) - sorted_probs >= top_p
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))
    return torch.multinomial(logits.softmax(dim=-1), num_samples=1, generator=generator)
