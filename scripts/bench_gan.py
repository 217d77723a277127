"""Images/s of the DCGAN through the framework and through a plain PyTorch loop, in one run.

    python scripts/bench_gan.py --data-dir ../shared/data

Both train the same networks on the same batches (the framework's datamodule, losses and
optimizers); the clock runs from the end of the warm-up steps to the last step, so start-up and
data loading are left out of both. Rounds alternate so that machine noise hits both alike.
Goal: framework >= 0.95x the plain loop.
"""

import argparse
import tempfile
import time

import torch
from benchlib import build_run, compare, time_framework

from aigc.models.gan.losses import get_loss
from aigc.models.gan.networks import Discriminator, Generator


def overrides(args: argparse.Namespace) -> list[str]:
    return [
        f"data={args.data}",
        f"paths.data_dir={args.data_dir}",
        f"data.batch_size={args.batch_size}",
        f"trainer.max_steps={args.steps}",
        f"trainer.precision={args.precision}",
        "trainer.accelerator=cpu",
        "callbacks.samples.every_n_steps=0",
        "callbacks.samples.on_epoch_end=false",
    ]


def plain_loop(args: argparse.Namespace) -> float:
    """The same training written out by hand: no Lightning in the loop. Returns timed seconds."""
    with tempfile.TemporaryDirectory() as output_dir:
        datamodule, model, _ = build_run(overrides(args), output_dir)
    hp = model.hparams
    generator = Generator(tuple(hp.image_shape), hp.latent_dim, hp.generator_width)
    discriminator = Discriminator(tuple(hp.image_shape), hp.discriminator_width)
    loss = get_loss(hp.loss)
    opt_g = torch.optim.Adam(generator.parameters(), lr=hp.lr, betas=tuple(hp.betas))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=hp.lr, betas=tuple(hp.betas))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16-mixed")
    datamodule.prepare_data()
    datamodule.setup("fit")

    start = 0.0
    for step, batch in enumerate(datamodule.train_dataloader()):
        if step == args.warmup:
            start = time.perf_counter()
        if step == args.steps:
            break
        real, _ = datamodule.on_after_batch_transfer(batch, 0)
        with autocast:
            fake = generator(torch.randn(real.size(0), hp.latent_dim))
            loss_d = loss.discriminator(discriminator(real), discriminator(fake.detach()))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        discriminator.requires_grad_(False)
        with autocast:
            loss_g = loss.generator(discriminator(fake))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        discriminator.requires_grad_(True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precision", default="32", choices=["32", "bf16-mixed"])
    args = parser.parse_args()

    images = (args.steps - args.warmup) * args.batch_size
    print(
        f"DCGAN on {args.data}, batch {args.batch_size}, precision {args.precision}, "
        f"{torch.get_num_threads()} threads, {args.steps - args.warmup} timed steps, images/s:"
    )
    medians = compare(
        {
            "framework": lambda: images / time_framework(overrides(args), args.warmup),
            "plain loop": lambda: images / plain_loop(args),
        },
        args.rounds,
    )
    print(f"{'ratio':>24}: {medians['framework'] / medians['plain loop']:10.3f}  (goal >= 0.95)")


if __name__ == "__main__":
    main()
