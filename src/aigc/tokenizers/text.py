"""Character- and byte-level tokenizers for language modelling.

Both tokenizers describe themselves with `state_dict()`, a dict of plain str/int values, so
that they can ride along inside a checkpoint that is later opened with
`torch.load(weights_only=True)`; `tokenizer_from_state` turns such a dict back into a tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class CharTokenizer:
    """One token per character; the vocabulary is the set of characters of a training text."""

    kind = "char"
    unit = "character"

    def __init__(self, chars: str) -> None:
        if not chars:
            raise ValueError("the vocabulary must contain at least one character")
        if len(set(chars)) != len(chars):
            raise ValueError("the vocabulary must not contain a character twice")
        self.chars = chars
        self._id_of = {ch: i for i, ch in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        # sorting makes the ids independent of where characters first occur in the text
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        try:
            return [self._id_of[ch] for ch in text]
        except KeyError as err:
            raise ValueError(
                f"character {err.args[0]!r} is not in the vocabulary of the training text"
            ) from None

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        return "".join(self.chars[i] for i in _as_id_list(ids))

    def state_dict(self) -> dict:
        return {"kind": self.kind, "chars": self.chars}


class ByteTokenizer:
    """One token per UTF-8 byte: 256 symbols cover any text in any language."""

    kind = "byte"
    unit = "byte"

    @property
    def vocab_size(self) -> int:
        return 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        # a sampled sequence may cut a multi-byte character in half; show U+FFFD instead of failing
        return bytes(_as_id_list(ids)).decode("utf-8", errors="replace")

    def state_dict(self) -> dict:
        return {"kind": self.kind}


Tokenizer = CharTokenizer | ByteTokenizer
TOKENIZER_KINDS = ("char", "byte")


def build_tokenizer(kind: str, text: str) -> Tokenizer:
    """Make a tokenizer of the given kind ("char" or "byte") for a training text."""
    if kind == "char":
        return CharTokenizer.from_text(text)
    if kind == "byte":
        return ByteTokenizer()
    raise ValueError(f"unknown tokenizer kind {kind!r}; valid kinds are 'char' and 'byte'")


def tokenizer_from_state(state: dict) -> Tokenizer:
    """Rebuild a tokenizer from the dict its `state_dict()` returned."""
    kind = state.get("kind")
    if kind == "char":
        return CharTokenizer(state["chars"])
    if kind == "byte":
        return ByteTokenizer()
    raise ValueError(
        f"state has unknown tokenizer kind {kind!r}; valid kinds are 'char' and 'byte'"
    )


def _as_id_list(ids: Sequence[int] | torch.Tensor) -> list[int]:
    if isinstance(ids, torch.Tensor):
        if ids.dim() != 1:
            raise ValueError(f"expected a 1-D tensor of token ids, got shape {tuple(ids.shape)}")
        return ids.tolist()
    return list(ids)
