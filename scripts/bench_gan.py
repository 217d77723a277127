"""Images/s and MFU of the DCGAN through the framework and through a plain PyTorch loop, for each
speed knob (fp32 / bf16 mixed precision, eager / torch.compile), in one run.

    python scripts/bench_gan.py --data-dir ../shared/data
    python scripts/bench_gan.py --conditioning label      # the class-conditional model
    python scripts/bench_gan.py --device cuda --batch-size 256 --steps 300

The plain loop trains the same networks on the same batches with the framework's losses and
optimizers: the discriminator's step, then the generator's, as the framework's GAN takes them
(with labels, the matching-aware loss). The harness (benchlib.py) times both and prints what it
measured. Goal: framework >= 0.95x the plain loop.
"""

import torch
import torch.nn.functional as F
from benchlib import Batch, Family, Run, Step, Variant, count_images, main, parser

from aigc.models.gan.losses import get_loss
from aigc.models.gan.network import Discriminator, Generator


def plain_step(run: Run, variant: Variant) -> Step:
    hp, device = run.model.hparams, run.device
    cond_dim = hp.num_classes if hp.conditioning == "label" else 0
    shape = tuple(hp.image_shape)
    network = Generator(shape, hp.latent_dim, hp.generator_width, cond_dim).to(device)
    discriminator = Discriminator(shape, hp.discriminator_width, cond_dim).to(device)
    if variant.compile:
        network.compile()
        discriminator.compile()
    loss = get_loss(hp.loss)
    opt_g = torch.optim.Adam(network.parameters(), lr=hp.lr, betas=tuple(hp.betas))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=hp.lr, betas=tuple(hp.betas))
    scaler = variant.grad_scaler(device)

    def step(batch: Batch) -> None:
        real = batch["image"]
        cond = F.one_hot(batch["label"], hp.num_classes).float() if cond_dim else None
        with variant.autocast(device):
            fake = network(torch.randn(real.size(0), hp.latent_dim, device=device), cond)
            fake_logits = discriminator(fake.detach(), cond)
            if cond is None:
                loss_d = loss.discriminator(discriminator(real), fake_logits)
            else:  # matching-aware: real images with the other images' labels count as fake
                pairs = discriminator.pair_logits(real, cond)  # (B, B)
                off_diagonal = ~torch.eye(len(pairs), dtype=torch.bool, device=device)
                loss_d = (
                    loss.discriminator(pairs.diagonal(), fake_logits)
                    + loss.discriminator(pairs.diagonal(), pairs[off_diagonal])
                ) / 2
        opt_d.zero_grad(set_to_none=True)
        scaler.scale(loss_d).backward()
        scaler.step(opt_d)
        discriminator.requires_grad_(False)
        with variant.autocast(device):
            loss_g = loss.generator(discriminator(fake, cond))
        opt_g.zero_grad(set_to_none=True)
        scaler.scale(loss_g).backward()
        scaler.step(opt_g)
        scaler.update()
        discriminator.requires_grad_(True)

    return step


if __name__ == "__main__":
    args = parser(__doc__, experiment=None, steps=150, warmup=30).parse_args()
    main(args, Family("images", count_images, plain_step))
