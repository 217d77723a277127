"""Export entry point: a trained model as portable weights that load without Lightning's
checkpoints or a Trainer.

python export.py ckpt_path=<.ckpt or run dir> out=<folder>   # model.safetensors + config.json
python export.py ckpt_path=... out=... ema=false             # the raw weights, not the average
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from aigc.core.checkpoints import load_model
from aigc.core.pretrained import save_pretrained
from aigc.errors import exit_on_user_error
from aigc.paths import CONFIG_DIR


def export(cfg: DictConfig) -> Path:
    """Writes the model of ``cfg.ckpt_path`` into the folder ``cfg.out``; returns the folder."""
    return save_pretrained(load_model(cfg.ckpt_path), cfg.out, ema=cfg.ema)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="export")
def main(cfg: DictConfig) -> None:
    out = exit_on_user_error(lambda: export(cfg))
    print(f"wrote {out}; load it with aigc.from_pretrained({str(out)!r})")


if __name__ == "__main__":
    main()
