"""Puts classifier-FID/KID numbers on a scale: real data against real data (the floor) and against
Gaussian noise and blurred real digits (ceilings), in the feature space of one classifier.

    python scripts/calibrate_fid.py --feature-ckpt <classifier checkpoint>

Numbers are only comparable between runs that use the same feature checkpoint.
"""

import argparse

import torch
from torchvision.transforms.functional import gaussian_blur

from aigc.data import ImageDataModule
from aigc.data.loading import make_loader
from aigc.metrics.image import ImageMetrics, load_feature_network


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feature-ckpt", required=True)
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--blur-sigma", type=float, default=2.0)
    parser.add_argument("--kid-subset-size", type=int, default=1000)
    args = parser.parse_args()

    datamodule = ImageDataModule(args.data, args.data_dir, batch_size=1000, val_fraction=0.0)
    datamodule.prepare_data()
    datamodule.setup()

    def batches(dataset):  # (images in [-1, 1], labels)
        for images, _ in make_loader(dataset, batch_size=1000, num_workers=0, pin_memory=False):
            yield datamodule.on_after_batch_transfer((images, None), 0)[0]

    metrics = ImageMetrics(load_feature_network(args.feature_ckpt), args.kid_subset_size)
    for images in batches(datamodule.test_set):
        metrics.update(images, real=True)
    generator = torch.Generator().manual_seed(0)
    candidates = {
        "real train split (floor)": lambda: batches(datamodule.train_set),
        f"blurred train digits (sigma {args.blur_sigma})": lambda: (
            gaussian_blur(x, kernel_size=9, sigma=args.blur_sigma)
            for x in batches(datamodule.train_set)
        ),
        "Gaussian noise (ceiling)": lambda: (
            torch.randn(x.shape, generator=generator).clamp(-1, 1)
            for x in batches(datamodule.train_set)
        ),
    }
    print(f"against the real {args.data} test split, features: {metrics.feature_name}")
    print(f"{'candidate':<34} {'FID':>10} {'KID':>12} {'IS':>6}")
    for name, images in candidates.items():
        metrics.reset()
        for x in images():
            metrics.update(x, real=False)
        r = metrics.compute()
        print(f"{name:<34} {r['fid']:>10.2f} {r['kid_mean']:>12.4f} {r['is_mean']:>6.2f}")


if __name__ == "__main__":
    main()
