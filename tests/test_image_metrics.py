import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aigc.core.module import MODEL_CLASS_KEY
from aigc.errors import CheckpointError
from aigc.metrics import (
    FeatureNetwork,
    FeatureSet,
    extract_features,
    image_scores,
    inception_available,
    inception_fid,
    load_feature_network,
    prdc,
)
from aigc.models.classifier import Classifier
from aigc.train import train

NUM_IMAGES = 100  # KID's subsets are clamped to this


@pytest.fixture
def feature_network() -> FeatureNetwork:
    """An untrained network: its random features still tell image distributions apart."""
    torch.manual_seed(0)
    classifier = Classifier((1, 28, 28), num_classes=10, width=4, feature_dim=16)
    # Variance-preserving weights: with PyTorch's default ones (and BatchNorm's running statistics
    # untouched by training) activations shrink layer by layer, and every distance is near zero.
    for module in classifier.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return FeatureNetwork(classifier)


def blobs(n: int = NUM_IMAGES, seed: int = 1) -> torch.Tensor:
    """Smooth images in [-1, 1], ``(n, 1, 28, 28)``: a stand-in for a real data set."""
    coarse = torch.rand(n, 1, 7, 7, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(coarse, size=28, mode="bilinear") * 2 - 1


def noise(n: int = NUM_IMAGES) -> torch.Tensor:
    return torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(2)).clamp(-1, 1)


def features(network: FeatureNetwork, images: torch.Tensor, labels=None) -> FeatureSet:
    return extract_features(network, images.split(32), labels)


def test_same_set_scores_near_zero_and_noise_far(feature_network: FeatureNetwork) -> None:
    real = features(feature_network, blobs())
    same = image_scores(real, features(feature_network, blobs()), kid_subset_size=50)
    far = image_scores(real, features(feature_network, noise()), kid_subset_size=50)
    assert far["fid"] > 0 and abs(same["fid"]) < 1e-2 * far["fid"]
    assert far["kid_mean"] > 0 and abs(same["kid_mean"]) < 1e-2 * far["kid_mean"]
    assert far["kid_std"] >= 0
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    assert far["precision"] == far["coverage"] == 0.0


def test_scores_are_repeatable_and_clamp_kid_subsets(feature_network: FeatureNetwork) -> None:
    real, fake = features(feature_network, blobs()), features(feature_network, noise())
    assert image_scores(real, fake) == image_scores(real, fake)  # kid_subset_size 1000 > 100


def test_inception_score_of_one_image_repeated_is_one(feature_network: FeatureNetwork) -> None:
    real = features(feature_network, blobs())
    fake = features(feature_network, blobs(1).expand(64, -1, -1, -1))
    assert image_scores(real, fake)["is_mean"] == pytest.approx(1.0, abs=1e-4)


def test_prdc_tells_fidelity_from_diversity() -> None:
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(500, 8, generator=generator)
    same = prdc(real, torch.randn(500, 8, generator=generator))
    assert min(same.values()) > 0.8 and same["density"] == pytest.approx(1.0, abs=0.2)
    # Mode collapse: every sample sits near one real point. Faithful, but covers nothing else.
    collapsed = prdc(real, real[:1] + 0.01 * torch.randn(500, 8, generator=generator))
    assert collapsed["precision"] == 1.0 and collapsed["recall"] < 0.05
    assert collapsed["coverage"] < 0.05
    # Samples far from the data: neither faithful nor covering.
    far = prdc(real, torch.randn(500, 8, generator=generator) + 10)
    assert far["precision"] == far["density"] == far["coverage"] == 0.0


def test_conditional_accuracy_and_intra_class_fid() -> None:
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat_interleave(50)  # 4 classes, 50 images each
    centres = torch.randn(4, 6, generator=generator) * 5
    real = FeatureSet(
        centres[labels] + torch.randn(200, 6, generator=generator),
        F.one_hot(labels, 4) * 9.0,
        labels,
    )
    # Generated images that all look like class 0, asked to be each class in turn.
    fake_feats = centres[torch.zeros(200, dtype=torch.long)] + torch.randn(
        200, 6, generator=generator
    )
    wrong = FeatureSet(fake_feats, F.one_hot(torch.zeros(200, dtype=torch.long), 4) * 9.0, labels)
    right = FeatureSet(
        centres[labels] + torch.randn(200, 6, generator=generator),
        F.one_hot(labels, 4) * 9.0,
        labels,
    )
    good, bad = image_scores(real, right), image_scores(real, wrong)
    assert good["conditional_accuracy"] == 1.0 and bad["conditional_accuracy"] == 0.25
    assert good["intra_fid"] < 0.1 * bad["intra_fid"]


def test_feature_network_takes_uint8_and_stays_frozen(feature_network: FeatureNetwork) -> None:
    pixels = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    expected = feature_network(pixels.float() / 127.5 - 1)
    for got, want in zip(feature_network(pixels), expected, strict=True):
        torch.testing.assert_close(got, want)
    feature_network.train()  # would switch on BatchNorm updates and dropout
    assert not any(module.training for module in feature_network.modules())
    assert not any(p.requires_grad for p in feature_network.parameters())
    assert feature_network(pixels)[1].shape == (4, 10)


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
    assert network.name == "classifier:last.ckpt"
    feats, logits = network(torch.zeros(3, 1, 28, 28))
    assert feats.shape == (3, 8) and logits.shape == (3, 10)
    assert network.digest() == load_feature_network(tmp_path / "run").digest()


def test_load_feature_network_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="experiment=mnist_classifier"):
        load_feature_network(tmp_path / "nope.ckpt")


def test_load_feature_network_refuses_a_gan(tmp_path: Path) -> None:
    path = tmp_path / "gan.ckpt"
    torch.save({"state_dict": {}, MODEL_CLASS_KEY: "aigc.models.gan.module.GAN"}, path)
    with pytest.raises(CheckpointError, match=r"GAN, not a ImageClassifier.*mnist_classifier"):
        load_feature_network(path)


def test_standard_fid_without_the_fid_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch_fidelity.feature_extractor_inceptionv3", None)
    available, reason = inception_available()
    assert not available
    assert reason == (
        "standard FID (InceptionV3) needs the fid extra: pip install -e '.[fid]' (torch-fidelity)"
    )


def test_standard_fid_without_weights_offline_says_where_to_put_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None
) -> None:
    pytest.importorskip("torch_fidelity", reason="the fid extra: pip install -e '.[fid]'")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # torch's hub cache, without the weights
    available, reason = inception_available()
    assert not available and "\n" not in reason
    weights = tmp_path / "hub" / "checkpoints" / "weights-inception-2015-12-05-6726825d.pth"
    assert reason.startswith(
        "standard FID (InceptionV3) needs weights that could not be downloaded"
    )
    assert reason.endswith(f".pth at {weights}") and "network disabled in tests" in reason
    assert list(weights.parent.iterdir()) == []  # no partial file left


def test_standard_fid_with_damaged_weights_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch_fidelity", reason="the fid extra: pip install -e '.[fid]'")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = tmp_path / "hub" / "checkpoints" / "weights-inception-2015-12-05-6726825d.pth"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"cut short")
    available, reason = inception_available()
    assert not available and "\n" not in reason
    assert reason.startswith(f"the InceptionV3 weights {weights} could not be loaded")


def test_standard_fid_where_the_weights_are() -> None:
    pytest.importorskip("torch_fidelity", reason="the fid extra: pip install -e '.[fid]'")
    weights = (
        Path(torch.hub.get_dir()) / "checkpoints" / "weights-inception-2015-12-05-6726825d.pth"
    )
    if not weights.is_file():
        pytest.skip(f"the InceptionV3 weights are not at {weights} (downloaded on first use)")
    assert inception_available() == (True, "standard FID with InceptionV3 (torch-fidelity)")
    real, other = blobs(16, seed=1), blobs(16, seed=2)
    assert inception_fid(real, real) < 1.0 < inception_fid(real, other)
