"""The LightningModule that trains one GPT on captioned images in both directions: text -> image
(drawing what a prompt says) and image -> text (captioning)."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aigc.core.checkpoints import load_model
from aigc.core.conditioning import Condition
from aigc.core.module import GenerativeModule, Monitor, Progress
from aigc.core.optim import warmup_schedule, weight_decay_groups
from aigc.core.samples import Samples
from aigc.core.scoring import ImageCaptionLikelihood
from aigc.errors import ConfigError, check_positive
from aigc.models.image_tokenizer import ImageTokenizer
from aigc.models.text_image.network import TextImageGPT
from aigc.models.text_image.objective import Rows
from aigc.models.text_image.sampling import draw_images, write_captions
from aigc.nn.gpt import check_sampling_args
from aigc.nn.transformer import AttentionBackends
from aigc.tokenizers.joint import JointVocabulary

Batch = dict[str, Any]  # image (B, C, H, W) in [-1, 1], text (B strings), maybe codes (B, T)


class TextImageModel(GenerativeModule, ImageCaptionLikelihood):
    """A GPT over the joint vocabulary of UTF-8 bytes and an image tokenizer's codes.

    Every training example is a row of two segments (``objective.Rows``), a caption and an
    image. With probability ``image_to_text_prob`` the image comes first (the model learns to
    caption), else the caption does (it learns to draw); such a prompt is replaced by the empty
    one with probability ``uncond_prob``, which gives the unconditional model that
    classifier-free guidance contrasts and that draws without a prompt. With probability
    ``prompt_shift_prob`` a prompt's position ids move up its slot by a random number of places,
    in training: learned ids would otherwise tie what a word means to the places the training
    wordings put it at, and a wording that puts it elsewhere would not be read.

    The image tokenizer (an ``ImageTokenizer``, frozen) is part of the model: ``image_tokenizer``
    names its checkpoint when training starts, and its hyperparameters replace the path in this
    model's own, so that checkpoints rebuild with no other file.
    """

    produces = "image"
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
        sampling: dict[str, Any] | None = None,
        lr: float = 1e-3,
        warmup_steps: int = 100,
        lr_decay_steps: int | None = None,
        min_lr: float = 1e-4,
        weight_decay: float = 0.1,
        betas: Sequence[float] = (0.9, 0.99),
        ema_decay: float | None = None,
        attention_backends: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        sample_prompts: Sequence[str] | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__("text", None, class_names, sample_prompts, sampling)
        check_positive(
            "model",
            max_text_bytes=max_text_bytes,
            lr=lr,
            lr_decay_steps=lr_decay_steps,
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
        self.layout = Rows(self.vocab, max_text_bytes)
        self._check_drawing(**sampling)  # a bad default fails now, not at sampling
        for prompt in self.sample_prompts:  # a prompt too long fails now, not at step 200
            self.layout.text_segment(prompt)
        self.network = TextImageGPT(
            self.vocab.vocab_size,
            self.layout.block_size,  # position ids: those of whole segments
            n_layer,
            n_head,
            n_embd,
            dropout,
            bias,
        )
        self.init_network(ema_decay, compile)
        self.attention = AttentionBackends(attention_backends)

    def train(self, mode: bool = True) -> "TextImageModel":
        super().train(mode)
        self.image_tokenizer.eval()  # frozen: a learned codebook must not move in training mode
        return self

    def setup(self, stage: str) -> None:
        """Before training: the datamodule encodes its images once (cached on disk), rather than
        this model at every batch."""
        datamodule = self.trainer.datamodule
        if stage == "fit" and hasattr(datamodule, "tokenize_images"):
            self.image_tokenizer.to(self.trainer.strategy.root_device)
            datamodule.tokenize_images(self.image_tokenizer)

    def _codes(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.image_tokenizer.encode(images)  # (B, tokens_per_image)

    def loss(
        self, network: nn.Module, batch: Batch, generator: torch.Generator, training: bool
    ) -> torch.Tensor:
        """The objective's cross-entropy on ``batch``; prompts move up their slot only in
        ``training``."""
        hp = self.hparams
        # The datamodule's cached codes, where it has them (see setup).
        codes = batch["codes"].long() if "codes" in batch else self._codes(batch["image"])
        shift = hp.prompt_shift_prob if training else 0.0
        with self.attention():
            return self.layout.loss(
                network,
                batch["text"],
                codes,
                generator,
                hp.image_to_text_prob,
                hp.uncond_prob,
                shift,
            )

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        super().validation_step(batch, batch_idx)
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
        guidance_scale: float,
        guided_tokens: Sequence[int] | None,
        temperature: float,
        top_k: int | None,
        best_of: int,
    ) -> Samples:
        """Images for prompts (no condition, or the empty prompt "", draws from the
        unconditional model; see ``sampling.draw_images``). For images: their captions, greedy
        unless a ``temperature`` is given (see ``sampling_settings``)."""
        if condition is None:
            condition = Condition(texts=[""] * n)
        if condition.images is not None:
            texts = self._caption(network, condition.images, generator, temperature, top_k)
            return Samples(texts=texts)
        self._check_drawing(guidance_scale, guided_tokens, temperature, top_k, best_of)
        texts = list(condition.texts)
        with self.attention():
            images = draw_images(
                network,
                self.layout,
                self.image_tokenizer,
                texts,
                generator,
                guidance_scale,
                guided_tokens,
                temperature,
                top_k,
                best_of,
            )
        return Samples(images=images.float().cpu(), captions=texts if any(texts) else None)

    def sampling_settings(
        self, given: dict[str, Any], condition: Condition | None
    ) -> dict[str, Any]:
        """Captions are greedy unless a ``temperature`` is given, and take no drawing settings."""
        if condition is None or condition.images is None:
            return super().sampling_settings(given, condition)
        drawing = sorted(set(given) - {"temperature", "top_k"})
        if drawing:
            raise ConfigError(
                f"{', '.join(drawing)}: for drawing from prompts, not for captions (which take "
                "temperature and top_k)"
            )
        return {**super().sampling_settings(given, condition), "temperature": 0.0, **given}

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
        check_sampling_args(temperature, top_k, None)
        codes = self.image_tokenizer.encode(images.to(self.device))
        with self.attention():
            return write_captions(network, self.layout, codes, generator, temperature, top_k)

    def nll(self, images: torch.Tensor, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Negative log-likelihoods in nats ``(B,)``: of each image's codes after the empty
        caption, and of each caption's bytes (and its end) after its image."""
        network = self.generating_network()
        codes = self._codes(images)  # encoded once for both directions
        with self.attention():
            image_nll = self.layout.segment_nll(network, codes, [""] * len(texts), False)
            return image_nll, self.layout.segment_nll(network, codes, texts, True)

    def _check_drawing(
        self,
        guidance_scale: float,
        guided_tokens: Sequence[int] | None,
        temperature: float,
        top_k: int | None,
        best_of: int,
    ) -> None:
        if not guidance_scale > 0:
            raise ConfigError(f"guidance_scale={guidance_scale}: must be greater than 0")
        if guided_tokens is not None and not (
            len(guided_tokens) == 2 and 0 <= guided_tokens[0] <= guided_tokens[1]
        ):
            raise ConfigError(
                f"guided_tokens={list(guided_tokens)}: give [first, last] image tokens, "
                f"0 <= first <= last (an image's tokens are 0 to {self.vocab.tokens_per_image - 1})"
            )
        check_sampling_args(temperature, top_k, None)
        if best_of < 1:
            raise ConfigError(f"best_of={best_of}: draw at least 1 image per prompt")

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        optimizer = torch.optim.AdamW(
            weight_decay_groups(self.network.parameters(), hp.weight_decay),
            lr=hp.lr,
            betas=tuple(hp.betas),
        )
        return warmup_schedule(optimizer, self)


def _image_tokenizer(source: str | dict[str, Any]) -> ImageTokenizer:
    """The frozen image tokenizer: from its checkpoint (a path), or built empty from its
    hyperparameters (a dict), when the weights come from this model's own checkpoint."""
    if isinstance(source, str | Path):
        tokenizer = load_model(source, expected=ImageTokenizer)
    else:
        tokenizer = ImageTokenizer(**{**source, "compile": False})
    return tokenizer.eval().requires_grad_(False)
