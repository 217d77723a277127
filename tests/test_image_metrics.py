from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchmetrics.image.fid
from torch import nn

from aigc.errors import CheckpointError
from aigc.metrics import FeatureNetwork, ImageMetrics, inception_available, load_feature_network
from aigc.models.base import MODEL_CLASS_KEY
from aigc.models.classifier import ConvClassifier
from aigc.train import train

NUM_IMAGES = 100  # KID's subsets are clamped to this


@pytest.fixture
def feature_network() -> FeatureNetwork:
    """An untrained network: its random features still tell image distributions apart."""
    torch.manual_seed(0)
    classifier = ConvClassifier((1, 28, 28), num_classes=10, width=4, feature_dim=16)
    # Variance-preserving weights: with PyTorch's default ones (and BatchNorm's running statistics
    # untouched by training) activations shrink layer by layer, and every distance is near zero.
    for module in classifier.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return FeatureNetwork(classifier)


def blobs(n: int = NUM_IMAGES) -> torch.Tensor:
    """Smooth images in [-1, 1], ``(n, 1, 28, 28)``: a stand-in for a real data set."""
    coarse = torch.rand(n, 1, 7, 7, generator=torch.Generator().manual_seed(1))
    return F.interpolate(coarse, size=28, mode="bilinear") * 2 - 1


def noise(n: int = NUM_IMAGES) -> torch.Tensor:
    return torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(2)).clamp(-1, 1)


def test_same_set_scores_near_zero_and_noise_far(feature_network: FeatureNetwork) -> None:
    metrics = ImageMetrics(feature_network, kid_subset_size=50)
    metrics.update(blobs(), real=True)
    metrics.update(blobs(), real=False)
    same = metrics.compute()
    metrics.reset()  # keeps the real images
    metrics.update(noise(), real=False)
    far = metrics.compute()
    assert far["fid"] > 0 and abs(same["fid"]) < 1e-2 * far["fid"]
    assert far["kid_mean"] > 0 and abs(same["kid_mean"]) < 1e-2 * far["kid_mean"]
    assert far["kid_std"] >= 0


def test_compute_is_repeatable_and_clamps_kid_subsets(feature_network: FeatureNetwork) -> None:
    metrics = ImageMetrics(feature_network)  # kid_subset_size 1000 > NUM_IMAGES
    metrics.update(blobs(), real=True)
    metrics.update(noise(), real=False)
    assert metrics.compute() == metrics.compute()


def test_inception_score_of_one_image_repeated_is_one(feature_network: FeatureNetwork) -> None:
    metrics = ImageMetrics(feature_network)
    metrics.update(blobs(), real=True)
    metrics.update(blobs(1).expand(64, -1, -1, -1), real=False)
    scores = metrics.compute()
    assert scores["is_mean"] == pytest.approx(1.0, abs=1e-4)


def test_feature_network_takes_uint8_and_stays_frozen(feature_network: FeatureNetwork) -> None:
    pixels = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    expected = feature_network(pixels.float() / 127.5 - 1)
    torch.testing.assert_close(feature_network(pixels), expected)
    ImageMetrics(feature_network).train()  # would switch on BatchNorm updates and dropout
    assert not any(module.training for module in feature_network.modules())
    assert not any(p.requires_grad for p in feature_network.parameters())
    assert feature_network.with_output("logits")(pixels).shape == (4, 10)


def test_feature_network_refuses_other_image_shapes(feature_network: FeatureNetwork) -> None:
    with pytest.raises(ValueError, match=r"\(1, 28, 28\)"):
        feature_network(torch.zeros(2, 3, 32, 32))


def test_load_feature_network_from_a_trained_classifier(
    make_cfg, tiny_mnist: Path, tmp_path: Path
) -> None:
    cfg = make_cfg(
        f"paths.data_dir={tiny_mnist}",
        "data.batch_size=32",
        "data.val_fraction=0.25",
        "model=classifier",
        "model.width=4",
        "model.feature_dim=8",
        "trainer.max_epochs=1",
        "logger=none",
    )
    train(cfg)  # with the default callbacks: the sample logger must skip a classifier
    network = load_feature_network(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert network.name == "classifier:last.ckpt" and network.num_features == 8
    assert ImageMetrics(network).feature_name == "classifier:last.ckpt"


def test_load_feature_network_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="experiment=mnist_classifier"):
        load_feature_network(tmp_path / "nope.ckpt")


def test_load_feature_network_refuses_a_gan(tmp_path: Path) -> None:
    path = tmp_path / "gan.ckpt"
    torch.save({"state_dict": {}, MODEL_CLASS_KEY: "aigc.models.gan.module.GAN"}, path)
    with pytest.raises(CheckpointError, match=r"GAN, not an image classifier.*mnist_classifier"):
        load_feature_network(path)


def test_inception_unavailable_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    # As without the torch-fidelity package; nothing is downloaded.
    monkeypatch.setattr(torchmetrics.image.fid, "_TORCH_FIDELITY_AVAILABLE", False)
    available, reason = inception_available()
    assert not available
    assert "InceptionV3" in reason and "not comparable with published FIDs" in reason
