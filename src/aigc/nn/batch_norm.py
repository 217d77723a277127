"""BatchNorm as in training, without training it."""

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@contextmanager
def batch_statistics(module: nn.Module) -> Iterator[None]:
    """Every BatchNorm layer of ``module`` normalises with the statistics of the batch it is
    given, as in training, and leaves its running statistics (and their count) as they are.

    For measuring a network on held-out data the way training measures it: in eval mode the
    running statistics stand in for the batch's, and a network trained on batches of one kind at
    a time (a GAN's discriminator sees real and generated batches apart) computes another function.
    """
    layers = [m for m in module.modules() if isinstance(m, _BatchNorm)]
    saved = [(m.training, m.track_running_stats) for m in layers]
    for m in layers:
        # Training mode without tracking: batch statistics, and no update of the running ones.
        m.training, m.track_running_stats = True, False
    try:
        yield
    finally:
        for m, (training, tracking) in zip(layers, saved, strict=True):
            m.training, m.track_running_stats = training, tracking
