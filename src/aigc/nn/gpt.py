"""A decoder-only GPT and its one key/value-cached decoding loop, shared by the language model and
the text + image model.

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
from aigc.nn.transformer import Block, KVCache, Rotary, causal_mask, init_transformer_weights

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
        last: bool = False,
    ) -> Tensor:
        """Next-token logits (B, T, vocab) of tokens idx (B, T) at places pos, pos + 1, ...,
        adding their keys and values to ``caches`` (one per block) when given. ``positions``
        ((T,) or (B, T)) gives the tokens other position ids than their places; ``mask``
        (B, T, pos + T) says which keys each query sees, in place of the causal mask. ``last``:
        only the last token's logits (B, 1, vocab)."""
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
        return self.lm_head(self.ln_f(x[:, -1:] if last else x))

    def decode(
        self,
        prefix: Tensor,
        steps: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        *,
        allowed: Tensor | None = None,
        unconditional: Tensor | None = None,
        guidance_scale: float = 1.0,
        guided_tokens: tuple[int, int] | None = None,
        stop_id: int | None = None,
        positions: Tensor | None = None,
        pad_id: int | None = None,
        use_cache: bool = True,
    ) -> Iterator[Tensor]:
        """Draws up to ``steps`` tokens after each row of ``prefix`` (B, T), yielding each (B, 1).

        ``temperature`` 0 is greedy; ``top_k`` keeps the k most likely tokens; ``top_p`` the
        fewest most likely whose total probability reaches top_p; ``allowed`` (vocab,) the ids it
        marks. With ``unconditional`` prefixes (B, T), the logits are those of classifier-free
        guidance, ``u + guidance_scale * (c - u)``, at the steps ``guided_tokens``
        ``(first, last)`` names (default: all), and the conditional ones at the others.
        Decoding stops early once every row has drawn ``stop_id``. ``positions`` (T + steps,)
        are the position ids of the prefix and the tokens drawn (default: their places), and
        prefix tokens ``pad_id`` are seen by none. ``prefix`` and ``steps`` must fit in
        ``block_size``. ``use_cache`` changes only the speed: the logits agree up to rounding.
        """
        check_sampling_args(temperature, top_k, top_p)
        if prefix.size(1) == 0:
            raise ValueError("the prompt must contain at least one token")
        rows = prefix if unconditional is None else torch.cat([prefix, unconditional])  # (R, T)
        real = None  # (R, length): False for the padding that no query sees
        if pad_id is not None and bool((rows == pad_id).any()):
            real = rows != pad_id
        caches = [KVCache(self.block_size) for _ in self.blocks] if use_cache else None
        first, last = guided_tokens or (0, steps - 1)
        finished = torch.zeros(len(prefix), dtype=torch.bool, device=prefix.device)  # (B,)
        cached = 0  # leading tokens of rows whose keys and values the caches hold
        for step in range(steps):
            with torch.no_grad(), _eval_mode(self):
                n = rows.size(1)
                # The whole prefix at the first step, then just the newest token.
                start = cached if caches is not None else 0
                ids = None if positions is None else positions[start:n]
                mask = None if real is None else causal_mask(real)[:, start:]  # (R, n - start, n)
                logits = self.logits(rows[:, start:], caches, start, ids, mask, last=True)
                logits = logits[:, -1].float()  # (R, vocab)
                cached = n
                if unconditional is not None:
                    conditional, free = logits.chunk(2)
                    scale = guidance_scale if first <= step <= last else 1.0
                    logits = free + scale * (conditional - free)
                if allowed is not None:
                    logits = logits.masked_fill(~allowed, float("-inf"))
                token = sample_token(logits, temperature, top_k, top_p, generator)  # (B, 1)
            yield token
            if stop_id is not None:
                finished |= token[:, 0] == stop_id
                if bool(finished.all()):
                    return
            rows = torch.cat([rows, token.repeat(len(rows) // len(token), 1)], dim=1)
            if real is not None:
                real = torch.cat([real, real.new_ones(len(real), 1)], dim=1)


@contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    # entered per decoding step rather than around the whole loop, so that a caller that stops
    # consuming the tokens early never finds the module left in eval mode
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def check_sampling_args(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raises ConfigError for a temperature, top_k or top_p that `sample_token` cannot draw with."""
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ConfigError(f"top_p must be in (0, 1], got {top_p}")


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
