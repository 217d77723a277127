"""The language model's decoding: a text of any length, continued by the shared GPT
(``aigc.nn.gpt``) from a window of its last ``block_size`` tokens."""

from collections.abc import Iterator

import torch
from torch import Tensor

from aigc.nn.gpt import GPT


def stream(
    gpt: GPT,
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
    counted from the start of that window, as in training (see `GPT.decode` for the options).
    """
    window = idx[:, -gpt.block_size :]  # (B, t) the tokens the next one is conditioned on
    sampling = (temperature, top_k, top_p, generator)
    # Tokens drawn before the window is full, with the cache.
    within = min(max_new_tokens, gpt.block_size - window.size(1) + 1)
    for token in gpt.decode(window, within, *sampling, use_cache=use_cache):
        window = torch.cat([window, token], dim=1)
        yield token
    for _ in range(max_new_tokens - within):
        # The window slides by one token. Positions count from the window's start, so every
        # token now sits at a new position and all cached keys and values are stale: each step
        # runs the whole window.
        window = window[:, -gpt.block_size :]
        token = next(gpt.decode(window, 1, *sampling))
        window = torch.cat([window, token], dim=1)
        yield token
