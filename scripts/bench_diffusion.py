"""Images/s and FLOP/s of the diffusion model through the framework and through a plain PyTorch +
diffusers loop, for each speed knob (fp32 / bf16 mixed precision, eager / torch.compile), in one
run.

    python scripts/bench_diffusion.py --data-dir ../shared/data --compile eager
    python scripts/bench_diffusion.py --conditioning null                  # unconditional
    python scripts/bench_diffusion.py --device cuda --experiment cifar10_ddpm --data image_folder \\
        --batch-size 128 --steps 200 --peak-tflops 989 -- data.path=<folder>  # prints MFU too

The plain loop has the shape of diffusers' own unconditional training example: the same U-Net
(built from the framework model's config), DDPMScheduler.add_noise, an MSE loss, AdamW with a
constant-with-warm-up schedule and diffusers' EMAModel, with class labels (and their dropping for
guidance) added when conditional. Both sides train on the framework's batches; the clock runs
from the end of the warm-up steps to the last step. Rounds alternate so that machine noise hits
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
from diffusers import DDPMScheduler, UNet2DModel
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from torch.utils.flop_counter import FlopCounterMode


def overrides(args: argparse.Namespace, variant: Variant) -> list[str]:
    return [
        f"experiment={args.experiment}",
        f"data={args.data}",
        f"data.batch_size={args.batch_size}",
        f"data.num_workers={args.workers}",
        f"data.pin_memory={args.device == 'cuda'}",
        f"model.conditioning={args.conditioning}",
        "trainer.max_time=null",
        "++trainer.check_val_every_n_epoch=null",
        *trainer_overrides(args),
        *variant.overrides(),
        *args.overrides,
    ]


def plain_loop(args: argparse.Namespace, variant: Variant) -> float:
    """The same training written out by hand: no Lightning in the loop. Returns timed seconds."""
    with tempfile.TemporaryDirectory() as output_dir:
        datamodule, model, _ = build_run(overrides(args, variant), output_dir)
    hp, device = model.hparams, torch.device(args.device)
    unet = UNet2DModel.from_config(model.denoiser.unet.config).to(device).train()
    noise_scheduler = DDPMScheduler.from_config(model.schedule.config)
    optimizer = torch.optim.AdamW(
        unet.parameters(), lr=hp.lr, betas=tuple(hp.betas), weight_decay=hp.weight_decay
    )
    lr_scheduler = get_scheduler(
        "constant_with_warmup", optimizer, num_warmup_steps=hp.warmup_steps
    )
    ema = EMAModel(unet.parameters(), decay=hp.ema_decay, use_ema_warmup=True)
    ema.to(device)
    if variant.compile:
        unet.compile()
    datamodule.prepare_data()
    datamodule.setup("fit")

    clock = PlainLoopClock(args)
    for batch in clock.batches(datamodule.train_dataloader()):
        batch = {key: t.to(device, non_blocking=True) for key, t in batch.items()}
        batch = datamodule.on_after_batch_transfer(batch, 0)
        clean = batch["image"]
        noise = torch.randn_like(clean)
        t = torch.randint(noise_scheduler.config.num_train_timesteps, (len(clean),), device=device)
        noisy = noise_scheduler.add_noise(clean, noise, t)
        labels = None
        if hp.conditioning == "label":  # the null class in place of a label, now and then
            drop = torch.rand(len(clean), device=device) < hp.uncond_prob
            labels = batch["label"].masked_fill(drop, hp.num_classes)
        with variant.autocast(args.device):
            prediction = unet(noisy, t, class_labels=labels).sample
        loss = F.mse_loss(prediction.float(), noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        lr_scheduler.step()
        ema.step(unet.parameters())
    return clock.seconds()


def flops_per_image(args: argparse.Namespace) -> float:
    """Floating-point operations of one image's training step: the U-Net's forward and backward
    passes, counted by PyTorch's FlopCounterMode on a batch of the benchmark's size."""
    with tempfile.TemporaryDirectory() as output_dir:
        _, model, _ = build_run(overrides(args, Variant("32", False)), output_dir)
    unet = model.denoiser.unet
    shape = (args.batch_size, *model.hparams.image_shape)
    labels = torch.zeros(args.batch_size, dtype=torch.long) if model.conditioning else None
    counter = FlopCounterMode(display=False)
    with counter:
        unet(
            torch.randn(shape), torch.zeros(args.batch_size), class_labels=labels
        ).sample.sum().backward()
    return counter.get_total_flops() / args.batch_size


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_arguments(parser, steps=40)
    parser.set_defaults(warmup=10)
    parser.add_argument("--experiment", default="mnist_ddpm")
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0, help="data.num_workers")
    parser.add_argument("--conditioning", default="label", choices=["null", "label"])
    parser.add_argument(
        "--peak-tflops", type=float, default=None, help="the device's peak, to print MFU"
    )
    parser.add_argument("overrides", nargs="*", help="more train.py overrides, after --")
    args = parser.parse_args()

    images = (args.steps - args.warmup) * args.batch_size
    flops = flops_per_image(args)
    print(
        f"experiment={args.experiment} ({args.conditioning} conditioning) on {args.data}, batch "
        f"{args.batch_size}, {flops / 1e9:.2f} GFLOP per image (forward + backward), "
        f"{args.workers} loader workers, {args.device} ({torch.get_num_threads()} threads), "
        f"{args.steps - args.warmup} timed steps. Goal: ratio >= 0.95."
    )
    medians = compare_variants(args, overrides, plain_loop, images, unit="images/s")
    for variant, (framework, plain) in medians.items():
        rates = [rate * flops / 1e12 for rate in (framework, plain)]
        line = f"{variant.name:<15} TFLOP/s: framework {rates[0]:.3f}, plain loop {rates[1]:.3f}"
        if args.peak_tflops:
            line += f"; MFU {rates[0] / args.peak_tflops:.1%} vs {rates[1] / args.peak_tflops:.1%}"
        print(line)


if __name__ == "__main__":
    main()
