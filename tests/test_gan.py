import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from aigc.data.base import DictDataset
from aigc.errors import ConfigError
from aigc.models.gan import GAN, Discriminator, Generator
from aigc.models.gan.losses import LOSSES, get_loss
from aigc.nn.batch_norm import batch_statistics
from aigc.nn.random_features import RandomFeatureFID, RandomFeatures


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 64, 64)])
def test_networks_adapt_to_image_shape(shape: tuple[int, int, int]) -> None:
    generator, discriminator = (
        Generator(shape, latent_dim=16, width=8),
        Discriminator(shape, width=8),
    )
    images = generator(torch.randn(5, 16))
    assert images.shape == (5, *shape)
    assert images.abs().max() <= 1.0  # tanh output
    assert discriminator(images).shape == (5,)


def test_dcgan_initialisation() -> None:
    generator = Generator((1, 28, 28), width=64)
    conv = generator.net[0].weight
    assert abs(conv.mean().item()) < 0.002 and abs(conv.std().item() - 0.02) < 0.002


def test_odd_image_size_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be halved"):
        Generator((1, 27, 27))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_reward_the_right_side(name: str) -> None:
    loss = get_loss(name)
    confident_real, confident_fake = torch.full((8,), 5.0), torch.full((8,), -5.0)
    # A discriminator that tells real from fake has a lower loss than one that mixes them up.
    assert loss.discriminator(confident_real, confident_fake) < loss.discriminator(
        confident_fake, confident_real
    )
    # A generator whose fakes pass as real has a lower loss than one whose fakes are caught.
    assert loss.generator(confident_real) < loss.generator(confident_fake)


def test_unknown_loss() -> None:
    with pytest.raises(ConfigError, match="non_saturating"):
        get_loss("wasserstein")


def tiny_gan(**kwargs) -> GAN:
    torch.manual_seed(0)
    return GAN(
        image_shape=(1, 28, 28), latent_dim=8, generator_width=8, discriminator_width=8, **kwargs
    )


def test_samples_are_seeded_and_drawn_in_eval_mode() -> None:
    gan = tiny_gan()

    def draw(seed: int) -> torch.Tensor:
        return gan.sample(4, generator=torch.Generator().manual_seed(seed)).images

    first = draw(0)
    assert first.shape == (4, 1, 28, 28) and first.abs().max() <= 1.0
    assert torch.equal(first, draw(0)) and not torch.equal(first, draw(1))
    assert gan.network.training  # back in training mode after sampling in eval mode


def test_label_conditional_networks_read_the_class() -> None:
    gan = tiny_gan(conditioning="label", num_classes=10, class_names=[str(i) for i in range(10)])
    samples = gan.sample(20)  # no condition: every class, two samples each
    assert samples.captions == [str(i) for i in range(10) for _ in range(2)]
    # The same latents with other labels give other images: the class reaches the generator.
    z = torch.randn(3, 8)
    one_hot = torch.eye(10)
    assert not torch.allclose(
        gan.network(z, one_hot[[0, 0, 0]]), gan.network(z, one_hot[[1, 1, 1]])
    )
    # The projection discriminator starts out unconditional (a zero class term), and scores an
    # image differently under another class once its class embedding has learned anything.
    images = torch.rand(3, 1, 28, 28) * 2 - 1
    discriminator = gan.discriminator

    def scores(label: int) -> torch.Tensor:
        return discriminator(images, one_hot[[label] * 3])

    assert torch.equal(scores(0), scores(5))
    torch.nn.init.normal_(discriminator.project.weight)
    assert not torch.allclose(scores(0), scores(5))


def test_spectral_norm_replaces_batchnorm_in_the_discriminator() -> None:
    discriminator = Discriminator((1, 28, 28), width=8, cond_dim=10, spectral_norm=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in discriminator.modules())
    names = [name for name, _ in discriminator.named_parameters()]
    assert any("parametrizations.weight.original" in name for name in names)
    assert discriminator(torch.zeros(2, 1, 28, 28), torch.zeros(2, 10)).shape == (2,)


def test_batch_statistics_normalise_as_training_does_and_train_nothing() -> None:
    discriminator = Discriminator((1, 28, 28), width=8).eval()
    images = torch.rand(8, 1, 28, 28) * 2 - 1
    before = {name: value.clone() for name, value in discriminator.state_dict().items()}
    with batch_statistics(discriminator):
        inside = discriminator(images)
    # Running statistics and their count stay as they were, and so does the mode.
    for name, value in discriminator.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert not discriminator.training
    assert not torch.allclose(inside, discriminator(images))  # eval mode computes another thing
    torch.testing.assert_close(inside, discriminator.train()(images))  # training mode the same


@pytest.mark.parametrize("conditioning", [None, "label"])
def test_val_d_x_is_training_d_x_on_the_same_batch(conditioning: str | None) -> None:
    labelled = {"num_classes": 10, "class_names": list("0123456789")} if conditioning else {}
    gan = tiny_gan(conditioning=conditioning, **labelled)
    generator = torch.Generator().manual_seed(1)
    batch = DictDataset(
        image=torch.rand(16, 1, 28, 28, generator=generator) * 2 - 1,
        label=torch.randint(0, 10, (16,), generator=generator),
    )
    loader = DataLoader(batch, batch_size=16)
    quiet = {
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    (validated,) = L.Trainer(**quiet).validate(gan, loader, verbose=False)
    # The first training step measures D(x) on the same weights, before D's update.
    trainer = L.Trainer(max_steps=1, log_every_n_steps=1, limit_val_batches=0, **quiet)
    trainer.fit(gan, loader)
    trained = float(trainer.callback_metrics["D(x)"])
    assert validated["val/D(x)"] == pytest.approx(trained, abs=1e-6)


def test_random_features_are_fixed_and_left_out_of_checkpoints() -> None:
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    features = RandomFeatures(3)
    assert features(images).shape == (4, features.num_features)
    assert torch.equal(features(images), RandomFeatures(3)(images))  # the same seed, the same net
    assert not torch.equal(features(images), RandomFeatures(3, seed=1)(images))
    assert not list(features.parameters()) and not features.state_dict()
    assert all(not name.startswith("val_fid") for name in tiny_gan().state_dict())


def test_fid_in_random_features_tells_images_from_noise() -> None:
    generator = torch.Generator().manual_seed(0)

    def blobs(n: int) -> torch.Tensor:
        """Smooth random shapes: upsampled coarse noise, thresholded, in [-1, 1]."""
        coarse = torch.rand(n, 1, 7, 7, generator=generator)
        return (torch.nn.functional.interpolate(coarse, size=28, mode="bilinear") > 0.6) * 2.0 - 1

    def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
        metric = RandomFeatureFID(1)
        metric.update(real, real=True)
        metric.update(fake, real=False)
        return float(metric.compute())

    real = blobs(256)
    same_kind = fid(real, blobs(256))
    assert same_kind < fid(real, torch.rand(256, 1, 28, 28, generator=generator) * 2 - 1) / 10
    assert same_kind < fid(real, -blobs(256)) / 2  # the same shapes with their colours swapped
    # One image a side has no covariance: no number, and no error that would stop training.
    assert torch.isnan(torch.tensor(fid(real[:1], real[1:2])))
