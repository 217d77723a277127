"""Export entry point: a trained model as portable weights that load without Lightning's
checkpoints or a Trainer.

python export.py ckpt_path=<.ckpt or run dir> out=<folder>   # model.safetensors + config.json
python export.py ckpt_path=... out=... ema=false             # the raw weights, not the average
python export.py ckpt_path=... out=... format=diffusers      # diffusion models: diffusers' layout
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from aigc.core.checkpoints import load_model
from aigc.core.pretrained import save_pretrained
from aigc.errors import ConfigError, exit_on_user_error
from aigc.paths import CONFIG_DIR

FORMATS = ("aigc", "diffusers")


def export(cfg: DictConfig) -> Path:
    """Writes the model of ``cfg.ckpt_path`` into the folder ``cfg.out`` in ``cfg.format``;
    returns the folder."""
    if cfg.format not in FORMATS:
        raise ConfigError(f"format={cfg.format}; choose {' or '.join(FORMATS)}")
    model = load_model(cfg.ckpt_path)
    if cfg.format == "diffusers":
        return model.save_diffusers(cfg.out, ema=cfg.ema)
    return save_pretrained(model, cfg.out, ema=cfg.ema)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="export")
def main(cfg: DictConfig) -> None:
    out = exit_on_user_error(lambda: export(cfg))
    if cfg.format == "diffusers":
        print(f"wrote {out}, in diffusers' layout (see the README's Diffusion section)")
    else:
        print(f"wrote {out}; load it with aigc.from_pretrained({str(out)!r})")


if __name__ == "__main__":
    main()
