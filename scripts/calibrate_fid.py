"""Puts the image scores on a scale: real data against real data (the floor) and against blurred
real digits and Gaussian noise (ceilings), in the feature space of one classifier. Each candidate
image keeps its real label, as if a conditional model had been asked for it.

    python scripts/calibrate_fid.py --feature-ckpt <classifier checkpoint>

Numbers are only comparable between runs that use the same feature checkpoint.
"""

import argparse
import os

import torch
from torchvision.transforms.functional import gaussian_blur

from aigc.data import TorchvisionImageDataModule
from aigc.data.pixels import to_signed_unit_range
from aigc.metrics import extract_features, image_scores, load_feature_network, reference_features


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feature-ckpt", required=True)
    parser.add_argument("--data-dir", default=os.environ.get("AIGC_DATA_DIR", "./data"))
    parser.add_argument("--cache-dir", default=os.environ.get("AIGC_CACHE_DIR", "./.cache"))
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--blur-sigma", type=float, default=2.0)
    parser.add_argument("--real-images", type=int, default=10000)
    args = parser.parse_args()

    network = load_feature_network(args.feature_ckpt)
    datamodule = TorchvisionImageDataModule(args.data, args.data_dir, val_fraction=0.0)
    real = reference_features(network, datamodule, args.cache_dir)
    datamodule.setup("fit")
    train = datamodule.train_set.subset(torch.arange(args.real_images))
    images = to_signed_unit_range(train.images)
    generator = torch.Generator().manual_seed(0)
    candidates = {
        "real train split (floor)": images,
        f"blurred train digits (sigma {args.blur_sigma})": gaussian_blur(
            images, kernel_size=9, sigma=args.blur_sigma
        ),
        "Gaussian noise (ceiling)": torch.randn(images.shape, generator=generator).clamp(-1, 1),
    }
    print(f"against the real {args.data} test split, features: {network.name}")
    print(
        f"{'candidate':<34} {'FID':>10} {'KID':>10} {'IS':>6} {'prec':>6} {'recall':>6} "
        f"{'cond acc':>8} {'intra FID':>10}"
    )
    for name, candidate in candidates.items():
        s = image_scores(real, extract_features(network, candidate.split(500), train.labels))
        print(
            f"{name:<34} {s['fid']:>10.2f} {s['kid_mean']:>10.4f} {s['is_mean']:>6.2f} "
            f"{s['precision']:>6.3f} {s['recall']:>6.3f} {s['conditional_accuracy']:>8.4f} "
            f"{s['intra_fid']:>10.2f}"
        )


if __name__ == "__main__":
    main()
