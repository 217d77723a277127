"""Sampling entry point: images or text from any checkpoint or export the framework wrote.

python generate.py ckpt_path=<.ckpt, run dir or export>         # samples.png or samples.txt
python generate.py ckpt_path=... label=7                        # a class-conditional model
python generate.py ckpt_path=... prompt="a handwritten seven"   # a text-conditional model
python generate.py ckpt_path=... prompt="ROMEO:" sampling.temperature=0.8
"""

from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from aigc.core.checkpoints import load_model
from aigc.core.conditioning import Condition
from aigc.core.module import GenerativeModule
from aigc.core.samples import Samples, TerminalProgress
from aigc.errors import exit_on_user_error
from aigc.paths import CONFIG_DIR
from aigc.utils.runtime import autocast, resolve_device


def generate(cfg: DictConfig) -> tuple[Samples, Path]:
    """Samples as ``cfg.sampling`` says, for ``cfg.label`` or ``cfg.prompt`` (the model's own
    default condition when neither is given); saved to ``cfg.output``. Returns them and the file."""
    device = resolve_device(cfg.device)
    model = load_model(cfg.ckpt_path, device, expected=GenerativeModule)
    label, prompt = (
        OmegaConf.to_object(v) if OmegaConf.is_list(v) else v for v in (cfg.label, cfg.prompt)
    )
    progress = TerminalProgress()
    with torch.inference_mode(), autocast(device, cfg.precision):
        samples = model.sample_from_config(cfg.sampling, Condition.of(label, prompt), progress)
    progress.close()
    path = samples.save(cfg.output)
    if cfg.per_sample_dir:
        samples.save_each(cfg.per_sample_dir)
    return samples, path


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="generate")
def main(cfg: DictConfig) -> None:
    _, path = exit_on_user_error(lambda: generate(cfg))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
