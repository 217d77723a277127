"""An example model family that lives outside aigc's package: a Gaussian for every pixel.

CONTRIBUTING.md ("Adding a family") walks through its files; tests/test_example_family.py puts it
through the contract every family keeps.
"""

from example_family.module import PixelGaussian
from example_family.network import PixelAffine

__all__ = ["PixelAffine", "PixelGaussian"]
