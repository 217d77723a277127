"""The LightningModule that trains one GPT on captioned images in both directions: text -> image
(drawing what a prompt says) and image -> text (captioning)."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from aigc.core.checkpoints import load_model
from aigc.core.conditioning import Condition
from aigc.core.module import GenerativeModule, Monitor, Progress, derived_generator
from aigc.core.optim import warmup_schedule, weight_decay_groups
from aigc.core.samples import Samples
from aigc.errors import ConfigError, check_positive
from aigc.models.multimodal.network import TextImageGPT
from aigc.models.transformer.network import check_sampling_args
from aigc.models.vqvae import VQVAE
from aigc.nn.transformer import AttentionBackends, causal_mask
from aigc.tokenizers.joint import JointVocabulary
from aigc.utils.log_steps import logs_this_step

Batch = dict[str, Any]  # image (B, C, H, W) in [-1, 1], text (B strings), maybe codes (B, T)
IGNORE = -100  # the target of padding: cross-entropy leaves it out


class TextImageModel(GenerativeModule):
    """A GPT over the joint vocabulary of UTF-8 bytes and an image tokenizer's codes.

    Every training example is a row of two segments: the caption
    ``[begin_text, bytes..., end_text, pad...]`` (``max_text_bytes`` bytes at most), padded to
    the longest caption of its batch, and the image ``[begin_image, codes..., end_image]``. With
    probability ``image_to_text_prob`` the image comes first (the model learns to caption), else
    the caption does (it learns to draw); such a prompt is replaced by the empty one with
    probability ``uncond_prob``, which gives the unconditional model that classifier-free
    guidance contrasts and that draws without a prompt. A token's position id is its place in
    its segment's slot (the caption's slot first, then the image's) whichever segment comes
    first, so that what the model learns of reading a caption serves writing one, and of images
    likewise.

    No token sees padding, and position ids are those of a row whose caption segment is whole:
    a row's logits are the same however long its batch's captions are. A row thus costs only
    its batch's longest caption (a datamodule that batches captions of similar length,
    ``data.group_by_length``, makes that short), and prompted and empty-prompted rows, padded to
    one length, run as one batch in guided sampling.

    With probability ``prompt_shift_prob`` a prompt's position ids move up its slot by a random
    number of places, in training: learned ids would otherwise tie what a word means to the
    places the training wordings put it at, and a wording that puts it elsewhere would not be
    read.

    The image tokenizer (a ``VQVAE``, frozen) is part of the model: ``image_tokenizer`` names
    its checkpoint when training starts, and its hyperparameters replace the path in this
    model's own, so that checkpoints rebuild with no other file.
    """

    produces = "image"
    scored_as = "text_image"
    monitor = Monitor("val/loss", "min")
    preview_tag = "captions"

    def __init__(
        self,
        image_tokenizer: str | dict[str, Any],
        image_shape: Sequence[int],
        max_text_bytes: int = 48,
        n_layer: int = 4,
        n_head: int = 4,
        n_embd: int = 128,
        dropout: float = 0.0,
        bias: bool = False,
        image_to_text_prob: float = 0.5,
        uncond_prob: float = 0.1,
        prompt_shift_prob: float = 0.0,
        guidance_scale: float = 1.0,
        guidance_interval: Sequence[int] | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        best_of: int = 1,
        lr: float = 1e-3,
        warmup_steps: int = 100,
        lr_decay_steps: int | None = None,
        min_lr: float = 0.0,
        weight_decay: float = 0.1,
        betas: Sequence[float] = (0.9, 0.99),
        ema_decay: float | None = None,
        attention_backends: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        sample_prompts: Sequence[str] | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__("text", None, class_names, sample_prompts)
        check_positive(
            "model",
            max_text_bytes=max_text_bytes,
            lr=lr,
            n_layer=n_layer,
            n_head=n_head,
            n_embd=n_embd,
        )
        for name, p in (
            ("image_to_text_prob", image_to_text_prob),
            ("uncond_prob", uncond_prob),
            ("prompt_shift_prob", prompt_shift_prob),
        ):
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"model.{name}={p}; choose a value in [0, 1]")
        if lr_decay_steps is not None:
            check_positive("model", lr_decay_steps=lr_decay_steps)
        self.save_hyperparameters()
        self.image_tokenizer = _image_tokenizer(image_tokenizer)
        self.hparams["image_tokenizer"] = dict(self.image_tokenizer.hparams)
        if tuple(image_shape) != self.image_tokenizer.image_shape:
            raise ConfigError(
                f"the data's images are {tuple(image_shape)}, but the image tokenizer reads "
                f"{self.image_tokenizer.image_shape}: pair it with the data it was trained on"
            )
        self.vocab = JointVocabulary(
            self.image_tokenizer.vocab_size, self.image_tokenizer.tokens_per_image
        )
        self._check_interval(guidance_interval)
        self.text_length = max_text_bytes + 2  # the caption segment, padded
        self.image_length = self.vocab.tokens_per_image + 2
        for prompt in self.sample_prompts:  # a prompt too long fails now, not at step 200
            self.text_segment(prompt)
        self.network = TextImageGPT(
            self.vocab.vocab_size,
            self.text_length + self.image_length,  # position ids: those of whole segments
            n_layer,
            n_head,
            n_embd,
            dropout,
            bias,
        )
        self.init_ema(ema_decay)
        if compile:
            self.network.compile()
        self.attention = AttentionBackends(attention_backends)

    @property
    def sampling_network(self) -> nn.Module:
        return self.network

    def train(self, mode: bool = True) -> "TextImageModel":
        super().train(mode)
        self.image_tokenizer.eval()  # frozen: a learned codebook must not move in training mode
        return self

    def text_segment(self, text: str, length: int | None = None) -> list[int]:
        """``[begin_text, bytes..., end_text]`` padded to ``length`` tokens (default: the whole
        caption segment, ``max_text_bytes + 2``)."""
        ids = self.vocab.text(text)
        budget = self.hparams.max_text_bytes
        if len(ids) - 2 > budget:
            raise ConfigError(
                f"the text {text!r} is {len(ids) - 2} bytes, more than model.max_text_bytes="
                f"{budget}"
            )
        return ids + [self.vocab.special["pad"]] * ((length or self.text_length) - len(ids))

    @staticmethod
    def caption_length(texts: Sequence[str]) -> int:
        """The length of a batch's caption segments: its longest text's bytes, begin and end."""
        return max(len(text.encode("utf-8")) for text in texts) + 2

    def image_prefixes(
        self, texts: Sequence[str], caption_length: int | None = None
    ) -> torch.Tensor:
        """What an image is drawn after ``(B, caption_length + 1)``: each text's caption segment
        (default length: the texts' ``caption_length``), then ``begin_image``."""
        length = caption_length or self.caption_length(texts)
        begin = self.vocab.special["begin_image"]
        rows = [[*self.text_segment(text, length), begin] for text in texts]
        return torch.tensor(rows, device=self.device)

    def rows(
        self, texts: Sequence[str], codes: torch.Tensor, image_first: torch.Tensor
    ) -> torch.Tensor:
        """Training rows ``(B, caption_length + image_length)`` of captions (padded to the
        longest) and images' codes ``(B, tokens_per_image)``, each in the order ``image_first``
        ``(B,)`` says."""
        images = self.vocab.image(codes)  # (B, image_length)
        length = self.caption_length(texts)
        captions = [self.text_segment(text, length) for text in texts]
        captions = torch.tensor(captions, device=codes.device)  # (B, caption_length)
        first = image_first.to(codes.device)[:, None]  # (B, 1)
        return torch.where(
            first, torch.cat([images, captions], dim=1), torch.cat([captions, images], dim=1)
        )

    def _codes(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.image_tokenizer.encode(images)  # (B, tokens_per_image)

    def positions(
        self, image_first: torch.Tensor, caption_length: int | None = None
    ) -> torch.Tensor:
        """The position ids ``(B, caption_length + image_length)`` of rows in the orders
        ``image_first`` ``(B,)`` says, whose caption segments are ``caption_length`` long
        (default: the whole segment); the ids are those of the same tokens in rows of whole
        segments, so that cutting padding changes no logit.

        An id names a token's place in its segment's slot, the same in both orders (the caption's
        slot first, then the image's), so that what the model learns of captions and of images
        serves both directions."""
        length = caption_length or self.text_length
        caption = torch.arange(length, device=self.device)
        image = torch.arange(self.image_length, device=self.device)
        text_first = torch.cat([caption, self.text_length + image])
        image_first_ids = torch.cat([self.text_length + image, caption])
        return torch.stack([text_first, image_first_ids])[image_first.long().to(self.device)]

    def next_token_logits(
        self,
        network: nn.Module,
        rows: torch.Tensor,
        image_first: torch.Tensor,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The logits ``(B, T - 1, vocab)`` of every next token of ``rows`` ``(B, T)``, at
        ``positions`` ``(B, T)`` (default: the rows' own, ``positions(image_first)``)."""
        inputs = rows[:, :-1]
        mask = causal_mask(inputs != self.vocab.special["pad"])  # (B, T - 1, T - 1)
        if positions is None:
            positions = self.positions(image_first, rows.size(1) - self.image_length)
        with self.attention():
            return network(inputs, positions[:, :-1], mask)

    def setup(self, stage: str) -> None:
        """Before training: the datamodule encodes its images once (cached on disk), rather than
        this model at every batch."""
        datamodule = self.trainer.datamodule
        if stage == "fit" and hasattr(datamodule, "tokenize_images"):
            self.image_tokenizer.to(self.trainer.strategy.root_device)
            datamodule.tokenize_images(self.image_tokenizer)

    def loss(
        self,
        network: nn.Module,
        batch: Batch,
        generator: torch.Generator,
        training: bool = False,
    ) -> torch.Tensor:
        """Cross-entropy of next-token prediction over rows in a random order per example. In
        ``training``, prompts move up their slot with probability prompt_shift_prob."""
        hp = self.hparams
        n = len(batch["text"])
        image_first = torch.rand(n, generator=generator) < hp.image_to_text_prob
        # Only prompts are emptied: an empty caption after an image would teach nothing.
        dropped = ~image_first & (torch.rand(n, generator=generator) < hp.uncond_prob)
        texts = ["" if drop else text for text, drop in zip(batch["text"], dropped, strict=True)]
        prompts = ~image_first & torch.tensor([bool(text) for text in texts])  # (B,)
        # The datamodule's cached codes, where it has them (see setup).
        codes = batch["codes"].long() if "codes" in batch else self._codes(batch["image"])
        rows = self.rows(texts, codes, image_first)
        length = rows.size(1) - self.image_length  # the caption segment's
        positions = self.positions(image_first, length)  # (B, T)
        if training and hp.prompt_shift_prob > 0:
            # A shifted prompt's ids move up its slot, by as much as the batch's longest fits.
            shifted = prompts & (torch.rand(n, generator=generator) < hp.prompt_shift_prob)
            offsets = torch.randint(self.text_length - length + 1, (n,), generator=generator)
            positions[:, :length] += (offsets * shifted).to(positions.device)[:, None]
        targets = rows[:, 1:].masked_fill(rows[:, 1:] == self.vocab.special["pad"], IGNORE)
        logits = self.next_token_logits(network, rows, image_first, positions)  # (B, T, vocab)
        return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss = self.loss(self.network, batch, self.training_rng, training=True)
        if logs_this_step(self.trainer):
            self.log("train/loss", loss, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        generator = torch.Generator().manual_seed(batch_idx)  # the same rows every validation
        loss = self.loss(self.generating_network(), batch, generator)
        self.log(
            self.monitor.metric, loss, prog_bar=True, batch_size=len(batch["text"]), sync_dist=True
        )
        self.keep_preview_images(batch["image"], batch_idx)

    def preview(self) -> Samples | None:
        """The first validation images, each with the caption the model writes for it."""
        if self.preview_images is None:
            return None
        return Samples(images=self.preview_images, captions=self.caption(self.preview_images))

    @property
    def condition_kinds(self) -> frozenset[str]:
        return frozenset({"text", "image"})  # prompts to draw, images to caption

    def default_condition(self) -> None:
        return None  # asked for nothing, it draws unconditional images

    def grid_condition(self) -> Condition:
        return Condition(texts=self.sample_prompts)

    def draw(
        self,
        network: nn.Module,
        n: int,
        condition: Condition | None,
        generator: torch.Generator | None,
        progress: Progress | None,
        *,
        guidance_scale: float | None = None,
        guidance_interval: Sequence[int] | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        best_of: int | None = None,
    ) -> Samples:
        """Images for prompts: each prompt's caption segment, then image codes drawn one by one
        (no condition, or the empty prompt "", draws from the unconditional model). With
        ``best_of`` k > 1, k images are drawn for each prompt, and kept is the one for which the
        model finds the prompt the likeliest caption. For images: their captions, greedy unless
        a ``temperature`` is given."""
        if condition is None:
            condition = Condition(texts=[""] * n)
        if condition.images is not None:
            if guidance_scale is not None or guidance_interval is not None or best_of is not None:
                raise ConfigError(
                    "guidance_scale, guidance_interval and best_of are for drawing from prompts, "
                    "not for captions"
                )
            texts = self._caption(network, condition.images, generator, temperature or 0.0, top_k)
            return Samples(texts=texts)
        hp = self.hparams
        guidance_scale = hp.guidance_scale if guidance_scale is None else guidance_scale
        best_of = hp.best_of if best_of is None else best_of
        self._check_interval(guidance_interval)
        interval = hp.guidance_interval if guidance_interval is None else guidance_interval
        temperature, top_k = self._sampling(temperature, top_k)
        if not guidance_scale > 0:
            raise ConfigError(f"guidance_scale={guidance_scale}: must be greater than 0")
        if best_of < 1:
            raise ConfigError(f"best_of={best_of}: draw at least 1 image per prompt")
        texts = list(condition.texts)
        prompted = any(texts)  # else there is nothing to guide away from, nor to rank by
        guided = guidance_scale != 1.0 and prompted
        length = self.caption_length(texts)  # of the caption segments, cut to the longest
        prefixes, allowed = self.image_prefixes(texts, length), self.allowed(self.vocab.image_ids)
        unconditional = self.image_prefixes([""] * n, length) if guided else None
        positions = self.positions(torch.zeros(1, dtype=torch.bool), length)[0]  # caption first
        # (k, n, tokens_per_image): the candidates that k calls with best_of=1 would draw
        with self.attention():
            candidates = [
                network.decode(
                    prefixes,
                    self.vocab.tokens_per_image,
                    allowed,
                    temperature,
                    top_k,
                    derived_generator(generator, self.device),
                    guidance_scale,
                    unconditional,
                    None if interval is None else tuple(interval),
                    positions=positions,
                    pad_id=self.vocab.special["pad"],
                )
                - self.vocab.image_offset
                for _ in range(best_of if prompted else 1)
            ]
        candidates = torch.stack(candidates)
        best = torch.zeros(n, dtype=torch.long, device=candidates.device)
        if len(candidates) > 1:
            # The prompt's likelihood as each candidate's caption, log p(text | image): the
            # model's own reading of its drawings. Unprompted rows keep their first candidate.
            nll = torch.stack(
                [self.segment_nll(network, c, texts, image_first=True) for c in candidates]
            )
            unprompted = torch.tensor([not t for t in texts], device=nll.device)
            best = nll.argmin(0).masked_fill(unprompted, 0)  # (n,)
        codes = candidates[best, torch.arange(n, device=best.device)]  # (n, tokens_per_image)
        images = self.image_tokenizer.decode(codes)
        return Samples(images=images.float().cpu(), captions=texts if prompted else None)

    def caption(
        self,
        images: torch.Tensor,
        generator: torch.Generator | None = None,
        temperature: float = 0.0,
        top_k: int | None = None,
    ) -> list[str]:
        """The caption of each image ``(B, C, H, W)`` in [-1, 1]; greedy unless a
        ``temperature`` is given. The same as ``sample`` with the images as the condition."""
        condition = Condition(images=images)
        return self.sample(
            len(images),
            condition=condition,
            generator=generator,
            temperature=temperature,
            top_k=top_k,
        ).texts

    def _caption(
        self,
        network: nn.Module,
        images: torch.Tensor,
        generator: torch.Generator | None,
        temperature: float,
        top_k: int | None,
    ) -> list[str]:
        if tuple(images.shape[1:]) != self.image_tokenizer.image_shape:
            raise ConfigError(
                f"an image of shape {tuple(images.shape[1:])} (channels, height, width); this "
                f"model reads {self.image_tokenizer.image_shape}"
            )
        temperature, top_k = self._sampling(temperature, top_k)
        begin_text, end_text = self.vocab.special["begin_text"], self.vocab.special["end_text"]
        codes = self.image_tokenizer.encode(images.to(self.device))
        image_segments = self.vocab.image(codes)  # (B, image_length)
        prefix = torch.cat([image_segments, codes.new_full((len(codes), 1), begin_text)], 1)
        with self.attention():
            text = network.decode(
                prefix,
                self.hparams.max_text_bytes + 1,
                self.allowed([*self.vocab.text_ids, end_text]),
                temperature,
                top_k,
                derived_generator(generator, self.device),
                stop_id=end_text,
                positions=self.positions(torch.ones(1, dtype=torch.bool))[0],
            )
        return [self.vocab.read_text([begin_text, *row]) for row in text.tolist()]

    def segment_nll(
        self, network: nn.Module, codes: torch.Tensor, texts: Sequence[str], image_first: bool
    ) -> torch.Tensor:
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
        logits = self.next_token_logits(network, rows, order)  # (B, T, vocab)
        nll = F.cross_entropy(logits.transpose(1, 2).float(), targets, reduction="none")  # (B, T)
        return (nll * scored).sum(1)

    def nll_sums(self, images: torch.Tensor, texts: Sequence[str]) -> tuple[float, float, int]:
        """Negative log-likelihoods in nats, summed over a batch: of the images' codes after the
        empty caption, of the captions' bytes (and their end) after their images; and the
        captions' bytes. Divided by pixels and bytes they give bits per dimension and per byte."""
        network = self.generating_network()
        codes = self._codes(images)  # encoded once for both directions
        image_nll = self.segment_nll(network, codes, [""] * len(texts), image_first=False)
        caption_nll = self.segment_nll(network, codes, texts, image_first=True)
        num_bytes = sum(len(text.encode("utf-8")) for text in texts)
        return float(image_nll.sum()), float(caption_nll.sum()), num_bytes

    def _sampling(self, temperature: float | None, top_k: int | None) -> tuple[float, int | None]:
        hp = self.hparams
        temperature = hp.temperature if temperature is None else temperature
        top_k = hp.top_k if top_k is None else top_k
        try:
            check_sampling_args(temperature, top_k, None)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        return temperature, top_k

    def _check_interval(self, interval: Sequence[int] | None) -> None:
        last = self.vocab.tokens_per_image - 1
        if interval is not None and not (len(interval) == 2 and 0 <= interval[0] <= interval[1]):
            raise ConfigError(
                f"guidance_interval={list(interval)}: give [first, last] image tokens, "
                f"0 <= first <= last (an image's tokens are 0 to {last})"
            )

    def allowed(self, ids: Sequence[int]) -> torch.Tensor:
        """The boolean mask ``(vocab,)`` of ``ids``, for ``TextImageGPT.decode``."""
        allowed = torch.zeros(self.vocab.vocab_size, dtype=torch.bool, device=self.device)
        allowed[list(ids)] = True
        return allowed

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        optimizer = torch.optim.AdamW(
            weight_decay_groups(self.network.parameters(), hp.weight_decay),
            lr=hp.lr,
            betas=tuple(hp.betas),
        )
        return warmup_schedule(optimizer, hp.warmup_steps, hp.lr_decay_steps, hp.min_lr / hp.lr)


def _image_tokenizer(source: str | dict[str, Any]) -> VQVAE:
    """The frozen image tokenizer: from its checkpoint (a path), or built empty from its
    hyperparameters (a dict), when the weights come from this model's own checkpoint."""
    if isinstance(source, str | Path):
        tokenizer = load_model(source, expected=VQVAE)
    else:
        tokenizer = VQVAE(**{**source, "compile": False})
    return tokenizer.eval().requires_grad_(False)
