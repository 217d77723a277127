"""aigc: generative models (GANs, Transformer language models, diffusion models) on PyTorch
Lightning and Hydra."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # aigc.from_pretrained, imported on first use: every import of aigc.<module> runs this file
    # first, and most (aigc.paths, aigc.errors) need neither torch nor Lightning.
    if name == "from_pretrained":
        from aigc.core.pretrained import from_pretrained

        return from_pretrained
    raise AttributeError(f"module 'aigc' has no attribute {name!r}")
