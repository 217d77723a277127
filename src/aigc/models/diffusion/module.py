"""The LightningModule that trains a denoising diffusion model, optionally conditioned on class
labels or prompts, and samples it with any of diffusers' samplers."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from aigc.core.conditioning import Condition
from aigc.core.module import GenerativeModule, Monitor, Progress
from aigc.core.optim import warmup_schedule
from aigc.core.samples import Samples
from aigc.errors import ConfigError, check_positive
from aigc.models.diffusion.export import save_diffusers
from aigc.models.diffusion.network import Denoiser
from aigc.models.diffusion.sampling import denoise
from aigc.models.diffusion.schedule import make_sampler, noise_schedule

Batch = dict[str, Any]  # image (B, C, H, W) in [-1, 1]; label (B,) or text (B strings) if any


class DiffusionModel(GenerativeModule):
    """DDPM training (Ho et al. 2020): noise each image to a random timestep with the schedule's
    closed form, and regress the network's output on the noise (``prediction_type=epsilon``) or on
    the velocity (``v_prediction``, Salimans & Ho 2022).

    With a condition, it is replaced by the null condition with probability ``uncond_prob``, so the
    one network also learns the unconditional model that classifier-free guidance (Ho & Salimans
    2022) contrasts at sampling: ``guidance_scale`` 1 samples the conditional model as it is,
    larger values follow the condition more closely at some cost in variety.

    Sampling settings: ``sampler`` (a name of ``SAMPLERS``), ``steps``, ``guidance_scale`` and
    ``guidance_interval`` (the timesteps that are guided; None: all); ``sampling`` holds their
    defaults. Validation measures the denoising loss of the network
    that samples on held-out images, at the same timesteps and noise every time (``val/loss``).
    """

    produces = "image"
    monitor = Monitor("val/loss", "min")

    def __init__(
        self,
        image_shape: Sequence[int],
        widths: Sequence[int] = (16, 32, 64),
        attention: Sequence[bool] = (False, False, True),
        layers_per_block: int = 1,
        attention_head_dim: int = 32,
        norm_groups: int = 8,
        dropout: float = 0.0,
        num_train_timesteps: int = 1000,
        beta_schedule: str = "linear",
        prediction_type: str = "v_prediction",
        uncond_prob: float = 0.1,
        sampling: dict[str, Any] | None = None,
        lr: float = 1e-3,
        warmup_steps: int = 200,
        lr_decay_steps: int | None = None,
        min_lr: float = 1e-4,
        weight_decay: float = 0.0,
        betas: Sequence[float] = (0.9, 0.999),
        conditioning: str | None = None,
        text_encoder: dict[str, int] | None = None,
        ema_decay: float | None = None,
        num_classes: int | None = None,
        class_names: Sequence[str] | None = None,
        sample_prompts: Sequence[str] | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__(conditioning, num_classes, class_names, sample_prompts, sampling)
        check_positive("model", lr=lr, lr_decay_steps=lr_decay_steps)
        if not 0.0 <= uncond_prob < 1.0:
            raise ConfigError(f"model.uncond_prob={uncond_prob}; choose a value in [0, 1)")
        self.save_hyperparameters()
        self.image_shape = tuple(image_shape)
        self.schedule = noise_schedule(num_train_timesteps, beta_schedule, prediction_type)
        self._sampler(**sampling)  # a bad default fails now, not at sampling
        self.network = Denoiser(
            self.image_shape,
            widths,
            attention,
            layers_per_block,
            attention_head_dim,
            norm_groups,
            dropout,
            conditioning,
            num_classes,
            text_encoder,
        )
        self.init_network(ema_decay, compile)

    def loss(
        self, network: Denoiser, batch: Batch, generator: torch.Generator, training: bool
    ) -> torch.Tensor:
        """The mean squared error of ``network``'s prediction on ``batch``, noised to timesteps
        and with noise drawn from ``generator`` (on the CPU, the same on any device); the null
        condition replaces the real one only in ``training``."""
        uncond_prob = self.hparams.uncond_prob if training else 0.0
        clean = batch["image"]  # (B, C, H, W)
        n = clean.size(0)
        noise = torch.randn(clean.shape, generator=generator).to(self.device)
        t = torch.randint(self.schedule.config.num_train_timesteps, (n,), generator=generator)
        drop = torch.rand(n, generator=generator) < uncond_prob
        t, drop = t.to(self.device), drop.to(self.device)
        noisy = self.schedule.add_noise(clean, noise, t)
        if self.schedule.config.prediction_type == "epsilon":
            target = noise
        else:
            target = self.schedule.get_velocity(clean, noise, t)
        context = network.context(self.batch_condition(batch), drop)
        return F.mse_loss(network(noisy, t, context).float(), target)

    def draw(
        self,
        network: nn.Module,
        n: int,
        condition: Condition | None,
        generator: torch.Generator | None,
        progress: Progress | None,
        *,
        sampler: str,
        steps: int,
        guidance_scale: float,
        guidance_interval: Sequence[float] | None,
    ) -> Samples:
        scheduler = self._sampler(sampler, steps, guidance_scale, guidance_interval)
        context = network.context(condition)
        shape = (n, *self.image_shape)
        images = denoise(
            network,
            scheduler,
            shape,
            context,
            guidance_scale,
            generator,
            progress,
            guidance_interval,
        )
        captions = condition.captions(self.class_names) if condition is not None else None
        return Samples(images=images.clamp(-1, 1).float().cpu(), captions=captions)

    def sample_tag(self, settings: dict[str, Any]) -> str:
        """The TensorBoard tag of samples drawn with ``settings``: the sampler and its steps."""
        sampler, steps = (settings.get(k) or self.hparams.sampling[k] for k in ("sampler", "steps"))
        return f"samples/{sampler}_{steps}"

    def _sampler(
        self,
        sampler: str,
        steps: int,
        guidance_scale: float,
        guidance_interval: Sequence[float] | None,
    ) -> Any:
        """The diffusers scheduler that samples with these settings, once they are checked."""
        if guidance_scale != 1.0 and self.conditioning is None:
            raise ConfigError(
                f"guidance_scale={guidance_scale}: this model is unconditional, so there is "
                "nothing to guide towards"
            )
        if not guidance_scale > 0:
            raise ConfigError(f"guidance_scale={guidance_scale}: must be greater than 0")
        if guidance_scale != 1.0 and self.hparams.uncond_prob == 0.0:
            raise ConfigError(
                f"guidance_scale={guidance_scale}: this model never learned the unconditional "
                "case (model.uncond_prob=0); sample with guidance_scale=1"
            )
        total = self.hparams.num_train_timesteps
        if guidance_interval is not None and not (
            len(guidance_interval) == 2
            and 0 <= guidance_interval[0] <= guidance_interval[1] <= total
        ):
            raise ConfigError(
                f"guidance_interval={list(guidance_interval)}: give [low, high] timesteps, "
                f"0 <= low <= high <= {total}"
            )
        return make_sampler(sampler, steps, self.schedule)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.AdamW(
            self.network.parameters(),
            lr=self.hparams.lr,
            betas=tuple(self.hparams.betas),
            weight_decay=self.hparams.weight_decay,
        )
        return warmup_schedule(optimizer, self)

    def save_diffusers(self, out: str | Path, ema: bool | None = None) -> Path:
        return save_diffusers(self, out, ema)
