"""Images/s and MFU of the diffusion model through the framework and through a plain PyTorch +
diffusers loop, for each speed knob (fp32 / bf16 mixed precision, eager / torch.compile), in one
run.

    python scripts/bench_diffusion.py --data-dir ../shared/data --compile eager
    python scripts/bench_diffusion.py --conditioning null                  # unconditional
    python scripts/bench_diffusion.py --device cuda --experiment cifar10_ddpm --data image_folder \\
        --batch-size 128 --steps 200 --peak-tflops 989 -- data.path=<folder>

The plain loop has the shape of diffusers' own unconditional training example: the same U-Net
(built from the framework model's config), DDPMScheduler.add_noise, an MSE loss, AdamW with a
constant-with-warm-up schedule and diffusers' EMAModel, with class labels (and their dropping for
guidance) added when conditional. The harness (benchlib.py) times both and prints what it
measured. Goal: framework >= 0.95x the plain loop.
"""

import torch
import torch.nn.functional as F
from benchlib import Batch, Family, Run, Step, Variant, count_images, main, parser
from diffusers import DDPMScheduler, UNet2DModel
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel


def plain_step(run: Run, variant: Variant) -> Step:
    hp, device = run.model.hparams, run.device
    unet = UNet2DModel.from_config(run.model.network.unet.config).to(device).train()
    noise_scheduler = DDPMScheduler.from_config(run.model.schedule.config)
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

    def step(batch: Batch) -> None:
        clean = batch["image"]
        noise = torch.randn_like(clean)
        t = torch.randint(noise_scheduler.config.num_train_timesteps, (len(clean),), device=device)
        noisy = noise_scheduler.add_noise(clean, noise, t)
        labels = None
        if hp.conditioning == "label":  # the null class in place of a label, now and then
            drop = torch.rand(len(clean), device=device) < hp.uncond_prob
            labels = batch["label"].masked_fill(drop, hp.num_classes)
        with variant.autocast(device):
            prediction = unet(noisy, t, class_labels=labels).sample
        loss = F.mse_loss(prediction.float(), noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        lr_scheduler.step()
        ema.step(unet.parameters())

    return step


if __name__ == "__main__":
    args = parser(__doc__, experiment="mnist_ddpm", steps=40, warmup=10).parse_args()
    main(args, Family("images", count_images, plain_step))
