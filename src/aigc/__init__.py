"""aigc: generative models (GANs, Transformer language models) on PyTorch Lightning and Hydra."""

__version__ = "0.1.0"
