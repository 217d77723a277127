"""The learning-rate schedule of the families whose recipes train for a time budget (diffusion,
the text + image GPT): constant after the warm-up, or with ``lr_decay_steps`` a cosine decay to
``min_lr``."""

import itertools
from collections.abc import Callable

import pytest
import torch
from conftest import model_sampling
from lightning import LightningModule

from aigc.models.diffusion import DiffusionModel
from aigc.models.image_tokenizer import ImageTokenizer
from aigc.models.text_image import TextImageModel


def diffusion(**kwargs) -> DiffusionModel:
    tiny = dict(widths=(8, 16), attention=(False, True), norm_groups=4, attention_head_dim=8)
    return DiffusionModel((1, 8, 8), **tiny, sampling=model_sampling("diffusion"), **kwargs)


def text_image(**kwargs) -> TextImageModel:
    tokenizer = ImageTokenizer((1, 28, 28), widths=(8, 8, 8), norm_groups=4, levels=(4, 3))
    sizes = dict(n_layer=1, n_head=2, n_embd=16, max_text_bytes=8, sample_prompts=["a one"])
    sizes["sampling"] = model_sampling("text_image")
    return TextImageModel(tokenizer.hparams, (1, 28, 28), **sizes, **kwargs)


@pytest.mark.parametrize("build", [diffusion, text_image])
@pytest.mark.parametrize(("lr_decay_steps", "final_lr"), [(None, 1e-3), (10, 1e-5)])
def test_the_learning_rate_decays_to_min_lr_at_lr_decay_steps_or_stays(
    build: Callable[..., LightningModule], lr_decay_steps: int | None, final_lr: float
) -> None:
    torch.manual_seed(0)
    model = build(lr=1e-3, warmup_steps=2, lr_decay_steps=lr_decay_steps, min_lr=1e-5)
    optimizers = model.configure_optimizers()
    optimizer, schedule = optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(12):
        optimizer.step()
        schedule.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(1e-3)  # warmed up after 2 steps
    assert lrs[-1] == pytest.approx(final_lr)
    assert all(a >= b for a, b in itertools.pairwise(lrs))
