"""Images/s of the DCGAN through the framework and through a plain PyTorch loop, for each speed
knob (fp32 / bf16 mixed precision, eager / torch.compile), in one run.

    python scripts/bench_gan.py --data-dir ../shared/data
    python scripts/bench_gan.py --conditioning label      # the class-conditional model
    python scripts/bench_gan.py --device cuda --batch-size 256 --steps 300

Both sides train the same networks on the same batches (the framework's datamodule, losses and
optimizers); the clock runs from the end of the warm-up steps to the last step, so start-up,
compilation and data loading are left out of both. Rounds alternate so that machine noise hits
all runs alike. Goal: framework >= 0.95x the plain loop.
"""

import argparse
import tempfile

import torch
import torch.nn.functional as F
from benchlib import (
    PlainLoopClock,
    Variant,
    add_common_arguments,
    build_run,
    compare_variants,
    trainer_overrides,
)

from aigc.models.gan.losses import get_loss
from aigc.models.gan.network import Discriminator, Generator


def overrides(args: argparse.Namespace, variant: Variant) -> list[str]:
    return [
        f"data={args.data}",
        f"data.batch_size={args.batch_size}",
        f"data.num_workers={args.workers}",
        f"data.pin_memory={args.device == 'cuda'}",
        f"model.conditioning={args.conditioning}",
        *trainer_overrides(args),
        *variant.overrides(),
    ]


def plain_loop(args: argparse.Namespace, variant: Variant) -> float:
    """The same training written out by hand: no Lightning in the loop. Returns timed seconds."""
    with tempfile.TemporaryDirectory() as output_dir:
        datamodule, model, _ = build_run(overrides(args, variant), output_dir)
    hp, device = model.hparams, torch.device(args.device)
    cond_dim = hp.num_classes if hp.conditioning == "label" else 0
    shape = tuple(hp.image_shape)
    generator = Generator(shape, hp.latent_dim, hp.generator_width, cond_dim).to(device)
    discriminator = Discriminator(shape, hp.discriminator_width, cond_dim).to(device)
    if variant.compile:
        generator.compile()
        discriminator.compile()
    loss = get_loss(hp.loss)
    opt_g = torch.optim.Adam(generator.parameters(), lr=hp.lr, betas=tuple(hp.betas))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=hp.lr, betas=tuple(hp.betas))
    # 16-mixed needs a gradient scaler, as Lightning uses one.
    scaler = torch.amp.GradScaler(args.device, enabled=variant.precision == "16-mixed")
    datamodule.prepare_data()
    datamodule.setup("fit")

    clock = PlainLoopClock(args)
    for batch in clock.batches(datamodule.train_dataloader()):
        batch = {key: t.to(device, non_blocking=True) for key, t in batch.items()}
        batch = datamodule.on_after_batch_transfer(batch, 0)
        real = batch["image"]
        cond = F.one_hot(batch["label"], hp.num_classes).float() if cond_dim else None
        with variant.autocast(args.device):
            fake = generator(torch.randn(real.size(0), hp.latent_dim, device=device), cond)
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
        with variant.autocast(args.device):
            loss_g = loss.generator(discriminator(fake, cond))
        opt_g.zero_grad(set_to_none=True)
        scaler.scale(loss_g).backward()
        scaler.step(opt_g)
        scaler.update()
        discriminator.requires_grad_(True)
    return clock.seconds()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_arguments(parser, steps=150)
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0, help="data.num_workers")
    parser.add_argument("--conditioning", default="null", choices=["null", "label"])
    args = parser.parse_args()

    images = (args.steps - args.warmup) * args.batch_size
    print(
        f"DCGAN ({args.conditioning} conditioning) on {args.data}, batch {args.batch_size}, "
        f"{args.workers} loader workers, "
        f"{args.device} ({torch.get_num_threads()} threads), {args.steps - args.warmup} timed "
        "steps. Goal: ratio >= 0.95."
    )
    compare_variants(args, overrides, plain_loop, images, unit="images/s")


if __name__ == "__main__":
    main()
