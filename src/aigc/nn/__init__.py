"""Building blocks that every family imports: Transformer blocks and the prompt encoder."""

from aigc.nn.text_encoder import TextEncoder, TextEncoding
from aigc.nn.transformer import Block, KVCache, Rotary, SelfAttention, init_transformer_weights

__all__ = [
    "Block",
    "KVCache",
    "Rotary",
    "SelfAttention",
    "TextEncoder",
    "TextEncoding",
    "init_transformer_weights",
]
