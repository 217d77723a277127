"""Tokens/s and MFU of the GPT through the framework and a plain PyTorch loop, for each speed knob
(fp32 / bf16 mixed precision, eager / torch.compile), in one run.

    python scripts/bench_lm.py --data-dir ../shared/data
    python scripts/bench_lm.py --device cuda --experiment shakespeare_char --steps 300
    python scripts/bench_lm.py --experiment mnist_multimodal --image-tokenizer <vqvae run>

By default it trains the ``experiment=shakespeare_char_cpu`` model (4 layers, 4 heads, 128 wide,
block 64, batch 12) for a fixed number of steps both ways, alternating rounds so that machine
noise hits all runs alike. With the text + image model (``--image-tokenizer``), the plain loop
trains the same GPT on the same rows (captions and the cached image codes, in a random order per
example, captions dropped as configured), with the same optimizer, schedule and EMA. Achieved
FLOP/s count 6 FLOPs per parameter per token plus attention, and are set against this machine's
measured matmul peak in the same precision (MFU).
"""

import argparse
import itertools
import tempfile
import time

import torch
import torch.nn.functional as F
from benchlib import (
    PlainLoopClock,
    Variant,
    add_common_arguments,
    build_run,
    compare_variants,
    synchronize,
    trainer_overrides,
    variants,
)
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from aigc.core.optim import warmup_cosine, weight_decay_groups
from aigc.models.multimodal import TextImageModel
from aigc.models.multimodal.network import TextImageGPT
from aigc.models.transformer import GPT


def overrides(args: argparse.Namespace, variant: Variant) -> list[str]:
    tokenizer = [f"model.image_tokenizer={args.image_tokenizer}"] if args.image_tokenizer else []
    experiment = [f"experiment={args.experiment}", *tokenizer]
    return [*experiment, *trainer_overrides(args), *variant.overrides()]


def plain_loop(args: argparse.Namespace, variant: Variant) -> float:
    """The same model, data and optimizer written out by hand. Returns timed seconds."""
    with tempfile.TemporaryDirectory() as output_dir:
        datamodule, lm, trainer = build_run(overrides(args, variant), output_dir)
    if isinstance(lm, TextImageModel):
        return plain_text_image_loop(args, variant, datamodule, lm)
    hp, device = lm.hparams, torch.device(args.device)
    decay_steps = hp.lr_decay_steps or trainer.max_steps
    model = GPT(
        lm.tokenizer.vocab_size,
        hp.block_size,
        hp.n_layer,
        hp.n_head,
        hp.n_embd,
        hp.dropout,
        hp.bias,
        hp.position_encoding,
    ).to(device)
    if variant.compile:
        model.compile()
    params = list(model.parameters())
    groups = weight_decay_groups(params, hp.weight_decay)
    optimizer = torch.optim.AdamW(groups, lr=hp.lr, betas=tuple(hp.betas))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, hp.warmup_steps, decay_steps, hp.min_lr / hp.lr)
    )
    scaler = torch.amp.GradScaler(args.device, enabled=variant.precision == "16-mixed")
    datamodule.setup("fit")

    clock = PlainLoopClock(args)
    for batch in clock.batches(datamodule.train_dataloader()):
        tokens = batch["tokens"].to(device, non_blocking=True)
        x, y = tokens[:, :-1], tokens[:, 1:]
        with variant.autocast(args.device), lm.attention():  # the framework's attention kernels
            _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        if trainer.gradient_clip_val:
            torch.nn.utils.clip_grad_norm_(params, trainer.gradient_clip_val)
        scaler.step(optimizer)
        scaler.update()
        schedule.step()
    return clock.seconds()


def plain_text_image_loop(
    args: argparse.Namespace, variant: Variant, datamodule, model: TextImageModel
) -> float:
    """The text + image model's training written out by hand. Returns timed seconds."""
    hp, device = model.hparams, torch.device(args.device)
    network = TextImageGPT(
        model.vocab.vocab_size,
        model.network.block_size,
        hp.n_layer,
        hp.n_head,
        hp.n_embd,
        hp.dropout,
        hp.bias,
    ).to(device)
    if variant.compile:
        network.compile()
    ema = None
    if hp.ema_decay:
        ema = AveragedModel(network, multi_avg_fn=get_ema_multi_avg_fn(hp.ema_decay))
    groups = weight_decay_groups(network.parameters(), hp.weight_decay)
    optimizer = torch.optim.AdamW(groups, lr=hp.lr, betas=tuple(hp.betas))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(1, hp.warmup_steps))
    )
    model.to(device)  # its rows and position ids, which the loop shares
    datamodule.setup("fit")
    datamodule.tokenize_images(model.image_tokenizer)
    generator = torch.Generator().manual_seed(0)
    pad = model.vocab.special["pad"]

    clock = PlainLoopClock(args)
    for batch in clock.batches(datamodule.train_dataloader()):
        n = len(batch["text"])
        image_first = torch.rand(n, generator=generator) < hp.image_to_text_prob
        dropped = torch.rand(n, generator=generator) < hp.uncond_prob
        texts = ["" if drop else text for text, drop in zip(batch["text"], dropped, strict=True)]
        rows = model.layout.rows(texts, batch["codes"].to(device).long(), image_first)
        targets = rows[:, 1:].masked_fill(rows[:, 1:] == pad, -100)
        with variant.autocast(args.device), model.attention():  # its position ids and mask
            logits = model.layout.logits(network, rows, image_first)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if ema is not None:
            ema.update_parameters(network)
    return clock.seconds()


def text_image_row(datamodule, model: TextImageModel, args: argparse.Namespace) -> float:
    """The tokens a text + image row feeds in the timed steps, on average: all but its last, its
    caption segment cut to its batch's longest caption (one that guidance drops cuts a few more,
    which this leaves out)."""
    datamodule.setup("fit")
    batches = itertools.islice(datamodule.train_dataloader(), args.warmup, args.steps)
    lengths = [model.layout.caption_length(batch["text"]) for batch in batches]
    return sum(lengths) / len(lengths) + model.layout.image_length - 1


def matmul_peak(dtype: torch.dtype, device: str, size: int = 4096, repeats: int = 20) -> float:
    """FLOP/s of a square matmul on this device (the best of a few timings)."""
    size = size if device == "cuda" else 1024
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(5):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        synchronize(device)
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2 * size**3 / best


def flops_per_token(model: GPT, n_layer: int, n_embd: int, block_size: int) -> float:
    """Forward + backward FLOPs per token: 6 per weight, plus attention scores and mixing."""
    return 6 * model.num_parameters() + 12 * n_layer * n_embd * block_size


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_arguments(parser, steps=250)
    parser.add_argument("--experiment", default="shakespeare_char_cpu")
    parser.add_argument(
        "--image-tokenizer", help="the image tokenizer of the text + image model (a vqvae run)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as output_dir:
        datamodule, lm, _ = build_run(overrides(args, variants(args)[0]), output_dir)
    gpt = lm.network
    hp, block_size, batch_size = lm.hparams, gpt.block_size, datamodule.hparams.batch_size
    row = text_image_row(datamodule, lm, args) if isinstance(lm, TextImageModel) else block_size
    tokens = (args.steps - args.warmup) * batch_size * row
    print(
        f"GPT {hp.n_layer} layers x {hp.n_embd}, block {block_size}, batch {batch_size}, "
        f"{args.device} ({torch.get_num_threads()} threads), {args.steps - args.warmup} timed "
        "steps. Goal: ratio >= 0.95."
    )
    medians = compare_variants(args, overrides, plain_loop, tokens, unit="tokens/s")

    per_token = flops_per_token(gpt, hp.n_layer, hp.n_embd, block_size)
    peaks = {dtype: matmul_peak(dtype, args.device) for dtype in {v.dtype for v in medians}}
    for variant, (framework, _) in medians.items():
        achieved, peak = framework * per_token, peaks[variant.dtype]
        print(
            f"{variant.name:<15} {achieved / 1e9:10.1f} GFLOP/s of a measured "
            f"{str(variant.dtype)[6:]} matmul peak of {peak / 1e9:,.0f} GFLOP/s: "
            f"MFU {achieved / peak:.1%}"
        )


if __name__ == "__main__":
    main()
