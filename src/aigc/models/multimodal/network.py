"""The text + image model's network: the shared GPT (``aigc.nn.gpt``) over the joint vocabulary,
decoding segments of one kind of token (image codes, or bytes)."""

import torch
from torch import Tensor, nn

from aigc.nn.gpt import GPT


class TextImageGPT(nn.Module):
    """A ``GPT`` whose samples are segments: ``decode`` extends a batch of prefixes by tokens
    drawn only from ``allowed`` ids."""

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        n_layer: int,
        n_head: int,
        n_embd: int,
        dropout: float = 0.0,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.gpt = GPT(vocab_size, block_size, n_layer, n_head, n_embd, dropout, bias)

    def forward(
        self, idx: Tensor, positions: Tensor | None = None, mask: Tensor | None = None
    ) -> Tensor:
        """Logits ``(B, T, vocab)`` of tokens ``idx`` ``(B, T)`` at ``positions`` ``(B, T)``
        (default: their places), with the attention ``mask`` ``(B, T, T)`` (default: causal)."""
        return self.gpt.logits(idx, positions=positions, mask=mask)

    def decode(
        self,
        prefix: Tensor,
        steps: int,
        allowed: Tensor,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        guidance_scale: float = 1.0,
        unconditional: Tensor | None = None,
        guidance_interval: tuple[int, int] | None = None,
        stop_id: int | None = None,
        positions: Tensor | None = None,
        pad_id: int | None = None,
        use_cache: bool = True,
    ) -> Tensor:
        """Up to ``steps`` tokens ``(B, steps)`` after each row of ``prefix`` ``(B, T)``, each
        drawn from the ids that the boolean ``allowed`` ``(vocab,)`` marks: ``GPT.decode``."""
        tokens = self.gpt.decode(
            prefix,
            steps,
            temperature,
            top_k,
            None,
            generator,
            allowed=allowed,
            unconditional=unconditional,
            guidance_scale=guidance_scale,
            guidance_interval=guidance_interval,
            stop_id=stop_id,
            positions=positions,
            pad_id=pad_id,
            use_cache=use_cache,
        )
        return torch.cat(list(tokens), dim=1)
