"""A small bidirectional Transformer that turns prompts, as UTF-8 bytes, into vectors."""

from typing import NamedTuple

import torch
from torch import Tensor, nn

from aigc.errors import ConfigError
from aigc.nn.transformer import Block, init_transformer_weights
from aigc.tokenizers.text import ByteTokenizer

_PAD = 256  # the id after the 256 byte values


class TextEncoding(NamedTuple):
    states: Tensor  # (B, T, C) one state per byte
    mask: Tensor  # (B, T) True where a byte is real, False for padding
    pooled: Tensor  # (B, C) the real bytes' states, weighed by a learned attention


class TextEncoder(nn.Module):
    """Prompts -> per-byte states and one pooled vector each, over the GPT's Transformer blocks
    (without the causal mask: every byte sees the whole prompt) and attention pooling.

    Bytes cover any language with 256 symbols, so no vocabulary depends on the training captions;
    a prompt may be at most ``max_length`` bytes long.
    """

    def __init__(
        self,
        max_length: int = 64,
        n_layer: int = 2,
        n_head: int = 4,
        n_embd: int = 128,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.max_length = max_length
        self.n_embd = n_embd
        self.tokenizer = ByteTokenizer()
        self.wte = nn.Embedding(self.tokenizer.vocab_size + 1, n_embd)  # + padding
        self.wpe = nn.Embedding(max_length, n_embd)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(n_embd, n_head, dropout, bias=True, causal=False) for _ in range(n_layer)
        )
        self.ln_f = nn.LayerNorm(n_embd)
        # Attention pooling: a learned query weighs the bytes, so that the words that matter
        # (the class word, say) outweigh the rest of the prompt. Zero: the mean, at first.
        self.pool_query = nn.Parameter(torch.zeros(n_embd))
        init_transformer_weights(self, self.blocks)

    def tokenize(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """Byte ids ``(B, T)``, padded to the longest prompt, and the mask of real bytes."""
        encoded = [self.tokenizer.encode(text) for text in texts]
        for text, ids in zip(texts, encoded, strict=True):
            if not ids:
                raise ConfigError("a prompt is empty: describe what to generate")
            if len(ids) > self.max_length:
                raise ConfigError(
                    f"the prompt {text!r} is {len(ids)} bytes long; this model reads at most "
                    f"{self.max_length}"
                )
        length = max(map(len, encoded))
        ids = torch.full((len(texts), length), _PAD, dtype=torch.long)
        for row, row_ids in enumerate(encoded):
            ids[row, : len(row_ids)] = torch.tensor(row_ids)
        return ids.to(self.wte.weight.device), ids.to(self.wte.weight.device) != _PAD

    def forward(self, texts: list[str]) -> TextEncoding:
        ids, mask = self.tokenize(texts)  # (B, T) each
        positions = torch.arange(ids.size(1), device=ids.device)
        x = self.drop(self.wte(ids) + self.wpe(positions))  # (B, T, C)
        for block in self.blocks:
            x = block(x, mask=mask)
        states = self.ln_f(x)
        scores = (states @ self.pool_query.to(states.dtype)) / self.n_embd**0.5  # (B, T)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=1)  # padding gets none
        pooled = (weights.unsqueeze(-1) * states).sum(dim=1)  # (B, C)
        return TextEncoding(states, mask, pooled)
