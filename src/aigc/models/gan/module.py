"""The LightningModule that trains a DCGAN with two optimizers, optionally conditioned on class
labels or prompts."""

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import nn

from aigc.core.conditioning import Condition
from aigc.core.module import GenerativeModule, Monitor, Progress
from aigc.core.samples import Samples
from aigc.errors import check_positive
from aigc.models.gan.losses import get_loss
from aigc.models.gan.network import Discriminator, Generator
from aigc.nn.batch_norm import batch_statistics
from aigc.nn.random_features import RandomFeatureFID
from aigc.nn.text_encoder import TextEncoder
from aigc.utils.log_steps import logs_this_step

Batch = dict[str, Any]  # image (B, C, H, W) in [-1, 1]; label (B,) or text (B strings) if any


class GAN(GenerativeModule):
    """Alternates one discriminator and one generator update per batch (manual optimization).

    Conditioning: with ``conditioning="label"`` both networks see the one-hot class; with
    ``"text"`` they see a prompt's encoding by a byte-level ``TextEncoder``, which learns with the
    discriminator; the generator reads its output as given. The discriminator is matching-aware
    (Reed et al. 2016): a real image paired with the condition of any other image of the batch
    counts as fake.

    ``global_step`` counts batches (generator updates), not optimizer steps: Lightning would count
    both optimizers' steps, so ``trainer.max_steps=1000`` would stop after 500 batches. See
    ``_step_discriminator``.

    Validation measures the discriminator's beliefs on held-out images as training measures them
    (``val/D(x)``, ``val/D(G(z))``), and the FID between held-out images and samples drawn as
    ``sample`` draws them, in the features of a fixed random network (``val/fid_randconv``: see
    ``RandomFeatures``), which picks the best checkpoint.
    """

    produces = "image"
    monitor = Monitor("val/fid_randconv", "min")
    # The discriminator's and the generator's backward passes each leave the other network
    # without gradients.
    ddp_find_unused_parameters = True
    # Sampling needs the generator (and the text encoder), not the discriminator.
    training_only = ("discriminator",)

    def __init__(
        self,
        image_shape: Sequence[int],
        latent_dim: int = 100,
        generator_width: int = 64,
        discriminator_width: int = 64,
        loss: str = "non_saturating",
        lr: float = 2e-4,
        betas: Sequence[float] = (0.5, 0.999),
        conditioning: str | None = None,
        spectral_norm: bool = False,
        text_encoder: dict[str, int] | None = None,
        ema_decay: float | None = None,
        num_classes: int | None = None,
        class_names: Sequence[str] | None = None,
        sample_prompts: Sequence[str] | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__(conditioning, num_classes, class_names, sample_prompts)
        check_positive(
            "model",
            latent_dim=latent_dim,
            generator_width=generator_width,
            discriminator_width=discriminator_width,
            lr=lr,
        )
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.adversarial_loss = get_loss(loss)
        self.text_encoder = TextEncoder(**(text_encoder or {})) if conditioning == "text" else None
        # The size of the condition vectors the networks read (see condition_vectors).
        cond_dim = 0
        if conditioning == "label":
            cond_dim = num_classes
        elif conditioning == "text":
            cond_dim = self.text_encoder.n_embd
        shape = tuple(image_shape)
        # The generator is the network that samples.
        self.network = Generator(shape, latent_dim, generator_width, cond_dim)
        self.discriminator = Discriminator(shape, discriminator_width, cond_dim, spectral_norm)
        self.init_network(ema_decay, compile)
        if compile:
            self.discriminator.compile()
        self.val_fid = RandomFeatureFID(shape[0])

    def latents(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        """``(n, latent_dim)`` standard normal latents, drawn on the CPU: the same on any device."""
        z = torch.randn(n, self.hparams.latent_dim, generator=generator)
        return z.to(self.device, non_blocking=True)

    def condition_vectors(self, condition: Condition | None) -> torch.Tensor | None:
        """What the networks read of a condition: one-hot labels ``(B, num_classes)`` or prompt
        encodings ``(B, n_embd)`` of unit length, like the one-hot vectors; None when
        unconditional."""
        if condition is None:
            return None
        if condition.labels is not None:
            return F.one_hot(condition.labels.to(self.device), self.num_classes).float()
        # Unit length: at the encoder's own scale (about sqrt(n_embd)) the prompt outweighs the
        # latent, and the generator learns to ignore the latent (one image per prompt).
        return F.normalize(self.text_encoder(condition.texts).pooled, dim=-1)

    def draw(
        self,
        network: nn.Module,
        n: int,
        condition: Condition | None,
        generator: torch.Generator | None,
        progress: Progress | None,
    ) -> Samples:
        images = network(self.latents(n, generator), self.condition_vectors(condition))
        captions = condition.captions(self.class_names) if condition is not None else None
        return Samples(images=images.float().cpu(), captions=captions)

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        real = batch["image"]  # (B, C, H, W) in [-1, 1]
        opt_g, opt_d = self.optimizers()
        cond = self.condition_vectors(self.batch_condition(batch))  # (B, cond_dim) or None
        # The generator reads the condition as given: the text encoder learns with D.
        cond_g = None if cond is None else cond.detach()
        fake = self.network(self.latents(real.size(0), self.training_rng), cond_g)

        # Discriminator: push real logits up and fake ones down; detach keeps G out of this graph.
        fake_logits = self.discriminator(fake.detach(), cond)
        if cond is None:
            real_logits = self.discriminator(real)
            loss_d = self.adversarial_loss.discriminator(real_logits, fake_logits)
        else:
            # Matching-aware: a real image with any other image's condition counts as fake, half
            # of the fakes' weight (Reed et al. 2016, against all other conditions of the batch).
            # D learns what a label or caption says about an image from real data, long before
            # the fakes look like digits, and the text encoder learns only this way.
            pairs = self.discriminator.pair_logits(real, cond)  # (B, B): image i, condition j
            real_logits = pairs.diagonal()
            mismatched = pairs[~torch.eye(len(pairs), dtype=torch.bool, device=pairs.device)]
            loss_d = (
                self.adversarial_loss.discriminator(real_logits, fake_logits)
                + self.adversarial_loss.discriminator(real_logits, mismatched)
            ) / 2
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        self._step_discriminator(opt_d)

        # Generator: fool the just-updated discriminator. Toggling freezes D's parameters (and the
        # text encoder's) so the backward pass computes no gradients for them.
        self.toggle_optimizer(opt_g)
        loss_g = self.adversarial_loss.generator(self.discriminator(fake, cond_g))
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

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        real = batch["image"]
        cond = self.condition_vectors(self.batch_condition(batch))
        # The same latents at every validation, drawn apart from the training stream.
        z = self.latents(real.size(0), torch.Generator().manual_seed(batch_idx))
        # D's beliefs as training computes them, each batch normalised by its own statistics. In
        # eval mode BatchNorm would use running statistics gathered mostly from generated batches
        # (two of D's three passes a step), and score real images as fakes. Measured like this,
        # val/D(x) falling below D(x) says that D tells training images from held-out ones.
        with batch_statistics(self):
            fake = self.network(z, cond)
            self.log_dict(
                {
                    "val/D(x)": torch.sigmoid(self.discriminator(real, cond)).mean(),
                    "val/D(G(z))": torch.sigmoid(self.discriminator(fake, cond)).mean(),
                },
                batch_size=real.size(0),
                sync_dist=True,  # averaged over all ranks' validation batches
            )
        # Samples as generate.py draws them (eval mode, the averaged weights where kept), against
        # the held-out images; Lightning computes the FID over the epoch, then resets it.
        self.val_fid.update(real, real=True)
        self.val_fid.update(self.generating_network()(z, cond), real=False)
        self.log(self.monitor.metric, self.val_fid, prog_bar=True)

    def _step_discriminator(self, optimizer: LightningOptimizer) -> None:
        # LightningOptimizer.step() advances global_step; going through the strategy directly
        # keeps precision handling (gradient scaling for 16-mixed) but leaves the count to the
        # generator's step, so global_step, max_steps and step intervals all mean batches.
        self.trainer.strategy.optimizer_step(optimizer.optimizer, closure=lambda: None)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        lr, betas = self.hparams.lr, tuple(self.hparams.betas)
        d_params = list(self.discriminator.parameters())
        if self.text_encoder is not None:
            d_params += self.text_encoder.parameters()
        opt_g = torch.optim.Adam(self.network.parameters(), lr=lr, betas=betas)
        opt_d = torch.optim.Adam(d_params, lr=lr, betas=betas)
        return [opt_g, opt_d]
