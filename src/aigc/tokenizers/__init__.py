"""Tokenizers: text to ids and back, each describing itself with a plain-value ``state_dict()``."""

from aigc.tokenizers.text import (
    TOKENIZER_KINDS,
    BPETokenizer,
    ByteTokenizer,
    CharTokenizer,
    Tokenizer,
    build_tokenizer,
    tokenizer_from_state,
)

__all__ = [
    "TOKENIZER_KINDS",
    "BPETokenizer",
    "ByteTokenizer",
    "CharTokenizer",
    "Tokenizer",
    "build_tokenizer",
    "tokenizer_from_state",
]
