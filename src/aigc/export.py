"""Export entry point: a trained model as portable weights that load without Lightning's
checkpoints or a Trainer.

python export.py ckpt_path=<.ckpt or run dir> output=<folder>   # model.safetensors + config.json
python export.py ckpt_path=... output=... sampling.ema=false    # the raw weights, not the average
python export.py ckpt_path=... output=... format=diffusers      # diffusion models: diffusers' files
python export.py --help                                         # its keys
"""

from pathlib import Path

from omegaconf import DictConfig

from aigc.core.checkpoints import load_model
from aigc.core.pretrained import save_pretrained
from aigc.errors import ConfigError, exit_on_user_error
from aigc.utils.cli import entry_point

FORMATS = ("aigc", "diffusers")


def export(cfg: DictConfig) -> Path:
    """Writes the model of ``cfg.ckpt_path`` into the folder ``cfg.output`` in ``cfg.format``;
    returns the folder."""
    if cfg.format not in FORMATS:
        raise ConfigError(f"format={cfg.format}; choose {' or '.join(FORMATS)}")
    model = load_model(cfg.ckpt_path)
    if cfg.format == "diffusers":
        return model.save_diffusers(cfg.output, ema=cfg.sampling.ema)
    return save_pretrained(model, cfg.output, ema=cfg.sampling.ema)


@entry_point("export", renamed={"out": "output", "ema": "sampling.ema"})
def main(cfg: DictConfig) -> None:
    out = exit_on_user_error(lambda: export(cfg))
    if cfg.format == "diffusers":
        print(f"wrote {out}, in diffusers' layout (see the README's Diffusion section)")
    else:
        print(f"wrote {out}; load it with aigc.from_pretrained({str(out)!r})")


if __name__ == "__main__":
    main()
