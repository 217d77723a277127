"""Offline FID, KID and Inception Score, with a classifier trained by the framework as features.

The published FID/KID/IS use InceptionV3, whose weights are downloaded on first use. Where they
cannot be, a ``Classifier`` checkpoint (``python train.py experiment=mnist_classifier``) takes its
place: its penultimate activations are the features of FID and KID, its logits the class
probabilities of the Inception Score. The numbers rank generators evaluated with the same network
but are not comparable with published ones, so reports should name the network (``feature_name``).
"""

import warnings
from pathlib import Path

import torch
from torch import nn

# From their modules: torchmetrics.image exports them only when torch-fidelity is installed, which
# the custom feature network does not need.
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from aigc.data.image import to_signed_unit_range
from aigc.errors import CheckpointError
from aigc.models.base import MODEL_CLASS_KEY
from aigc.models.classifier import Classifier, ConvClassifier
from aigc.utils.checkpoints import load_checkpoint

TRAIN_HINT = "train one with `python train.py experiment=mnist_classifier`"


class FeatureNetwork(nn.Module):
    """A frozen ``ConvClassifier`` as torchmetrics' feature extractor.

    Images ``(B, C, H, W)``, float in [-1, 1] or uint8 in [0, 255] -> ``(B, num_features)``: the
    penultimate activations (``output="features"``, for FID and KID) or the logits
    (``output="logits"``, for the Inception Score).
    """

    def __init__(
        self, classifier: ConvClassifier, output: str = "features", name: str = "classifier"
    ) -> None:
        super().__init__()
        sizes = {"features": classifier.feature_dim, "logits": classifier.num_classes}
        if output not in sizes:
            raise ValueError(f"output must be 'features' or 'logits', got {output!r}")
        self.classifier = classifier
        self.output = output
        self.name = name
        # torchmetrics reads the feature size from here instead of running a dummy image through.
        self.num_features = sizes[output]
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "FeatureNetwork":
        # Always eval: BatchNorm batch statistics or dropout would make an image's features
        # depend on the rest of its batch and on chance.
        return super().train(False)

    def with_output(self, output: str) -> "FeatureNetwork":
        """The same network (weights shared, not copied) giving ``output`` instead."""
        return FeatureNetwork(self.classifier, output, self.name)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if tuple(images.shape[1:]) != self.classifier.image_shape:
            raise ValueError(
                f"the feature network {self.name} takes images of shape "
                f"{self.classifier.image_shape}, got {tuple(images.shape[1:])}"
            )
        if images.dtype == torch.uint8:
            images = to_signed_unit_range(images)
        if self.output == "features":
            return self.classifier.features(images)
        return self.classifier(images)


def load_feature_network(ckpt_path: str | Path) -> FeatureNetwork:
    """The feature network of a ``Classifier`` checkpoint written by ``train.py``."""
    path = Path(ckpt_path)
    try:
        checkpoint = load_checkpoint(path)
    except CheckpointError as err:
        raise CheckpointError(f"feature network: {err}; {TRAIN_HINT}") from None
    expected = f"{Classifier.__module__}.{Classifier.__qualname__}"
    found = checkpoint.get(MODEL_CLASS_KEY, "a model of unknown class")
    if found != expected:
        raise CheckpointError(
            f"feature network: {path} holds {found}, not an image classifier; {TRAIN_HINT}"
        )
    model = Classifier.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    return FeatureNetwork(model.network, name=f"classifier:{path.name}")


class ImageMetrics(nn.Module):
    """FID, KID and Inception Score of generated images against real ones.

    ``update(images, real=...)`` takes batches of either; ``compute()`` returns ``fid``,
    ``kid_mean``, ``kid_std``, ``is_mean`` and ``is_std`` (IS from the generated images only).
    ``reset()`` forgets the generated images but keeps the real ones' statistics, so several
    generators can be compared against real data seen once. KID's subsets are shrunk to the
    smaller sample count when ``kid_subset_size`` exceeds it.
    """

    def __init__(
        self,
        feature_network: FeatureNetwork,
        kid_subset_size: int = 1000,
        kid_subsets: int = 100,
        is_splits: int = 10,
    ) -> None:
        super().__init__()
        self.feature_name = feature_network.name
        self.kid_subset_size = kid_subset_size
        features = feature_network.with_output("features")
        with warnings.catch_warnings():
            # KID and IS warn that they keep every image's features: here that is a few hundred
            # floats per image.
            warnings.filterwarnings("ignore", ".*will save all extracted features.*")
            self.fid = FrechetInceptionDistance(feature=features, reset_real_features=False)
            self.kid = KernelInceptionDistance(
                feature=features,
                subsets=kid_subsets,
                subset_size=kid_subset_size,
                reset_real_features=False,
            )
            self.inception_score = InceptionScore(
                feature=feature_network.with_output("logits"), splits=is_splits
            )

    def update(self, images: torch.Tensor, real: bool) -> None:
        """Adds a batch ``(B, C, H, W)``, float in [-1, 1] or uint8, of real or generated images."""
        self.fid.update(images, real=real)
        self.kid.update(images, real=real)
        if not real:
            self.inception_score.update(images)

    def compute(self) -> dict[str, float]:
        """The scores of the images seen since the last ``reset()``; the same on every call."""
        num_real = int(self.fid.real_features_num_samples)
        num_fake = int(self.fid.fake_features_num_samples)
        if num_real < 2 or num_fake < 2:
            raise ValueError(
                f"FID needs at least 2 real and 2 generated images, got {num_real} and {num_fake}"
            )
        # KID draws subsets of this size from each side, so it can be no larger than either.
        self.kid.subset_size = min(self.kid_subset_size, num_real, num_fake)
        # KID subsets and IS splits are drawn at random: a fixed seed makes compute() repeatable,
        # and forking the RNG leaves the caller's random stream as it was.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            kid_mean, kid_std = self.kid.compute()
            is_mean, is_std = self.inception_score.compute()
        return {
            "fid": float(self.fid.compute()),
            "kid_mean": float(kid_mean),
            "kid_std": float(kid_std),
            "is_mean": float(is_mean),
            "is_std": float(is_std),
        }

    def reset(self) -> None:
        """Forgets the generated images; the real images' statistics stay."""
        self.fid.reset()
        self.kid.reset()
        self.inception_score.reset()


def inception_available() -> tuple[bool, str]:
    """Whether the standard InceptionV3 FID can be computed here, and a line saying why not.

    Needs the ``torch-fidelity`` package and its InceptionV3 weights, downloaded on first use.
    """
    try:
        FrechetInceptionDistance(feature=2048)
    except Exception as err:  # a missing package, no network, a corrupt download: all mean no
        return False, (
            f"standard FID needs InceptionV3 weights, which could not be loaded ({err}); the "
            "classifier FID is reported instead, and its numbers are not comparable with "
            "published FIDs"
        )
    return True, "standard FID with InceptionV3 (torch-fidelity)"
