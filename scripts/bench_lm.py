"""Tokens/s and MFU of the GPT through the framework and a plain PyTorch loop, for each speed knob
(fp32 / bf16 mixed precision, eager / torch.compile), in one run.

    python scripts/bench_lm.py --data-dir ../shared/data
    python scripts/bench_lm.py --device cuda --experiment shakespeare_char --steps 300

By default it trains the ``experiment=shakespeare_char_cpu`` model (4 layers, 4 heads, 128 wide,
block 64, batch 12) for a fixed number of steps both ways, alternating rounds so that machine
noise hits all runs alike. Achieved FLOP/s count 6 FLOPs per parameter per token plus attention,
and are set against this machine's measured matmul peak in the same precision (MFU).
"""

import argparse
import tempfile
import time

import torch
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

from aigc.core.optim import warmup_cosine, weight_decay_groups
from aigc.models.transformer import GPT


def overrides(args: argparse.Namespace, variant: Variant) -> list[str]:
    return [f"experiment={args.experiment}", *trainer_overrides(args), *variant.overrides()]


def plain_loop(args: argparse.Namespace, variant: Variant) -> float:
    """The same model, data and optimizer written out by hand. Returns timed seconds."""
    with tempfile.TemporaryDirectory() as output_dir:
        datamodule, lm, trainer = build_run(overrides(args, variant), output_dir)
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
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as output_dir:
        datamodule, lm, _ = build_run(overrides(args, variants(args)[0]), output_dir)
    hp, batch_size = lm.hparams, datamodule.hparams.batch_size
    tokens = (args.steps - args.warmup) * batch_size * hp.block_size
    print(
        f"GPT {hp.n_layer} layers x {hp.n_embd}, block {hp.block_size}, batch {batch_size}, "
        f"{args.device} ({torch.get_num_threads()} threads), {args.steps - args.warmup} timed "
        "steps. Goal: ratio >= 0.95."
    )
    medians = compare_variants(args, overrides, plain_loop, tokens, unit="tokens/s")

    per_token = flops_per_token(lm.network, hp.n_layer, hp.n_embd, hp.block_size)
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
