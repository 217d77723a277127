"""Pieces shared by the benchmark scripts: build a framework run from overrides, time its steps."""

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence

import lightning as L
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from aigc.train import CONFIG_DIR, build


class StepTimer(L.Callback):
    """Wall time from the start of batch ``warmup`` to the end of the last batch."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end = warmup, 0.0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.end = time.perf_counter()


def build_run(overrides: Sequence[str], output_dir: str):
    """(datamodule, model, trainer) exactly as ``python train.py <overrides>`` would build them."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = output_dir
    return build(cfg)


def time_framework(overrides: Sequence[str], warmup: int) -> float:
    """Seconds that the steps after ``warmup`` take in a framework run (checkpoints included)."""
    with tempfile.TemporaryDirectory() as output_dir:
        datamodule, model, trainer = build_run(overrides, output_dir)
        timer = StepTimer(warmup)
        trainer.callbacks.append(timer)
        trainer.fit(model, datamodule=datamodule)
    return timer.end - timer.start


def compare(runners: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Runs each runner ``rounds`` times, alternating, and returns the median of each."""
    results: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            results[name].append(run())
    for name, values in results.items():
        rounds_text = ", ".join(f"{v:,.0f}" for v in values)
        print(f"{name:>24}: {statistics.median(values):10,.0f}  (rounds: {rounds_text})")
    return {name: statistics.median(values) for name, values in results.items()}
