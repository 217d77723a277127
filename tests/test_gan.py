import pytest
import torch

from aigc.errors import ConfigError
from aigc.models.gan import GAN, Discriminator, Generator
from aigc.models.gan.losses import LOSSES, get_loss


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


def test_sample_for_logging_uses_fixed_latents() -> None:
    torch.manual_seed(0)
    gan = GAN(
        image_shape=(1, 28, 28),
        latent_dim=8,
        generator_width=8,
        discriminator_width=8,
        num_samples=4,
    )
    first, second = gan.sample_for_logging(), gan.sample_for_logging()
    assert first.shape == (4, 1, 28, 28)
    assert torch.equal(first, second)
    assert gan.generator.training  # restored after sampling in eval mode
