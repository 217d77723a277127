"""Sampling entry point: images or text from any checkpoint the framework wrote.

python generate.py ckpt_path=logs/.../last.ckpt                        # image grid or text
python generate.py ckpt_path=... image.output=grid.png num_samples=16
python generate.py ckpt_path=... text.prompt="ROMEO:" text.max_new_tokens=300
"""

from itertools import chain
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig
from torchvision.utils import make_grid, save_image

from aigc.errors import exit_on_user_error
from aigc.models.gan import GAN
from aigc.models.transformer import LanguageModel
from aigc.train import CONFIG_DIR
from aigc.utils.checkpoints import load_model
from aigc.utils.runtime import autocast, resolve_device


def generate_images(model: GAN, cfg: DictConfig, generator: torch.Generator) -> Path:
    """Saves ``num_samples`` images as a grid (and one PNG each when asked); returns the grid."""
    latents = torch.randn(cfg.num_samples, model.hparams.latent_dim, generator=generator)
    images = model.sample(latents).float().cpu()  # (N, C, H, W) in [-1, 1]
    output = Path(cfg.image.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    grid = make_grid(images, nrow=cfg.image.nrow, normalize=True, value_range=(-1, 1))
    save_image(grid, output)
    if cfg.image.per_sample_dir:
        folder = Path(cfg.image.per_sample_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            save_image(image, folder / f"{i:05d}.png", normalize=True, value_range=(-1, 1))
    return output


def generate_text(model: LanguageModel, cfg: DictConfig, generator: torch.Generator) -> list[str]:
    """Streams ``num_samples`` continuations of the prompt to stdout; returns them."""
    text_cfg, tokenizer = cfg.text, model.tokenizer
    prompt = model.encode_prompt(text_cfg.prompt, setting="text.prompt")
    samples = []
    for i in range(cfg.num_samples):
        if i:
            print("\n" + "-" * 40)
        ids, shown = list(prompt), ""
        tokens = model.model.stream(
            torch.tensor([prompt], device=model.device),
            text_cfg.max_new_tokens,
            temperature=text_cfg.temperature,
            top_k=text_cfg.top_k,
            top_p=text_cfg.top_p,
            generator=generator,
        )
        with model.attention():
            for token in chain([None], tokens):  # None: show the prompt before any token
                if token is not None:
                    ids.append(int(token))
                text = tokenizer.decode(ids)
                # A byte sequence may end inside a multi-byte character: hold it back until whole.
                text = text[:-1] if text.endswith("\ufffd") else text
                print(text[len(shown) :], end="", flush=True)
                shown = text
        samples.append(tokenizer.decode(ids))
    print()
    if text_cfg.output:
        Path(text_cfg.output).write_text("\n\n".join(samples) + "\n", encoding="utf-8")
    return samples


def generate(cfg: DictConfig) -> Path | list[str]:
    device = resolve_device(cfg.device)
    model = load_model(cfg.ckpt_path, device)
    generator = torch.Generator(device if model.modality == "text" else "cpu").manual_seed(cfg.seed)
    with torch.inference_mode(), autocast(device, cfg.precision):
        if model.modality == "image":
            return generate_images(model, cfg, generator)
        return generate_text(model, cfg, generator)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="generate")
def main(cfg: DictConfig) -> None:
    result = exit_on_user_error(lambda: generate(cfg))
    if isinstance(result, Path):
        print(f"wrote {result}")


if __name__ == "__main__":
    main()
