"""Tokens/s of the character-level GPT through the framework and a plain PyTorch loop, and MFU.

    python scripts/bench_lm.py --data-dir ../shared/data                 # fp32
    python scripts/bench_lm.py --data-dir ../shared/data --precision bf16-mixed

Trains the ``experiment=shakespeare_char_cpu`` model (4 layers, 4 heads, 128 wide, block 64,
batch 12) for a fixed number of steps both ways in one run, alternating rounds so that machine
noise hits both alike. Achieved FLOP/s count 6 FLOPs per parameter per token plus attention, and
are set against this machine's measured matmul peak in the same precision (MFU).
"""

import argparse
import tempfile
import time

import torch
from benchlib import build_run, compare, time_framework

from aigc.models.transformer import GPT
from aigc.models.transformer.module import warmup_cosine


def overrides(args: argparse.Namespace) -> list[str]:
    return [
        "experiment=shakespeare_char_cpu",
        f"paths.data_dir={args.data_dir}",
        f"trainer.max_steps={args.steps}",
        f"trainer.precision={args.precision}",
        "trainer.accelerator=cpu",
        "trainer.val_check_interval=100000",  # no validation inside the timed steps
        f"model.compile={args.compile}",
        "callbacks.samples.every_n_steps=0",
        "callbacks.samples.on_epoch_end=false",
    ]


def plain_loop(args: argparse.Namespace) -> float:
    """The same model, data and optimizer written out by hand. Returns timed seconds."""
    with tempfile.TemporaryDirectory() as output_dir:
        datamodule, lm, _ = build_run(overrides(args), output_dir)
    hp = lm.hparams
    model = GPT(
        lm.tokenizer.vocab_size,
        hp.block_size,
        hp.n_layer,
        hp.n_head,
        hp.n_embd,
        hp.dropout,
        hp.bias,
    )
    if args.compile:
        model.compile()
    params = list(model.parameters())
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": hp.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=hp.lr, betas=tuple(hp.betas))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, hp.warmup_steps, hp.lr_decay_steps, hp.min_lr / hp.lr)
    )
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16-mixed")
    datamodule.setup("fit")

    start = 0.0
    for step, (x, y) in enumerate(datamodule.train_dataloader()):
        if step == args.warmup:
            start = time.perf_counter()
        if step == args.steps:
            break
        with autocast, lm.attention():  # the same attention kernels as the framework run
            _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, hp.grad_clip)
        optimizer.step()
        schedule.step()
    return time.perf_counter() - start


def matmul_peak(dtype: torch.dtype, size: int = 1024, repeats: int = 20) -> float:
    """FLOP/s of a square matmul on this machine (the best of a few timings)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2 * size**3 / best


def flops_per_token(model: GPT, n_layer: int, n_embd: int, block_size: int) -> float:
    """Forward + backward FLOPs per token: 6 per weight, plus attention scores and mixing."""
    return 6 * model.num_parameters() + 12 * n_layer * n_embd * block_size


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precision", default="32", choices=["32", "bf16-mixed"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as output_dir:
        datamodule, lm, _ = build_run(overrides(args), output_dir)
    hp = lm.hparams
    tokens = (args.steps - args.warmup) * datamodule.hparams.batch_size * hp.block_size
    print(
        f"GPT {hp.n_layer}x{hp.n_embd}, block {hp.block_size}, "
        f"batch {datamodule.hparams.batch_size}, "
        f"precision {args.precision}, compile {args.compile}, {torch.get_num_threads()} threads, "
        f"{args.steps - args.warmup} timed steps, tokens/s:"
    )
    medians = compare(
        {
            "framework": lambda: tokens / time_framework(overrides(args), args.warmup),
            "plain loop": lambda: tokens / plain_loop(args),
        },
        args.rounds,
    )
    print(f"{'ratio':>24}: {medians['framework'] / medians['plain loop']:10.3f}")

    dtype = torch.bfloat16 if args.precision == "bf16-mixed" else torch.float32
    peak = matmul_peak(dtype)
    achieved = medians["framework"] * flops_per_token(
        lm.model, hp.n_layer, hp.n_embd, hp.block_size
    )
    print(
        f"{'framework FLOP/s':>24}: {achieved / 1e9:10.1f} GFLOP/s against a {str(dtype)[6:]} "
        f"matmul peak of {peak / 1e9:.1f} GFLOP/s: MFU {achieved / peak:.1%}"
    )


if __name__ == "__main__":
    main()
