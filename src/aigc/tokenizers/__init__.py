"""Tokenizers: text to ids and back, each describing itself with a plain-value ``state_dict()``;
and the joint vocabulary of text bytes and image codes."""

from aigc.tokenizers.joint import JointVocabulary
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
    "JointVocabulary",
    "Tokenizer",
    "build_tokenizer",
    "tokenizer_from_state",
]
