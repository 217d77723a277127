"""A trained diffusion model in diffusers' own folder layout, for diffusers to load and sample.

``<out>/unet`` (the U-Net's config.json and safetensors weights) and ``<out>/scheduler`` (the
training noise schedule) always; an unconditional model also gets ``model_index.json``, so
``DDPMPipeline.from_pretrained(out)`` samples it. A label model's U-Net reads
``class_labels``, with ``num_classes`` as the null class of guidance. A text model also gets
``<out>/text_encoder``: aigc's byte-level prompt encoder (and the null prompt), whose states the
U-Net's cross-attention reads, with the settings that rebuild it.
"""

import json
from pathlib import Path
from typing import TYPE_CHECKING

from diffusers import DDPMPipeline
from safetensors.torch import save_file

if TYPE_CHECKING:
    from aigc.models.diffusion.module import DiffusionModel


def save_diffusers(model: "DiffusionModel", out: str | Path, ema: bool | None = None) -> Path:
    """Writes ``model``'s network as ``sample(ema=ema)`` uses it into the folder ``out``."""
    out = Path(out)
    network = model.generating_network(ema)
    if model.conditioning is None:
        DDPMPipeline(unet=network.unet, scheduler=model.schedule).save_pretrained(out)
        return out
    network.unet.save_pretrained(out / "unet")
    model.schedule.save_pretrained(out / "scheduler")
    if network.text_encoder is not None:
        folder = out / "text_encoder"
        folder.mkdir(parents=True, exist_ok=True)
        state = {f"encoder.{k}": v for k, v in network.text_encoder.state_dict().items()}
        state["null_text"] = network.null_text.detach()
        save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))
        settings = dict(model.hparams.text_encoder or {})
        (folder / "config.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return out
