"""The learning-rate schedule every family with one shares (aigc.core.optim.warmup_schedule): a
linear warm-up, then a cosine decay to ``min_lr`` at ``lr_decay_steps``, or, with it null, at the
end of the run: ``trainer.max_steps``, else the steps of ``max_epochs``, else as the time budget
``trainer.max_time`` is spent. ``min_lr`` equal to ``lr`` holds the rate constant."""

import itertools
import math
from collections.abc import Callable
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from conftest import model_sampling
from lightning import LightningModule
from lightning.pytorch.callbacks import Timer

from aigc.errors import ConfigError
from aigc.models.diffusion import DiffusionModel
from aigc.models.image_tokenizer import ImageTokenizer
from aigc.models.language_model import LanguageModel
from aigc.models.text_image import TextImageModel
from aigc.tokenizers import CharTokenizer

LR, MIN_LR = 1e-3, 1e-5


def diffusion(**kwargs) -> DiffusionModel:
    tiny = dict(widths=(8, 16), attention=(False, True), norm_groups=4, attention_head_dim=8)
    return DiffusionModel((1, 8, 8), **tiny, sampling=model_sampling("diffusion"), **kwargs)


def image_tokenizer(**kwargs) -> ImageTokenizer:
    return ImageTokenizer((1, 28, 28), widths=(8, 8, 8), norm_groups=4, levels=(4, 3), **kwargs)


def text_image(**kwargs) -> TextImageModel:
    sizes = dict(n_layer=1, n_head=2, n_embd=16, max_text_bytes=8, sample_prompts=["a one"])
    sizes["sampling"] = model_sampling("text_image")
    return TextImageModel(image_tokenizer().hparams, (1, 28, 28), **sizes, **kwargs)


def language_model(**kwargs) -> LanguageModel:
    tokenizer = CharTokenizer.from_texts(["abc\n"])
    return LanguageModel(
        tokenizer.state_dict(),
        block_size=8,
        n_layer=1,
        n_head=2,
        n_embd=8,
        sampling=model_sampling("language_model"),
        **kwargs,
    )


FAMILIES = [language_model, diffusion, text_image, image_tokenizer]


def trainer(**limits) -> L.Trainer:
    return L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, **limits)


def schedule_of(model: LightningModule, run) -> tuple[torch.optim.Optimizer, object]:
    model.trainer = run
    optimizers = model.configure_optimizers()
    return optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]


def lrs_over(model: LightningModule, run, steps: int) -> list[float]:
    """The learning rate of each of ``steps`` optimizer steps after the first."""
    torch.manual_seed(0)
    optimizer, schedule = schedule_of(model, run)
    lrs = []
    for _ in range(steps):
        optimizer.step()
        schedule.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    return lrs


@pytest.mark.parametrize("build", FAMILIES)
@pytest.mark.parametrize(
    ("lr_decay_steps", "run"),
    [
        (10, lambda: trainer(max_steps=100)),  # set: it wins over the run's length
        (None, lambda: trainer(max_steps=10)),  # null: trainer.max_steps
        # null without max_steps: the steps that max_epochs give, as Lightning counts them
        (None, lambda: SimpleNamespace(estimated_stepping_batches=10, callbacks=[])),
    ],
    ids=["lr_decay_steps", "max_steps", "max_epochs"],
)
def test_the_rate_warms_up_then_decays_to_min_lr_at_the_end_of_the_decay(
    build: Callable[..., LightningModule], lr_decay_steps: int | None, run: Callable
) -> None:
    model = build(lr=LR, warmup_steps=2, lr_decay_steps=lr_decay_steps, min_lr=MIN_LR)
    lrs = lrs_over(model, run(), 12)
    assert lrs[0] == pytest.approx(LR)  # warmed up after 2 steps
    assert lrs[8] > MIN_LR  # still decaying at step 9
    assert lrs[9] == lrs[-1] == pytest.approx(MIN_LR)  # there from step 10 on
    assert all(a >= b for a, b in itertools.pairwise(lrs))


@pytest.mark.parametrize("build", FAMILIES)
def test_with_only_a_time_budget_the_decay_follows_the_share_of_it_spent(
    build: Callable[..., LightningModule],
) -> None:
    run = trainer(max_time={"seconds": 100})
    model = build(lr=LR, warmup_steps=1, lr_decay_steps=None, min_lr=MIN_LR)
    optimizer, schedule = schedule_of(model, run)
    (timer,) = [c for c in run.callbacks if isinstance(c, Timer)]
    for elapsed in (0, 25, 50, 75, 100, 120):
        # The state a checkpoint restores: the time already spent, which a resumed run goes on from.
        timer.load_state_dict({"time_elapsed": {"train": elapsed}})
        optimizer.step()
        schedule.step()
        share = min(elapsed / 100, 1.0)
        expected = MIN_LR + 0.5 * (LR - MIN_LR) * (1 + math.cos(math.pi * share))
        assert optimizer.param_groups[0]["lr"] == pytest.approx(expected), elapsed


@pytest.mark.parametrize("build", FAMILIES)
@pytest.mark.parametrize(
    "run", [lambda: trainer(max_steps=10), lambda: trainer(max_time={"seconds": 100})]
)
def test_min_lr_equal_to_lr_holds_the_rate_constant_after_the_warm_up(
    build: Callable[..., LightningModule], run: Callable
) -> None:
    model = build(lr=LR, warmup_steps=2, lr_decay_steps=None, min_lr=LR)
    assert lrs_over(model, run(), 12) == [pytest.approx(LR)] * 12


@pytest.mark.parametrize("build", FAMILIES)
def test_a_run_with_no_length_is_a_one_line_error(build: Callable[..., LightningModule]) -> None:
    model = build(lr_decay_steps=None)
    with pytest.raises(ConfigError) as err:
        schedule_of(model, trainer(max_epochs=-1))
    assert str(err.value).startswith("model.lr_decay_steps is null and the run has no length")
    assert "\n" not in str(err.value)
