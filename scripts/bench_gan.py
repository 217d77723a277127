"""Images/s of the DCGAN through the framework and through a plain PyTorch loop, in one run.

    python scripts/bench_gan.py --data-dir ../shared/data

Both train the same networks on the same batches (the framework's datamodule, losses and
optimizers); the clock runs from the end of the warm-up steps to the last step, so start-up, data
loading and checkpoint writing are left out of both. Rounds alternate so that machine noise hits
both alike. Goal: framework >= 0.95x the plain loop.
"""

import argparse
import statistics
import tempfile
import time

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from aigc.models.gan.losses import get_loss
from aigc.models.gan.networks import Discriminator, Generator
from aigc.train import CONFIG_DIR, build


class StepTimer(L.Callback):
    """Wall time from the start of batch ``warmup`` to the end of the last batch."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end = warmup, 0.0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.end = time.perf_counter()


def compose_run(args: argparse.Namespace, output_dir: str):
    overrides = [
        f"data={args.data}",
        f"paths.data_dir={args.data_dir}",
        f"data.batch_size={args.batch_size}",
        f"trainer.max_steps={args.steps}",
        f"trainer.precision={args.precision}",
        "trainer.accelerator=cpu",
        "callbacks.samples.every_n_steps=0",
        "callbacks.samples.on_epoch_end=false",
    ]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = output_dir
    return build(cfg)


def framework(args: argparse.Namespace) -> float:
    with tempfile.TemporaryDirectory() as output_dir:
        datamodule, model, trainer = compose_run(args, output_dir)
        timer = StepTimer(args.warmup)
        trainer.callbacks.append(timer)
        trainer.fit(model, datamodule=datamodule)
    return (args.steps - args.warmup) * args.batch_size / (timer.end - timer.start)


def plain_loop(args: argparse.Namespace) -> float:
    """The same training written out by hand: no Lightning in the loop."""
    with tempfile.TemporaryDirectory() as output_dir:
        datamodule, model, _ = compose_run(args, output_dir)
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
    return (args.steps - args.warmup) * args.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--precision", default="32", choices=["32", "bf16-mixed"])
    args = parser.parse_args()

    results: dict[str, list[float]] = {"framework": [], "plain loop": []}
    for _ in range(args.rounds):
        results["framework"].append(framework(args))
        results["plain loop"].append(plain_loop(args))
    print(
        f"\nDCGAN on {args.data}, batch {args.batch_size}, precision {args.precision}, "
        f"{torch.get_num_threads()} threads, {args.steps - args.warmup} timed steps x "
        f"{args.rounds} rounds"
    )
    for name, values in results.items():
        print(
            f"{name:>12}: {statistics.median(values):8.1f} images/s  (rounds: "
            + ", ".join(f"{v:.1f}" for v in values)
            + ")"
        )
    ratio = statistics.median(results["framework"]) / statistics.median(results["plain loop"])
    print(f"       ratio: {ratio:.3f} (goal >= 0.95)")


if __name__ == "__main__":
    main()
