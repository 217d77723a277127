"""The GPT of ``models/transformer`` over the joint vocabulary, with decoding held to one kind of
token (image codes, or bytes) and, for images, classifier-free guidance."""

import torch
from torch import Tensor, nn

from aigc.models.transformer.network import GPT, sample_token
from aigc.nn.transformer import KVCache


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

    def forward(self, idx: Tensor) -> Tensor:
        return self.gpt.logits(idx)  # (B, T, vocab)

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
        stop_id: int | None = None,
        use_cache: bool = True,
    ) -> Tensor:
        """Up to ``steps`` tokens ``(B, steps)`` after each row of ``prefix`` ``(B, T)``, each
        drawn from the ids that the boolean ``allowed`` ``(vocab,)`` marks. With
        ``unconditional`` prefixes (as long as ``prefix``), the logits are those of classifier-free
        guidance, ``u + guidance_scale * (c - u)``. Decoding stops early once every row has drawn
        ``stop_id``. ``use_cache`` changes only the speed."""
        rows = prefix if unconditional is None else torch.cat([prefix, unconditional])
        caches = [KVCache(self.gpt.block_size) for _ in self.gpt.blocks] if use_cache else None
        logits = self.gpt.logits(rows, caches)[:, -1]  # (R, vocab)
        drawn: list[Tensor] = []
        finished = torch.zeros(len(prefix), dtype=torch.bool, device=prefix.device)  # (B,)
        for step in range(steps):
            logits = logits.float()
            if unconditional is not None:
                conditional, free = logits.chunk(2)
                logits = free + guidance_scale * (conditional - free)
            logits = logits.masked_fill(~allowed, float("-inf"))
            token = sample_token(logits, temperature, top_k, None, generator)  # (B, 1)
            drawn.append(token)
            if stop_id is not None:
                finished |= token[:, 0] == stop_id
            if bool(finished.all()) or step == steps - 1:
                break
            fed = token if unconditional is None else torch.cat([token, token])
            if caches is None:
                rows = torch.cat([rows, fed], dim=1)
                logits = self.gpt.logits(rows)[:, -1]
            else:
                logits = self.gpt.logits(fed, caches, rows.size(1) + step)[:, -1]
        return torch.cat(drawn, dim=1)
