"""Sample-quality scores of generated images, in the feature space of a classifier.

The published FID/KID/IS use InceptionV3, whose weights are downloaded on first use. Where they
cannot be, a classifier's checkpoint (``python train.py experiment=mnist_classifier``) takes its
place: its penultimate activations are the features of FID, KID and precision/recall/density/
coverage, its logits the class probabilities of the Inception Score and of conditional accuracy.
The numbers rank generators evaluated with the same network but are not comparable with published
ones, so reports name the network (``FeatureNetwork.name``).
"""

from __future__ import annotations

import hashlib
import socket
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

# From their modules: torchmetrics.image exports them only when torch-fidelity is installed, which
# the classifier's features do not need.
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from aigc.core.checkpoints import load_model, model_source
from aigc.core.scoring import ImageClassifier
from aigc.data.image import ImageDataModule
from aigc.data.pixels import to_signed_unit_range
from aigc.errors import CheckpointError, one_line

TRAIN_HINT = "train one with `python train.py experiment=mnist_classifier`"
_DOWNLOAD_TIMEOUT_S = 30


class FeatureNetwork(nn.Module):
    """A frozen ``ImageClassifier`` that turns images into features and class logits.

    Images ``(B, C, H, W)``, float in [-1, 1] or uint8 in [0, 255] -> ``(features (B, D),
    logits (B, K))``: the penultimate activations and the class scores.
    """

    def __init__(self, classifier: ImageClassifier, name: str = "classifier") -> None:
        super().__init__()
        self.classifier = classifier
        self.name = name
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FeatureNetwork:
        # Always eval: BatchNorm batch statistics or dropout would make an image's features
        # depend on the rest of its batch and on chance.
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if tuple(images.shape[1:]) != self.classifier.image_shape:
            raise ValueError(
                f"the feature network {self.name} takes images of shape "
                f"{self.classifier.image_shape}, got {tuple(images.shape[1:])}"
            )
        if images.dtype == torch.uint8:
            images = to_signed_unit_range(images)
        features = self.classifier.features(images.float())
        return features, self.classifier.logits(features)

    def digest(self) -> str:
        """A hash of the weights: reference features cached for one network fit no other."""
        return content_digest(self.classifier.state_dict().values())


def load_feature_network(ckpt_path: str | Path) -> FeatureNetwork:
    """The feature network of a classifier's checkpoint written by ``train.py``, or of its
    export."""
    try:
        path = model_source(ckpt_path)
        model = load_model(path, expected=ImageClassifier)
    except CheckpointError as err:
        raise CheckpointError(f"feature network: {err}; {TRAIN_HINT}") from None
    return FeatureNetwork(model, name=f"classifier:{path.name}")


@dataclass(frozen=True)
class FeatureSet:
    """What a feature network sees of a set of images: features ``(N, D)``, class logits
    ``(N, K)`` and, where known, each image's class ``(N,)`` (the real class, or the class a
    generated image was asked to be)."""

    features: torch.Tensor
    logits: torch.Tensor
    labels: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.features)

    def of_class(self, label: int) -> FeatureSet:
        keep = self.labels == label
        return FeatureSet(self.features[keep], self.logits[keep], self.labels[keep])

    def save(self, path: Path) -> None:
        """Writes the set, via a temporary file, so that a reader never sees half of it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        torch.save(
            {"features": self.features, "logits": self.logits, "labels": self.labels}, partial
        )
        partial.replace(path)

    @staticmethod
    def load(path: Path) -> FeatureSet:
        return FeatureSet(**torch.load(path, weights_only=True))


def extract_features(
    network: FeatureNetwork,
    batches: Iterable[torch.Tensor],
    labels: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
) -> FeatureSet:
    """The features and logits of every image in ``batches`` ``(B, C, H, W)``, on the CPU."""
    network = network.to(device)
    outputs = [network(images.to(device)) for images in batches]
    features, logits = (torch.cat([out[i].float().cpu() for out in outputs]) for i in (0, 1))
    return FeatureSet(features, logits, labels)


def image_scores(
    real: FeatureSet, fake: FeatureSet, kid_subset_size: int = 1000, nearest_k: int = 5
) -> dict[str, float]:
    """The scorecard of generated images ``fake`` against real ones.

    FID and KID between the two feature distributions; the Inception Score of the generated
    images' class probabilities; precision, recall, density and coverage (Naeem et al. 2020,
    with ``nearest_k`` neighbours); and, when ``fake`` knows the class each image was asked to be,
    conditional accuracy (the share the classifier assigns to that class) and intra-class FID (the
    mean over classes of the FID between real and generated images of that class; a class with
    fewer than two images on either side has no FID and is left out).
    """
    if len(real) < 2 or len(fake) < 2:
        raise ValueError(
            f"need at least 2 real and 2 generated images, got {len(real)}, {len(fake)}"
        )
    scores = {"fid": frechet_distance(real, fake)}
    scores.update(_kid(real, fake, kid_subset_size))
    scores.update(_inception_score(fake))
    scores.update(prdc(real.features, fake.features, nearest_k))
    if fake.labels is not None and real.labels is not None:
        scores["conditional_accuracy"] = float(
            (fake.logits.argmax(dim=1) == fake.labels).float().mean()
        )
        pairs = [(real.of_class(c), fake.of_class(c)) for c in sorted(set(fake.labels.tolist()))]
        per_class = [frechet_distance(r, f) for r, f in pairs if len(r) > 1 and len(f) > 1]
        scores["intra_fid"] = sum(per_class) / len(per_class) if per_class else float("nan")
    return scores


def frechet_distance(real: FeatureSet, fake: FeatureSet) -> float:
    """FID between the Gaussians fitted to the two feature sets (torchmetrics' computation)."""
    fid = FrechetInceptionDistance(feature=_Given(real.features.size(1)))
    fid.update(real.features, real=True)
    fid.update(fake.features, real=False)
    return float(fid.compute())


def _kid(real: FeatureSet, fake: FeatureSet, subset_size: int) -> dict[str, float]:
    with warnings.catch_warnings():
        # KID keeps every image's features: here a few hundred floats per image.
        warnings.filterwarnings("ignore", ".*will save all extracted features.*")
        # Subsets of this size are drawn from each side, so it can be no larger than either.
        size = min(subset_size, len(real), len(fake))
        kid = KernelInceptionDistance(feature=_Given(real.features.size(1)), subset_size=size)
    kid.update(real.features, real=True)
    kid.update(fake.features, real=False)
    with torch.random.fork_rng(devices=[]):  # seeded subsets: repeatable, and the caller's
        torch.manual_seed(0)  # random stream stays as it was
        mean, std = kid.compute()
    return {"kid_mean": float(mean), "kid_std": float(std)}


def _inception_score(fake: FeatureSet) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*will save all extracted features.*")
        score = InceptionScore(feature=_Given(fake.logits.size(1)))  # softmax of the logits
    score.update(fake.logits)
    with torch.random.fork_rng(devices=[]):  # the splits are a seeded shuffle
        torch.manual_seed(0)
        mean, std = score.compute()
    return {"is_mean": float(mean), "is_std": float(std)}


def prdc(real: torch.Tensor, fake: torch.Tensor, nearest_k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage of generated features ``fake (M, D)`` against
    real ones ``real (N, D)`` (Naeem et al., "Reliable Fidelity and Diversity Metrics for
    Generative Models", 2020).

    Each real sample owns a ball reaching its ``nearest_k``-th nearest real neighbour. Precision is
    the share of generated samples inside some real ball; density counts how many real balls hold
    each, divided by k; coverage is the share of real balls holding a generated sample; recall is
    precision with the roles swapped (balls around generated samples).
    """
    real_radii = _knn_radii(real, nearest_k)  # (N,)
    fake_radii = _knn_radii(fake, nearest_k)  # (M,)
    inside = torch.zeros(len(fake))  # real balls that hold each generated sample
    covered = torch.zeros(len(real), dtype=torch.bool)
    recalled = torch.zeros(len(real), dtype=torch.bool)
    for start, distances in _distance_rows(fake, real):  # (rows, N): generated to real
        within = distances <= real_radii
        inside[start : start + len(distances)] = within.sum(dim=1).float()
        covered |= within.any(dim=0)
        rows = fake_radii[start : start + len(distances), None]
        recalled |= (distances <= rows).any(dim=0)
    return {
        "precision": float((inside > 0).float().mean()),
        "recall": float(recalled.float().mean()),
        "density": float(inside.mean() / nearest_k),
        "coverage": float(covered.float().mean()),
    }


def _knn_radii(points: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each point to its k-th nearest other point."""
    radii = torch.empty(len(points))
    for start, distances in _distance_rows(points, points):
        # the k + 1 smallest include the point itself, at distance 0
        radii[start : start + len(distances)] = distances.topk(k + 1, largest=False).values[:, -1]
    return radii


def _distance_rows(
    a: torch.Tensor, b: torch.Tensor, rows: int = 1024
) -> Iterator[tuple[int, torch.Tensor]]:
    """Euclidean distances from ``a`` to ``b``, ``rows`` of ``a`` at a time: (start, distances)."""
    for start in range(0, len(a), rows):
        yield start, torch.cdist(a[start : start + rows].double(), b.double()).float()


class _Given(nn.Module):
    """The identity, as torchmetrics' feature extractor: the features are computed already."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def content_digest(tensors: Iterable[torch.Tensor]) -> str:
    """A short hash of the tensors' contents, to key caches by."""
    sha = hashlib.sha256()
    for tensor in tensors:
        sha.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return sha.hexdigest()[:16]


def reference_features(
    network: FeatureNetwork,
    datamodule: ImageDataModule,
    cache_dir: str | Path,
    batch_size: int = 500,
    device: torch.device | str = "cpu",
) -> FeatureSet:
    """The features of the real test split, cached on disk under ``cache_dir``, keyed by the
    feature network's weights and the test images' contents: a second evaluation reads them."""
    datamodule.prepare_data()
    datamodule.setup("test")
    test = datamodule.test_set
    contents = [test.images] if test.labels is None else [test.images, test.labels]
    path = (
        Path(cache_dir) / "reference_features" / f"{network.digest()}-{content_digest(contents)}.pt"
    )
    if path.is_file():
        try:
            return FeatureSet.load(path)
        except Exception as err:  # a damaged cache file is computed again
            warnings.warn(f"recomputing {path}: {one_line(err)}", stacklevel=2)
    batches = (test.images[i : i + batch_size] for i in range(0, len(test), batch_size))
    features = extract_features(network, batches, test.labels, device)
    features.save(path)
    return features


def inception_available() -> tuple[bool, str]:
    """Whether the standard InceptionV3 FID can be computed here, and a line saying why not.

    Needs the ``torch-fidelity`` package (the ``fid`` extra) and its InceptionV3 weights, which
    are downloaded into torch's hub cache on first use, where torch-fidelity then finds them.
    """
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
    except ImportError:
        return False, (
            "standard FID (InceptionV3) needs the fid extra: pip install -e '.[fid]' "
            "(torch-fidelity)"
        )
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(URL_INCEPTION_V3).path).name
    if not path.is_file():
        # A network that drops packets fails after this long, instead of hanging.
        timeout = socket.getdefaulttimeout()
        socket.setdefaulttimeout(_DOWNLOAD_TIMEOUT_S)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(URL_INCEPTION_V3, str(path), progress=False)
        except OSError as err:  # no network (URLError), a refused write
            return False, (
                f"standard FID (InceptionV3) needs weights that could not be downloaded "
                f"({one_line(err)}): put {URL_INCEPTION_V3} at {path}"
            )
        finally:
            socket.setdefaulttimeout(timeout)
    try:
        FrechetInceptionDistance(feature=2048)  # reads the weights from there
    except Exception as err:  # a damaged file: torch and zipfile raise their own kinds
        return False, (
            f"the InceptionV3 weights {path} could not be loaded ({one_line(err)}): delete the "
            "file to download it again"
        )
    return True, "standard FID with InceptionV3 (torch-fidelity)"


def inception_fid(
    real: torch.Tensor, fake: torch.Tensor, device: torch.device | str = "cpu"
) -> float:
    """The standard FID between two sets of images ``(N, C, H, W)``, float in [-1, 1] or uint8
    in [0, 255], gray or RGB: torchmetrics' InceptionV3 computation (see ``inception_available``).
    """
    fid = FrechetInceptionDistance(feature=2048, normalize=True).to(device)
    for images, is_real in ((real, True), (fake, False)):
        for batch in images.split(500):
            batch = batch.to(device)
            if batch.dtype == torch.uint8:
                batch = to_signed_unit_range(batch)
            # InceptionV3 takes RGB in [0, 1].
            fid.update(((batch.float() + 1) / 2).expand(-1, 3, -1, -1), real=is_real)
    return float(fid.compute())
