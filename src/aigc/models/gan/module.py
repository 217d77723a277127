"""The LightningModule that trains a DCGAN with two optimizers."""

from collections.abc import Sequence
from typing import Any

import torch
from lightning.pytorch.core.optimizer import LightningOptimizer

from aigc.models.base import AigcModule
from aigc.models.gan.losses import get_loss
from aigc.models.gan.networks import Discriminator, Generator
from aigc.utils.log_steps import logs_this_step


class GAN(AigcModule):
    """Alternates one discriminator and one generator update per batch (manual optimization).

    ``global_step`` counts batches (generator updates), not optimizer steps: Lightning would count
    both optimizers' steps, so ``trainer.max_steps=1000`` would stop after 500 batches. See
    ``_step_discriminator``.
    """

    modality = "image"
    # The discriminator's and the generator's backward passes each leave the other network
    # without gradients.
    ddp_find_unused_parameters = True

    def __init__(
        self,
        image_shape: Sequence[int],
        latent_dim: int = 100,
        generator_width: int = 64,
        discriminator_width: int = 64,
        loss: str = "non_saturating",
        lr: float = 2e-4,
        betas: Sequence[float] = (0.5, 0.999),
        num_samples: int = 64,
        compile: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.adversarial_loss = get_loss(loss)
        self.generator = Generator(tuple(image_shape), latent_dim, generator_width)
        self.discriminator = Discriminator(tuple(image_shape), discriminator_width)
        if compile:
            self.generator.compile()
            self.discriminator.compile()
        # The same latents every time, so sample grids show progress rather than noise.
        self.register_buffer("fixed_latents", torch.randn(num_samples, latent_dim))
        # Training latents come from their own generator, saved in checkpoints, so a resumed run
        # draws exactly the latents an uninterrupted one would.
        self.latent_rng = torch.Generator().manual_seed(torch.initial_seed())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def sample_latents(self, batch_size: int) -> torch.Tensor:
        z = torch.randn(batch_size, self.hparams.latent_dim, generator=self.latent_rng)
        return z.to(self.device, non_blocking=True)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        real, _ = batch  # (B, C, H, W) in [-1, 1]
        opt_g, opt_d = self.optimizers()
        fake = self.generator(self.sample_latents(real.size(0)))

        # Discriminator: push real logits up and fake ones down; detach keeps G out of this graph.
        real_logits = self.discriminator(real)
        fake_logits = self.discriminator(fake.detach())
        loss_d = self.adversarial_loss.discriminator(real_logits, fake_logits)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        self._step_discriminator(opt_d)

        # Generator: fool the just-updated discriminator. Toggling freezes D's parameters so the
        # backward pass computes no gradients for them.
        self.toggle_optimizer(opt_g)
        loss_g = self.adversarial_loss.generator(self.discriminator(fake))
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        if logs_this_step(self.trainer):  # before opt_g.step(), which advances global_step
            self.log_dict(
                {
                    "loss/g": loss_g,
                    "loss/d": loss_d,
                    "D(x)": torch.sigmoid(real_logits.detach()).mean(),
                    "D(G(z))": torch.sigmoid(fake_logits.detach()).mean(),
                },
                prog_bar=True,
                sync_dist=True,  # means over all ranks
            )
        opt_g.step()
        self.untoggle_optimizer(opt_g)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        # D's belief on held-out real images: it falls below D(x) on training images when the
        # discriminator starts to memorise the training set.
        real, _ = batch
        # The same latents at every validation, drawn apart from the training stream.
        z = torch.randn(
            real.size(0),
            self.hparams.latent_dim,
            generator=torch.Generator().manual_seed(batch_idx),
        )
        fake = self.generator(z.to(self.device))
        self.log_dict(
            {
                "val/D(x)": torch.sigmoid(self.discriminator(real)).mean(),
                "val/D(G(z))": torch.sigmoid(self.discriminator(fake)).mean(),
            },
            sync_dist=True,  # averaged over all ranks' validation batches
        )

    def _step_discriminator(self, optimizer: LightningOptimizer) -> None:
        # LightningOptimizer.step() advances global_step; going through the strategy directly
        # keeps precision handling (gradient scaling for 16-mixed) but leaves the count to the
        # generator's step, so global_step, max_steps and step intervals all mean batches.
        self.trainer.strategy.optimizer_step(optimizer.optimizer, closure=lambda: None)

    @torch.no_grad()
    def sample(self, latents: torch.Tensor) -> torch.Tensor:
        """Images ``(N, C, H, W)`` in [-1, 1] for latents ``(N, latent_dim)``, in eval mode."""
        was_training = self.generator.training
        self.generator.eval()  # BatchNorm running statistics, not this batch's
        images = self.generator(latents.to(self.device))
        self.generator.train(was_training)
        return images

    def sample_for_logging(self) -> torch.Tensor:
        """Images from the fixed latents, ``(num_samples, C, H, W)`` in [-1, 1]."""
        return self.sample(self.fixed_latents)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        lr, betas = self.hparams.lr, tuple(self.hparams.betas)
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas)
        return [opt_g, opt_d]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["latent_rng_state"] = self.latent_rng.get_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.latent_rng.set_state(checkpoint["latent_rng_state"])
