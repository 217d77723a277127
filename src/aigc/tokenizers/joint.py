"""One id space for text and images, which a single GPT reads and writes.

Ids ``[0, 256)`` are UTF-8 bytes (as ``ByteTokenizer``'s), the next ``image_vocab_size`` are an
image tokenizer's codes, and the last five are special tokens: where a text and an image begin
and end, and padding. A sequence is a run of segments, each a text ``[begin_text, bytes...,
end_text]`` or an image ``[begin_image, codes..., end_image]`` of exactly ``tokens_per_image``
codes, so ``[text][image]`` teaches drawing from a prompt and ``[image][text]`` captioning.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

BYTES = 256
SPECIALS = ("begin_text", "end_text", "begin_image", "end_image", "pad")


class JointVocabulary:
    """Text bytes, image codes and the special tokens, with disjoint ids."""

    kind = "joint"

    def __init__(self, image_vocab_size: int, tokens_per_image: int) -> None:
        if image_vocab_size < 1 or tokens_per_image < 1:
            raise ValueError(
                f"image_vocab_size={image_vocab_size}, tokens_per_image={tokens_per_image}: "
                "both must be at least 1"
            )
        self.image_vocab_size = image_vocab_size
        self.tokens_per_image = tokens_per_image
        self.image_offset = BYTES
        first_special = BYTES + image_vocab_size
        self.special = {name: first_special + i for i, name in enumerate(SPECIALS)}

    @property
    def vocab_size(self) -> int:
        return BYTES + self.image_vocab_size + len(SPECIALS)

    @property
    def text_ids(self) -> range:
        return range(BYTES)

    @property
    def image_ids(self) -> range:
        return range(self.image_offset, self.image_offset + self.image_vocab_size)

    def text(self, text: str) -> list[int]:
        """``[begin_text, UTF-8 bytes..., end_text]``."""
        return [self.special["begin_text"], *text.encode("utf-8"), self.special["end_text"]]

    def image(self, codes: torch.Tensor) -> torch.Tensor:
        """An image tokenizer's ids ``(..., tokens_per_image)`` -> ``[begin_image, codes...,
        end_image]`` ``(..., tokens_per_image + 2)``, the codes moved into their range of the
        joint vocabulary."""
        if codes.shape[-1:] != (self.tokens_per_image,):
            raise ValueError(
                f"an image is {self.tokens_per_image} codes, got a tensor of shape "
                f"{tuple(codes.shape)}"
            )
        if codes.min() < 0 or codes.max() >= self.image_vocab_size:
            raise ValueError(f"image codes must be in [0, {self.image_vocab_size})")
        begin, end = (
            codes.new_full((*codes.shape[:-1], 1), self.special[name])
            for name in ("begin_image", "end_image")
        )
        return torch.cat([begin, codes + self.image_offset, end], dim=-1)

    def read_text(self, ids: Sequence[int] | torch.Tensor) -> str:
        """The text of the first text segment of ``ids``: its bytes up to ``end_text`` or to the
        end of ``ids`` (a caption cut short); undecodable bytes show as U+FFFD."""
        ids = _as_list(ids)
        begin, end = self.special["begin_text"], self.special["end_text"]
        if begin not in ids:
            raise ValueError("the sequence holds no text: it has no begin_text token")
        body = ids[ids.index(begin) + 1 :]
        body = body[: body.index(end)] if end in body else body
        stray = [i for i in body if i not in self.text_ids]
        if stray:
            raise ValueError(f"the text segment holds id {stray[0]}, which is not a byte")
        return bytes(body).decode("utf-8", errors="replace")

    def read_image(self, ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """The image tokenizer's ids ``(tokens_per_image,)`` of the first image segment of
        ``ids``; a segment that is cut short or holds other ids is refused."""
        ids = _as_list(ids)
        begin = self.special["begin_image"]
        if begin not in ids:
            raise ValueError("the sequence holds no image: it has no begin_image token")
        body = ids[ids.index(begin) + 1 :][: self.tokens_per_image]
        codes = [i for i in body if i in self.image_ids]
        if len(codes) < len(body):
            raise ValueError("the image segment holds ids that are not image codes")
        if len(codes) < self.tokens_per_image:
            raise ValueError(
                f"the sequence ends mid-image: {len(codes)} of {self.tokens_per_image} codes"
            )
        return torch.tensor(codes) - self.image_offset

    def state_dict(self) -> dict:
        return {
            "kind": self.kind,
            "image_vocab_size": self.image_vocab_size,
            "tokens_per_image": self.tokens_per_image,
        }

    @classmethod
    def from_state(cls, state: dict) -> JointVocabulary:
        if state.get("kind") != cls.kind:
            raise ValueError(f"state of a {state.get('kind')!r} tokenizer, not a joint vocabulary")
        return cls(state["image_vocab_size"], state["tokens_per_image"])


def _as_list(ids: Sequence[int] | torch.Tensor) -> list[int]:
    return ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
