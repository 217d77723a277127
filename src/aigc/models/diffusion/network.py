"""The denoiser: a diffusers U-Net sized from the image, and what it reads of a condition.

Without a condition or with class labels it is a ``UNet2DModel`` (labels through its class
embedding, added to the time embedding); with prompts it is a ``UNet2DConditionModel`` whose
cross-attention reads the per-byte states of the shared ``TextEncoder``. Either way the condition
has one extra value, "no condition" (a null class, or a learned null prompt), which training
shows in place of the real one now and then, so that classifier-free guidance can contrast the
two at sampling.
"""

from collections.abc import Sequence
from typing import NamedTuple

import torch
from diffusers import UNet2DConditionModel, UNet2DModel
from torch import Tensor, nn

from aigc.core.conditioning import Condition
from aigc.errors import ConfigError
from aigc.nn.text_encoder import TextEncoder


class Context(NamedTuple):
    """What the U-Net reads of a condition: class ids ``(B,)`` (``num_classes`` meaning none), or
    prompt states ``(B, T, C)`` with their mask ``(B, T)``; all None when unconditional."""

    labels: Tensor | None = None
    states: Tensor | None = None
    mask: Tensor | None = None

    def __len__(self) -> int:
        present = self.labels if self.labels is not None else self.states
        return 0 if present is None else len(present)


def cat_contexts(a: Context, b: Context) -> Context:
    """``a``'s entries, then ``b``'s (prompt states padded to the longer of the two)."""
    if a.labels is not None:
        return Context(labels=torch.cat([a.labels, b.labels]))
    if a.states is None:
        return a
    length = max(a.states.size(1), b.states.size(1))

    def pad(c: Context) -> tuple[Tensor, Tensor]:
        extra = length - c.states.size(1)
        return nn.functional.pad(c.states, (0, 0, 0, extra)), nn.functional.pad(c.mask, (0, extra))

    (sa, ma), (sb, mb) = pad(a), pad(b)
    return Context(states=torch.cat([sa, sb]), mask=torch.cat([ma, mb]))


class Denoiser(nn.Module):
    """Noisy images ``(B, C, H, W)``, timesteps ``(B,)`` and a ``Context`` -> the U-Net's
    prediction ``(B, C, H, W)``: the noise, or the velocity, as the model was trained.

    ``widths`` are the channels of each resolution level, from the image's down; every level but
    the last halves the image, and ``attention`` says which levels self-attend (cross-attend, with
    prompts) as well. The ``TextEncoder`` is part of this network, so the average of its weights
    (EMA) covers the prompt encoder too.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        widths: Sequence[int],
        attention: Sequence[bool],
        layers_per_block: int,
        attention_head_dim: int,
        norm_groups: int,
        dropout: float,
        conditioning: str | None,
        num_classes: int | None,
        text_encoder: dict | None,
    ) -> None:
        super().__init__()
        channels, height, width_px = image_shape
        if len(widths) != len(attention):
            raise ConfigError(
                f"model.widths has {len(widths)} levels and model.attention {len(attention)}: "
                "give one attention flag per level"
            )
        halvings = len(widths) - 1
        if height % 2**halvings or width_px % 2**halvings:
            raise ConfigError(
                f"a {height}x{width_px} image cannot be halved {halvings} times "
                f"(model.widths has {len(widths)} levels): use fewer levels"
            )
        bad = [w for w in widths if w % norm_groups]
        if bad:
            raise ConfigError(f"model.widths {bad} are not multiples of model.norm_groups")
        self.conditioning = conditioning
        self.num_classes = num_classes
        common = dict(
            sample_size=(height, width_px),
            in_channels=channels,
            out_channels=channels,
            block_out_channels=tuple(widths),
            layers_per_block=layers_per_block,
            attention_head_dim=attention_head_dim,
            norm_num_groups=norm_groups,
        )
        if conditioning == "text":
            self.text_encoder = TextEncoder(**(text_encoder or {}))
            # The null prompt: one learned state, read where the prompt is dropped.
            self.null_text = nn.Parameter(torch.zeros(1, 1, self.text_encoder.n_embd))
            down = ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attention]
            self.unet = UNet2DConditionModel(
                **common,
                down_block_types=tuple(down),
                up_block_types=tuple(_up(down)),
                cross_attention_dim=self.text_encoder.n_embd,
                dropout=dropout,
            )
        else:
            self.text_encoder = None
            down = ["AttnDownBlock2D" if a else "DownBlock2D" for a in attention]
            self.unet = UNet2DModel(
                **common,
                down_block_types=tuple(down),
                up_block_types=tuple(_up(down)),
                dropout=dropout,
                # One more class than the data has: "no class", for classifier-free guidance.
                num_class_embeds=num_classes + 1 if conditioning == "label" else None,
            )

    def context(self, condition: Condition | None, drop: Tensor | None = None) -> Context:
        """What the U-Net reads of ``condition``, with the null condition wherever ``drop``
        (a ``(B,)`` bool mask) is True."""
        if condition is None:
            return Context()
        device = self.unet.device
        if condition.labels is not None:
            labels = condition.labels.to(device)
            if drop is not None:
                labels = labels.masked_fill(drop, self.num_classes)
            return Context(labels=labels)
        encoding = self.text_encoder(condition.texts)
        states, mask = encoding.states, encoding.mask  # (B, T, C), (B, T)
        if drop is not None:
            null = self.null_context(len(condition))
            states = torch.where(drop[:, None, None], _pad_to(null.states, states), states)
            mask = torch.where(drop[:, None], _pad_to(null.mask, mask), mask)
        return Context(states=states, mask=mask)

    def null_context(self, n: int) -> Context:
        """The "no condition" of ``n`` samples."""
        if self.conditioning == "label":
            return Context(labels=torch.full((n,), self.num_classes, device=self.unet.device))
        states = self.null_text.expand(n, 1, -1)
        return Context(states=states, mask=torch.ones(n, 1, dtype=torch.bool, device=states.device))

    def forward(self, x: Tensor, t: Tensor, context: Context) -> Tensor:
        if context.states is not None:
            return self.unet(
                x, t, encoder_hidden_states=context.states, encoder_attention_mask=context.mask
            ).sample
        return self.unet(x, t, class_labels=context.labels).sample


def _up(down: list[str]) -> list[str]:
    """The up blocks that mirror ``down`` blocks, from the smallest resolution up."""
    return [name.replace("Down", "Up") for name in reversed(down)]


def _pad_to(null: Tensor, like: Tensor) -> Tensor:
    """The null prompt's ``(B, 1, ...)`` states or mask, zero-padded to ``like``'s length."""
    extra = like.size(1) - null.size(1)
    pad = (0, 0, 0, extra) if null.dim() == 3 else (0, extra)
    return nn.functional.pad(null, pad).to(like.dtype)
