"""Pieces shared by the benchmark scripts: speed-knob variants, framework runs built from
overrides, step timing, and the side-by-side table."""

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from aigc.paths import CONFIG_DIR
from aigc.train import build

PRECISIONS = {"32": torch.float32, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


@dataclass(frozen=True)
class Variant:
    """One setting of the speed knobs: ``trainer.precision`` and ``model.compile``."""

    precision: str
    compile: bool

    @property
    def name(self) -> str:
        dtype = "fp32" if self.precision == "32" else self.precision.split("-")[0]
        return f"{dtype} {'compiled' if self.compile else 'eager'}"

    @property
    def dtype(self) -> torch.dtype:
        return PRECISIONS[self.precision]

    def overrides(self) -> list[str]:
        return [f"trainer.precision={self.precision}", f"model.compile={self.compile}"]

    def autocast(self, device: str) -> AbstractContextManager:
        """The autocast a plain loop needs to match Lightning's mixed precision."""
        if self.precision == "32":
            return nullcontext()
        return torch.autocast(device, dtype=self.dtype)


def add_common_arguments(parser: argparse.ArgumentParser, steps: int) -> None:
    parser.add_argument("--data-dir", default=os.environ.get("AIGC_DATA_DIR", "./data"))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--precision", nargs="+", default=["32", "bf16-mixed"], choices=sorted(PRECISIONS)
    )
    parser.add_argument(
        "--compile", nargs="+", default=["eager", "compiled"], choices=["eager", "compiled"]
    )


def variants(args: argparse.Namespace) -> list[Variant]:
    return [Variant(p, mode == "compiled") for p in args.precision for mode in args.compile]


def trainer_overrides(args: argparse.Namespace) -> list[str]:
    """Training steps only: no validation or samples among the timed steps (logging stays)."""
    return [
        f"paths.data_dir={args.data_dir}",
        f"trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}",
        f"trainer.max_steps={args.steps}",
        "trainer.max_epochs=-1",
        "++trainer.limit_val_batches=0",
        "callbacks.samples.every_n_steps=0",
        "callbacks.samples.on_epoch_end=false",
    ]


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class PlainLoopClock:
    """Times a plain loop as ``StepTimer`` times the framework: from the start of batch
    ``args.warmup`` to the end of batch ``args.steps``, once the device has caught up."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.start = args, 0.0

    def batches(self, loader: Iterable) -> Iterator:
        """The loop's first ``args.steps`` batches; the clock starts as the warm-up ends."""
        for step, batch in enumerate(loader):
            if step == self.args.warmup:
                synchronize(self.args.device)
                self.start = time.perf_counter()
            if step == self.args.steps:
                return
            yield batch

    def seconds(self) -> float:
        synchronize(self.args.device)
        return time.perf_counter() - self.start


class StepTimer(L.Callback):
    """Wall time from the start of batch ``warmup`` to the end of the last batch."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end = warmup, 0.0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:
            synchronize(pl_module.device.type)
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= trainer.max_steps:  # the last step: wait for the GPU once
            synchronize(pl_module.device.type)
            self.end = time.perf_counter()


def build_run(overrides: Sequence[str], output_dir: str):
    """(datamodule, model, trainer) exactly as ``python train.py <overrides>`` would build them."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = output_dir
    return build(cfg)


def time_framework(overrides: Sequence[str], warmup: int) -> float:
    """Seconds that the steps after ``warmup`` take in a framework run."""
    with tempfile.TemporaryDirectory() as output_dir:
        datamodule, model, trainer = build_run(overrides, output_dir)
        timer = StepTimer(warmup)
        trainer.callbacks.append(timer)
        trainer.fit(model, datamodule=datamodule)
    return timer.end - timer.start


def compare(
    runs: dict[Variant, tuple[Callable[[], float], Callable[[], float]]], rounds: int, unit: str
) -> dict[Variant, tuple[float, float]]:
    """Times each variant's (framework, plain loop) pair ``rounds`` times, alternating between
    all runs so that machine noise hits each alike; prints and returns the medians."""
    results = {variant: ([], []) for variant in runs}
    for _ in range(rounds):
        for variant, pair in runs.items():
            for values, run in zip(results[variant], pair, strict=True):
                values.append(run())
    medians = {
        variant: (statistics.median(framework), statistics.median(plain))
        for variant, (framework, plain) in results.items()
    }
    print(f"{'variant':<15} {'framework':>12} {'plain loop':>12} {'ratio':>7}   ({unit})")
    for variant, (framework, plain) in medians.items():
        rounds_text = "; ".join(", ".join(f"{v:,.0f}" for v in side) for side in results[variant])
        print(
            f"{variant.name:<15} {framework:>12,.0f} {plain:>12,.0f} {framework / plain:>7.3f}"
            f"   rounds: {rounds_text}"
        )
    return medians


def compare_variants(
    args: argparse.Namespace,
    overrides: Callable[[argparse.Namespace, Variant], list[str]],
    plain_loop: Callable[[argparse.Namespace, Variant], float],
    items: int,
    unit: str,
) -> dict[Variant, tuple[float, float]]:
    """Throughput (``items`` per timed run, per second) of every chosen variant through the
    framework and through ``plain_loop``, side by side; see ``compare``."""
    runs = {
        variant: (
            lambda v=variant: items / time_framework(overrides(args, v), args.warmup),
            lambda v=variant: items / plain_loop(args, v),
        )
        for variant in variants(args)
    }
    return compare(runs, args.rounds, unit)
