"""Sampling entry point: images or text from any checkpoint or export the framework wrote.

python generate.py ckpt_path=<.ckpt, run dir or export>         # samples.png or samples.txt
python generate.py ckpt_path=... label=7                        # a class-conditional model
python generate.py ckpt_path=... prompt="a handwritten seven"   # a text-conditional model
python generate.py ckpt_path=... prompt="ROMEO:" sampling.temperature=0.8
python generate.py ckpt_path=... image=seven.png                # a caption (text + image model)
python generate.py --help                                       # its keys
"""

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from aigc.core.checkpoints import load_model
from aigc.core.conditioning import Condition
from aigc.core.module import GenerativeModule
from aigc.core.samples import Samples, TerminalProgress
from aigc.data.image_folder import read_images
from aigc.errors import exit_on_user_error
from aigc.utils.cli import entry_point
from aigc.utils.runtime import autocast, resolve_device


def generate(cfg: DictConfig) -> tuple[Samples, Path]:
    """Samples as ``cfg.sampling`` says, for ``cfg.label``, ``cfg.prompt`` or ``cfg.image`` (the
    model's own default condition when none is given); saved to ``cfg.output``. Returns them and
    the file."""
    device = resolve_device(cfg.accelerator)
    model = load_model(cfg.ckpt_path, device, expected=GenerativeModule)
    label, prompt = (_value(cfg.label), _value(cfg.prompt))
    images = read_images(_paths(cfg.image)) if cfg.image is not None else None
    progress = TerminalProgress()
    with torch.inference_mode(), autocast(device, cfg.precision):
        condition = Condition.of(label, prompt, images)
        samples = model.sample_from_config(cfg.sampling, condition, progress)
    progress.close()
    path = samples.save(cfg.output)
    if cfg.per_sample_dir:
        samples.save_each(cfg.per_sample_dir)
    return samples, path


def _value(value: Any) -> Any:
    return OmegaConf.to_object(value) if OmegaConf.is_list(value) else value


def _paths(value: Any) -> list[str]:
    return [str(p) for p in _value(value)] if OmegaConf.is_list(value) else [str(value)]


@entry_point("generate", renamed={"device": "accelerator"})
def main(cfg: DictConfig) -> None:
    samples, path = exit_on_user_error(lambda: generate(cfg))
    if cfg.image is not None:  # captions: show each with its image's file
        paths = _paths(cfg.image)
        per_image = len(samples) // len(paths)
        for i, text in enumerate(samples.texts):
            print(f"{paths[i // per_image]}: {text}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
