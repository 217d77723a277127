"""The training objective of the text + image model: captioned images written as rows of two
segments in either order, their position ids, and next-token cross-entropy over them."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from aigc.errors import ConfigError
from aigc.models.text_image.network import TextImageGPT
from aigc.nn.transformer import causal_mask
from aigc.tokenizers.joint import JointVocabulary

IGNORE = -100  # the target of padding: cross-entropy leaves it out


class Rows:
    """Rows of the joint vocabulary: the caption ``[begin_text, bytes..., end_text, pad...]``
    (``max_text_bytes`` bytes at most), padded to the longest caption of its batch, and the image
    ``[begin_image, codes..., end_image]``, the image first for captioning, else the caption.

    A token's position id is its place in its segment's slot (the caption's slot first, then the
    image's) whichever segment comes first, so that what the model learns of reading a caption
    serves writing one, and of images likewise. No token sees padding, and position ids are those
    of a row whose caption segment is whole: a row's logits are the same however long its
    batch's captions are, so a row costs only its batch's longest caption, and prompted and
    empty-prompted rows, padded to one length, run as one batch in guided sampling.
    """

    def __init__(self, vocab: JointVocabulary, max_text_bytes: int) -> None:
        self.vocab = vocab
        self.max_text_bytes = max_text_bytes
        self.text_length = max_text_bytes + 2  # the caption segment, padded
        self.image_length = vocab.tokens_per_image + 2

    @property
    def block_size(self) -> int:
        """The longest row: a whole caption segment and an image."""
        return self.text_length + self.image_length

    def text_segment(self, text: str, length: int | None = None) -> list[int]:
        """``[begin_text, bytes..., end_text]`` padded to ``length`` tokens (default: the whole
        caption segment, ``max_text_bytes + 2``)."""
        ids = self.vocab.text(text)
        if len(ids) - 2 > self.max_text_bytes:
            raise ConfigError(
                f"the text {text!r} is {len(ids) - 2} bytes, more than model.max_text_bytes="
                f"{self.max_text_bytes}"
            )
        return ids + [self.vocab.special["pad"]] * ((length or self.text_length) - len(ids))

    @staticmethod
    def caption_length(texts: Sequence[str]) -> int:
        """The length of a batch's caption segments: its longest text's bytes, begin and end."""
        return max(len(text.encode("utf-8")) for text in texts) + 2

    def image_prefixes(self, texts: Sequence[str], caption_length: int | None = None) -> Tensor:
        """What an image is drawn after ``(B, caption_length + 1)``: each text's caption segment
        (default length: the texts' ``caption_length``), then ``begin_image``."""
        length = caption_length or self.caption_length(texts)
        begin = self.vocab.special["begin_image"]
        return torch.tensor([[*self.text_segment(text, length), begin] for text in texts])

    def rows(self, texts: Sequence[str], codes: Tensor, image_first: Tensor) -> Tensor:
        """Rows ``(B, caption_length + image_length)`` of captions (padded to the longest) and
        images' codes ``(B, tokens_per_image)``, each in the order ``image_first`` ``(B,)``
        says."""
        images = self.vocab.image(codes)  # (B, image_length)
        length = self.caption_length(texts)
        captions = [self.text_segment(text, length) for text in texts]
        captions = torch.tensor(captions, device=codes.device)  # (B, caption_length)
        first = image_first.to(codes.device)[:, None]  # (B, 1)
        return torch.where(
            first, torch.cat([images, captions], dim=1), torch.cat([captions, images], dim=1)
        )

    def positions(self, image_first: Tensor, caption_length: int | None = None) -> Tensor:
        """The position ids ``(B, caption_length + image_length)`` of rows in the orders
        ``image_first`` ``(B,)`` says, whose caption segments are ``caption_length`` long
        (default: the whole segment): those of the same tokens in rows of whole segments."""
        caption = torch.arange(caption_length or self.text_length)
        image = self.text_length + torch.arange(self.image_length)
        orders = torch.stack([torch.cat([caption, image]), torch.cat([image, caption])])
        return orders[image_first.long().cpu()]

    def logits(
        self,
        network: TextImageGPT,
        rows: Tensor,
        image_first: Tensor,
        positions: Tensor | None = None,
    ) -> Tensor:
        """The logits ``(B, T - 1, vocab)`` of every next token of ``rows`` ``(B, T)``, at
        ``positions`` ``(B, T)`` (default: the rows' own)."""
        inputs = rows[:, :-1]
        mask = causal_mask(inputs != self.vocab.special["pad"])  # (B, T - 1, T - 1)
        if positions is None:
            positions = self.positions(image_first, rows.size(1) - self.image_length)
        return network(inputs, positions[:, :-1].to(rows.device), mask)

    def loss(
        self,
        network: TextImageGPT,
        texts: Sequence[str],
        codes: Tensor,
        generator: torch.Generator,
        image_to_text_prob: float,
        uncond_prob: float,
        prompt_shift_prob: float = 0.0,
    ) -> Tensor:
        """Cross-entropy of next-token prediction over rows of ``texts`` and the images' ``codes``
        ``(B, tokens_per_image)``, the image first with probability ``image_to_text_prob``, a
        prompt (a caption that comes first) emptied with probability ``uncond_prob``, and one
        moved up its slot with probability ``prompt_shift_prob``."""
        n = len(texts)
        image_first = torch.rand(n, generator=generator) < image_to_text_prob
        # Only prompts are emptied: an empty caption after an image would teach nothing.
        dropped = ~image_first & (torch.rand(n, generator=generator) < uncond_prob)
        texts = ["" if drop else text for text, drop in zip(texts, dropped, strict=True)]
        rows = self.rows(texts, codes, image_first)
        length = rows.size(1) - self.image_length  # the caption segment's
        positions = self.positions(image_first, length)  # (B, T)
        if prompt_shift_prob > 0:
            # A shifted prompt's ids move up its slot, by as much as the batch's longest fits.
            prompts = ~image_first & torch.tensor([bool(text) for text in texts])  # (B,)
            shifted = prompts & (torch.rand(n, generator=generator) < prompt_shift_prob)
            offsets = torch.randint(self.text_length - length + 1, (n,), generator=generator)
            positions[:, :length] += (offsets * shifted)[:, None]
        targets = rows[:, 1:].masked_fill(rows[:, 1:] == self.vocab.special["pad"], IGNORE)
        logits = self.logits(network, rows, image_first, positions)  # (B, T, vocab)
        return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE)

    def segment_nll(
        self, network: TextImageGPT, codes: Tensor, texts: Sequence[str], image_first: bool
    ) -> Tensor:
        """The negative log-likelihood in nats ``(B,)`` of each row's second segment: of the
        images' codes ``(B, tokens_per_image)`` after the captions ``texts``, or with
        ``image_first`` of the captions' bytes and their end after the images."""
        order = torch.full((len(texts),), image_first)
        rows = self.rows(texts, codes, order)
        targets = rows[:, 1:]
        kept = self.vocab.text_ids if image_first else self.vocab.image_ids
        scored = torch.isin(targets, torch.tensor(list(kept), device=targets.device))
        if image_first:  # a caption's end is part of its likelihood
            scored |= targets == self.vocab.special["end_text"]
        logits = self.logits(network, rows, order)  # (B, T, vocab)
        nll = F.cross_entropy(logits.transpose(1, 2).float(), targets, reduction="none")  # (B, T)
        return (nll * scored).sum(1)
