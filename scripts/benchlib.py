"""The harness of the benchmark scripts. Each script (``bench_<family>.py``) gives it a
``Family``: what its throughput counts and its training step written out in plain PyTorch. The
harness trains that family's model for a fixed number of steps through the framework and through
the plain loop, for every speed-knob variant (fp32 / bf16 mixed precision, eager /
torch.compile), in alternating rounds so that machine noise hits all runs alike, and prints:

- the device (the CPU's model) and the matmul peak measured on it in each precision;
- the FLOPs of one item (image or token), counted in a plain step by ``FlopCounterMode``;
- per variant: framework and plain-loop throughput (medians), their ratio in each round and its
  median, and the MFU of both against the measured peak.

Both sides train on the framework's datamodule; the clock runs from the start of step
``--warmup`` to the end of the last step, so start-up, compilation and warm-up are left out."""

import argparse
import itertools
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from lightning.fabric.utilities.apply_func import move_data_to_device
from omegaconf import open_dict
from torch.utils.flop_counter import FlopCounterMode

from aigc.paths import CONFIG_DIR
from aigc.train import build

PRECISIONS = {"32": torch.float32, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}

Batch = dict[str, Any]
Step = Callable[[Batch], None]


@dataclass(frozen=True)
class Variant:
    """One setting of the speed knobs: ``trainer.precision`` and ``model.compile``."""

    precision: str
    compile: bool

    @property
    def name(self) -> str:
        return f"{DTYPE_NAMES[self.dtype]} {'compiled' if self.compile else 'eager'}"

    @property
    def dtype(self) -> torch.dtype:
        return PRECISIONS[self.precision]

    def overrides(self) -> list[str]:
        return [f"trainer.precision={self.precision}", f"model.compile={self.compile}"]

    def autocast(self, device: torch.device) -> AbstractContextManager:
        """The autocast a plain loop needs to match Lightning's mixed precision."""
        if self.precision == "32":
            return nullcontext()
        return torch.autocast(device.type, dtype=self.dtype)

    def grad_scaler(self, device: torch.device) -> torch.amp.GradScaler:
        """A scaler that is on for 16-mixed only, as Lightning's."""
        return torch.amp.GradScaler(device.type, enabled=self.precision == "16-mixed")


@dataclass(frozen=True)
class Run:
    """A training run as ``python train.py <overrides>`` builds it, on ``device``."""

    datamodule: L.LightningDataModule
    model: L.LightningModule
    trainer: L.Trainer
    device: torch.device


@dataclass(frozen=True)
class Family:
    """What one family's benchmark script gives the harness."""

    unit: str  # what throughput counts: "images" or "tokens"
    items: Callable[[L.LightningModule, Batch], int]  # how many of them a batch trains
    # The family's training step written out in plain PyTorch: fresh networks and optimizers,
    # built from the run's hyperparameters; a step takes a batch already on the device.
    plain_step: Callable[[Run, Variant], Step]


def count_images(model: L.LightningModule, batch: Batch) -> int:
    """The items of image models: a batch's images."""
    return len(batch["image"])


def parser(
    description: str, experiment: str | None, steps: int, warmup: int
) -> argparse.ArgumentParser:
    """The command line every benchmark script takes; a script may add flags of its own."""
    cli = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = cli.add_argument
    add("--experiment", default=experiment, help="experiment= of train.py (default: %(default)s)")
    add("--data", help="data= of train.py (default: the experiment's)")
    add("--batch-size", type=int, help="data.batch_size (default: the experiment's)")
    add("--workers", type=int, help="data.num_workers (default: the experiment's)")
    add("--conditioning", choices=["null", "label"], help="model.conditioning of image models")
    add("--data-dir", default=os.environ.get("AIGC_DATA_DIR", "./data"))
    add("--device", default="cpu", choices=["cpu", "cuda"])
    add("--steps", type=int, default=steps, help="training steps a run, warm-up included")
    add("--warmup", type=int, default=warmup, help="steps left out of the timing")
    add("--rounds", type=int, default=2)
    add("--precision", nargs="+", default=["32", "bf16-mixed"], choices=sorted(PRECISIONS))
    add("--compile", nargs="+", default=["eager", "compiled"], choices=["eager", "compiled"])
    add("--peak-tflops", type=float, help="the device's peak, for MFU instead of a measured one")
    add("overrides", nargs="*", help="more train.py overrides, after --")
    return cli


def variants(args: argparse.Namespace) -> list[Variant]:
    return [Variant(p, mode == "compiled") for p in args.precision for mode in args.compile]


def model_overrides(args: argparse.Namespace) -> list[str]:
    """The overrides that pick the model and its data."""
    chosen = {
        "experiment": args.experiment,
        "data": args.data,
        "data.batch_size": args.batch_size,
        "data.num_workers": args.workers,
        "model.conditioning": args.conditioning,
    }
    return [f"{key}={value}" for key, value in chosen.items() if value is not None]


def run_overrides(args: argparse.Namespace, variant: Variant) -> list[str]:
    """Training steps only: no validation or samples among the timed steps (logging stays)."""
    return [
        *model_overrides(args),
        f"paths.data_dir={args.data_dir}",
        f"data.pin_memory={args.device == 'cuda'}",
        f"trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}",
        f"trainer.max_steps={args.steps}",
        "trainer.max_epochs=-1",
        "trainer.max_time=null",
        "++trainer.limit_val_batches=0",
        "++trainer.check_val_every_n_epoch=null",
        "callbacks.samples.every_n_steps=0",
        "callbacks.samples.on_epoch_end=false",
        *variant.overrides(),
        *args.overrides,
    ]


def build_run(args: argparse.Namespace, variant: Variant, output_dir: str) -> Run:
    """The run ``python train.py <run_overrides>`` would build."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", run_overrides(args, variant))
    with open_dict(cfg):
        cfg.paths.output_dir = output_dir
    return Run(*build(cfg), torch.device(args.device))


def plain_run(args: argparse.Namespace, variant: Variant) -> Run:
    """A run whose data is ready for a plain loop: prepared and set up, as ``fit`` would."""
    with tempfile.TemporaryDirectory() as output_dir:
        run = build_run(args, variant, output_dir)
    run.datamodule.prepare_data()
    run.datamodule.setup("fit")
    return run


def plain_batches(run: Run) -> Iterator[Batch]:
    """The training batches on the device, through the datamodule's transfer hook, epoch after
    epoch (as ``trainer.max_epochs=-1``)."""
    while True:
        for batch in run.datamodule.train_dataloader():
            yield run.datamodule.on_after_batch_transfer(move_data_to_device(batch, run.device), 0)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class StepTimer(L.Callback):
    """Wall time and items from the start of step ``warmup`` to the end of the last step."""

    def __init__(self, warmup: int, items: Callable[[L.LightningModule, Batch], int]) -> None:
        self.warmup, self.count = warmup, items
        self.start, self.end, self.items = 0.0, 0.0, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:
            synchronize(pl_module.device)
            self.start = time.perf_counter()
        if trainer.global_step >= self.warmup:
            self.items += self.count(pl_module, batch)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= trainer.max_steps:  # the last step: wait for the GPU once
            synchronize(pl_module.device)
            self.end = time.perf_counter()


def framework_rate(args: argparse.Namespace, variant: Variant, family: Family) -> float:
    """Items a second that the timed steps of a framework run train."""
    with tempfile.TemporaryDirectory() as output_dir:
        run = build_run(args, variant, output_dir)
        timer = StepTimer(args.warmup, family.items)
        run.trainer.callbacks.append(timer)
        run.trainer.fit(run.model, datamodule=run.datamodule)
    return timer.items / (timer.end - timer.start)


def plain_rate(args: argparse.Namespace, variant: Variant, family: Family) -> float:
    """Items a second that the timed steps of the family's plain loop train."""
    run = plain_run(args, variant)
    step, items, start = family.plain_step(run, variant), 0, 0.0
    for index, batch in enumerate(itertools.islice(plain_batches(run), args.steps)):
        if index == args.warmup:
            synchronize(run.device)
            start = time.perf_counter()
        step(batch)
        if index >= args.warmup:
            items += family.items(run.model, batch)
    synchronize(run.device)
    return items / (time.perf_counter() - start)


def flops_per_item(run: Run, family: Family) -> float:
    """FLOPs of training one item: one fp32 eager plain step on the first batch, counted by
    ``FlopCounterMode`` (matrix products and convolutions, forward and backward). Attention
    counts where it runs on the math kernel or a CUDA kernel, not on the CPU's fused one."""
    step = family.plain_step(run, Variant("32", compile=False))
    batch = next(plain_batches(run))
    counter = FlopCounterMode(display=False)
    with counter:
        step(batch)
    return counter.get_total_flops() / family.items(run.model, batch)


def matmul_peak(dtype: torch.dtype, device: torch.device, seconds: float = 1.0) -> float:
    """FLOP/s of a square matmul on this device in ``dtype``: the best of timings for about
    ``seconds`` (a CPU without bf16 units takes seconds a product in bf16; a GPU, microseconds)."""
    size = 4096 if device.type == "cuda" else 1024
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    a @ b  # warm-up
    repeats, best, spent = 1, float("inf"), 0.0
    while spent < seconds:
        synchronize(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        synchronize(device)
        took = time.perf_counter() - start
        best, spent = min(best, took / repeats), spent + took
        repeats = max(1, int(0.05 / best))  # timings of about 50 ms
    return 2 * size**3 / best


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model as /proc/cpuinfo (or else ``platform``) gives it."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def describe(args: argparse.Namespace, run: Run) -> str:
    parameters = sum(p.numel() for p in run.model.parameters() if p.requires_grad)
    hp = run.datamodule.hparams
    return (
        f"{type(run.model).__name__} ({parameters / 1e6:.2f} M trained parameters), "
        f"train.py {' '.join(model_overrides(args) + args.overrides) or '(defaults)'}: batch "
        f"{hp.batch_size}, {hp.num_workers} loader workers"
    )


def compare(
    args: argparse.Namespace, family: Family
) -> dict[Variant, tuple[list[float], list[float]]]:
    """Framework and plain-loop throughput of every variant, ``args.rounds`` times, alternating
    between all runs so that machine noise hits each alike."""
    rates = {variant: ([], []) for variant in variants(args)}
    for _ in range(args.rounds):
        for variant, (framework, plain) in rates.items():
            framework.append(framework_rate(args, variant, family))
            plain.append(plain_rate(args, variant, family))
    return rates


def print_table(
    rates: dict[Variant, tuple[list[float], list[float]]],
    flops: float,
    peaks: dict[torch.dtype, float],
    unit: str,
) -> None:
    print(
        f"{'variant':<15} {'framework':>10} {'plain loop':>10} {'ratio':>6} {'MFU':>6} "
        f"{'plain MFU':>9}   ({unit}/s; ratio: median of the rounds' ratios)"
    )
    for variant, (framework, plain) in rates.items():
        rounds = [(f, p, f / p) for f, p in zip(framework, plain, strict=True)]
        medians = [statistics.median(side) for side in (framework, plain)]
        mfu = [rate * flops / peaks[variant.dtype] for rate in medians]
        ratio = statistics.median(r for *_, r in rounds)
        print(
            f"{variant.name:<15} {medians[0]:>10,.0f} {medians[1]:>10,.0f} {ratio:>6.3f} "
            f"{mfu[0]:>6.1%} {mfu[1]:>9.1%}   rounds: "
            + ", ".join(f"{f:,.0f}/{p:,.0f} = {r:.3f}" for f, p, r in rounds)
        )


def peaks(args: argparse.Namespace) -> dict[torch.dtype, float]:
    """The FLOP/s that MFU is set against, in each precision of the chosen variants:
    ``--peak-tflops``, or else a matmul's measured on this device."""
    dtypes = dict.fromkeys(variant.dtype for variant in variants(args))
    if args.peak_tflops:
        return dict.fromkeys(dtypes, args.peak_tflops * 1e12)
    return {dtype: matmul_peak(dtype, torch.device(args.device)) for dtype in dtypes}


def main(args: argparse.Namespace, family: Family) -> None:
    """Benchmarks ``family`` as ``args`` say, and prints what it measured."""
    run = plain_run(args, Variant("32", compile=False))
    flops, peak = flops_per_item(run, family), peaks(args)
    peak_text = ", ".join(f"{DTYPE_NAMES[d]} {p / 1e9:,.0f} GFLOP/s" for d, p in peak.items())
    print(describe(args, run))
    print(
        f"{args.device}: {device_name(run.device)}, {torch.get_num_threads()} threads; matmul "
        f"peak ({'given' if args.peak_tflops else 'measured'}): {peak_text}"
    )
    print(
        f"{flops / 1e6:,.2f} MFLOP per {family.unit[:-1]} (forward and backward, "
        f"FlopCounterMode); {args.steps - args.warmup} timed steps after {args.warmup} warm-up, "
        f"{args.rounds} round(s)"
    )
    print_table(compare(args, family), flops, peak, family.unit)
