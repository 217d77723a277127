"""Evaluation entry point: the scorecard of a checkpoint, printed and saved as JSON.

python eval.py ckpt_path=<image generator> data=mnist image.feature_ckpt=<classifier .ckpt>
python eval.py ckpt_path=<language model> data=shakespeare   # a .ckpt file, run dir or export
python eval.py --help                                       # its groups and keys
"""

import json
from pathlib import Path

import torch
from omegaconf import DictConfig

from aigc.core.checkpoints import load_model, model_source
from aigc.errors import ConfigError, exit_on_user_error
from aigc.metrics import score
from aigc.paths import METRICS_FILE
from aigc.utils.cli import entry_point
from aigc.utils.runtime import autocast, resolve_device

Scores = dict[str, float | str]


def evaluate(cfg: DictConfig) -> Scores:
    """The scores of ``cfg.ckpt_path`` on ``cfg.data``, by what the model produces."""
    if cfg.get("data") is None:
        raise ConfigError(
            "choose the data to evaluate on: data=<config>, e.g. data=mnist or data=shakespeare"
        )
    device = resolve_device(cfg.accelerator)
    model = load_model(cfg.ckpt_path, device)
    with torch.inference_mode(), autocast(device, cfg.precision):
        return score(model, cfg, device)


def report(results: Scores, path: Path) -> None:
    """Prints the scores as a table and writes them to ``path`` as JSON."""
    width = max(map(len, results))
    for name, value in results.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{name:<{width}}  {shown}")
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def output_path(cfg: DictConfig) -> Path:
    """``cfg.output``, or metrics.json next to the checkpoint (inside an exported folder)."""
    if cfg.output:
        return Path(cfg.output)
    source = model_source(cfg.ckpt_path)
    return (source if source.is_dir() else source.parent) / METRICS_FILE


@entry_point("eval", renamed={"device": "accelerator", "data.val_samples": "data.val_images"})
def main(cfg: DictConfig) -> None:
    exit_on_user_error(lambda: report(evaluate(cfg), output_path(cfg)))


if __name__ == "__main__":
    main()
