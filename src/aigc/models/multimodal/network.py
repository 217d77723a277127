"""The GPT of ``models/transformer`` over the joint vocabulary, with decoding held to one kind of
token (image codes, or bytes) and, for images, classifier-free guidance."""

import torch
from torch import Tensor, nn

from aigc.models.transformer.network import GPT, sample_token
from aigc.nn.transformer import KVCache, causal_mask


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
        drawn from the ids that the boolean ``allowed`` ``(vocab,)`` marks. With
        ``unconditional`` prefixes (as long as ``prefix``), the logits are those of classifier-free
        guidance, ``u + guidance_scale * (c - u)``, at the tokens ``guidance_interval``
        ``(first, last)`` (default: all) names, and the conditional ones at the others. Decoding
        stops early once every row has drawn ``stop_id``. ``positions`` ``(T + steps,)`` are the
        position ids of the prefix and the tokens drawn (default: their places), and prefix tokens
        ``pad_id`` are seen by none. ``use_cache`` changes only the speed."""
        rows = prefix if unconditional is None else torch.cat([prefix, unconditional])
        T = prefix.size(1)
        if positions is None:
            positions = torch.arange(T + steps, device=prefix.device)
        caches = [KVCache(self.gpt.block_size) for _ in self.gpt.blocks] if use_cache else None
        real = rows != pad_id if pad_id is not None else torch.ones_like(rows, dtype=torch.bool)
        real = torch.cat([real, real.new_ones(len(rows), steps)], dim=1)  # (R, T + steps)
        masked = not bool(real.all())

        def mask(length: int) -> Tensor | None:  # causal, but for padding
            return causal_mask(real[:, :length]) if masked else None

        logits = self.gpt.logits(rows, caches, positions=positions[:T], mask=mask(T))[:, -1]
        drawn: list[Tensor] = []
        finished = torch.zeros(len(prefix), dtype=torch.bool, device=prefix.device)  # (B,)
        first, last = guidance_interval or (0, steps - 1)
        for step in range(steps):
            logits = logits.float()
            if unconditional is not None:
                conditional, free = logits.chunk(2)
                scale = guidance_scale if first <= step <= last else 1.0
                logits = free + scale * (conditional - free)
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
                n = rows.size(1)
                logits = self.gpt.logits(rows, positions=positions[:n], mask=mask(n))[:, -1]
            else:  # one new query: it sees every cached key but padding
                place = T + step
                keys = real[:, None, : place + 1] if masked else None  # (R, 1, place + 1)
                logits = self.gpt.logits(fed, caches, place, positions[place : place + 1], keys)
                logits = logits[:, -1]
        return torch.cat(drawn, dim=1)
