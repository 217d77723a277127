"""Character-, byte- and BPE-level tokenizers for language modelling.

Each tokenizer describes itself with `state_dict()`, a dict of plain str/int values, so that it
can ride along inside a checkpoint that is later opened with `torch.load(weights_only=True)`;
`tokenizer_from_state` turns such a dict back into a tokenizer. `encode_array` turns a text into
an integer numpy array, which is how a corpus is tokenized; `encode` gives a list, for prompts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain
from pathlib import Path

import numpy as np
import tokenizers
import torch
from tokenizers import decoders, models, pre_tokenizers, trainers


class _Tokenizer:
    """What every tokenizer shares: `encode` through `encode_array`."""

    def encode_array(self, text: str) -> np.ndarray:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()


class CharTokenizer(_Tokenizer):
    """One token per character; the vocabulary is the set of characters of a training text."""

    kind = "char"
    unit = "character"

    def __init__(self, chars: str) -> None:
        if not chars:
            raise ValueError("the vocabulary must contain at least one character")
        if len(set(chars)) != len(chars):
            raise ValueError("the vocabulary must not contain a character twice")
        self.chars = chars
        # Code points in ascending order and the id of each: encoding is one vectorised search.
        codes = _code_points(chars)
        self._order = np.argsort(codes)
        self._sorted_codes = codes[self._order]

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> CharTokenizer:
        """The vocabulary of a text given in pieces (a corpus read in chunks)."""
        chars: set[str] = set()
        for text in texts:
            chars.update(text)
        # sorting makes the ids independent of where characters first occur in the text
        return cls("".join(sorted(chars)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode_array(self, text: str) -> np.ndarray:
        codes = _code_points(text)
        found = np.searchsorted(self._sorted_codes, codes).clip(max=self.vocab_size - 1)
        unknown = self._sorted_codes[found] != codes
        if unknown.any():
            raise ValueError(
                f"character {text[int(unknown.argmax())]!r} is not in the vocabulary of the "
                "training text"
            )
        return self._order[found]

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        return "".join(self.chars[i] for i in _as_id_list(ids))

    def state_dict(self) -> dict:
        return {"kind": self.kind, "chars": self.chars}


class ByteTokenizer(_Tokenizer):
    """One token per UTF-8 byte: 256 symbols cover any text in any language."""

    kind = "byte"
    unit = "byte"

    @property
    def vocab_size(self) -> int:
        return 256

    def encode_array(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        # a sampled sequence may cut a multi-byte character in half; show U+FFFD instead of failing
        return bytes(_as_id_list(ids)).decode("utf-8", errors="replace")

    def state_dict(self) -> dict:
        return {"kind": self.kind}


class BPETokenizer(_Tokenizer):
    """A Hugging Face ``tokenizers`` tokenizer: a byte-level BPE trained on the corpus (any text
    in any language, no unknown tokens), or one loaded from a ``tokenizer.json`` (GPT-2's, say).

    Its state is the tokenizer's own JSON, so a checkpoint carries it as one string.
    """

    kind = "bpe"
    unit = "token"

    def __init__(self, tokenizer: tokenizers.Tokenizer) -> None:
        self._tokenizer = tokenizer

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int) -> BPETokenizer:
        """Learns ``vocab_size`` tokens (the 256 bytes and merges of them) from a text given in
        pieces, as GPT-2's tokenizer is built: split into words and spaces, then merged."""
        if vocab_size <= 256:
            raise ValueError(f"vocab_size={vocab_size}: a byte-level BPE needs more than 256")
        tokenizer = tokenizers.Tokenizer(models.BPE())
        # No prefix space: a corpus is encoded in pieces, and each would gain a space.
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        # Lines rather than whole chunks: the trainer splits a batch of them over the cores.
        tokenizer.train_from_iterator(
            (text.splitlines(keepends=True) for text in texts), trainer=trainer
        )
        return cls(tokenizer)

    @classmethod
    def from_file(cls, path: str | Path) -> BPETokenizer:
        """A ``tokenizer.json`` as the ``tokenizers`` library writes it (``save``)."""
        return cls(tokenizers.Tokenizer.from_file(str(path)))

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size()

    def encode_array(self, text: str) -> np.ndarray:
        # Line by line, which the library spreads over the cores: a word never spans two lines
        # (only the spaces that indent a line are a token apart from the line break before
        # them). No special tokens ([CLS], <s>) are added.
        lines = self._tokenizer.encode_batch(
            text.splitlines(keepends=True), add_special_tokens=False
        )
        return np.fromiter(chain.from_iterable(line.ids for line in lines), dtype=np.int64)

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        return self._tokenizer.decode(_as_id_list(ids), skip_special_tokens=False)

    def state_dict(self) -> dict:
        return {"kind": self.kind, "json": self._tokenizer.to_str()}


Tokenizer = CharTokenizer | ByteTokenizer | BPETokenizer
TOKENIZER_KINDS = ("char", "byte", "bpe")


def build_tokenizer(kind: str, texts: Iterable[str], vocab_size: int | None = None) -> Tokenizer:
    """Make a tokenizer of the given kind for a training text given in pieces; ``vocab_size``
    is the size of a BPE's vocabulary (the others take theirs from the text)."""
    if kind == "char":
        return CharTokenizer.from_texts(texts)
    if kind == "byte":
        return ByteTokenizer()
    if kind == "bpe":
        if vocab_size is None:
            raise ValueError("a BPE tokenizer needs a vocab_size")
        return BPETokenizer.train(texts, vocab_size)
    raise ValueError(
        f"unknown tokenizer kind {kind!r}; valid kinds are {', '.join(TOKENIZER_KINDS)}"
    )


def tokenizer_from_state(state: dict) -> Tokenizer:
    """Rebuild a tokenizer from the dict its `state_dict()` returned."""
    kind = state.get("kind")
    if kind == "char":
        return CharTokenizer(state["chars"])
    if kind == "byte":
        return ByteTokenizer()
    if kind == "bpe":
        return BPETokenizer(tokenizers.Tokenizer.from_str(state["json"]))
    raise ValueError(
        f"state has unknown tokenizer kind {kind!r}; valid kinds are {', '.join(TOKENIZER_KINDS)}"
    )


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def _as_id_list(ids: Sequence[int] | torch.Tensor) -> list[int]:
    if isinstance(ids, torch.Tensor):
        if ids.dim() != 1:
            raise ValueError(f"expected a 1-D tensor of token ids, got shape {tuple(ids.shape)}")
        return ids.tolist()
    return list(ids)
