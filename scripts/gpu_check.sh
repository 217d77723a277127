#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one go: the GPU tests (every GAN conditioning, the language
# model, FSDP on two GPUs), then throughput of both families (fp32 and bf16, eager and compiled,
# framework against a plain loop; the class-conditional GAN and the text + image GPT too; MFU for
# the 6-layer/384 LM and the 36 M-parameter CIFAR-10 diffusion recipe).
#   AIGC_DATA_DIR=/path/to/data bash scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir=${AIGC_DATA_DIR:-../shared/data}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python -m pytest -q -m "" tests/test_gpu.py
python scripts/bench_lm.py --device cuda --data-dir "$data_dir" --experiment shakespeare_char \
    --steps 300 --warmup 50 --rounds 1 --precision 32 bf16-mixed
for conditioning in null label; do
    python scripts/bench_gan.py --device cuda --data-dir "$data_dir" --batch-size 256 \
        --conditioning "$conditioning" --steps 300 --warmup 50 --rounds 1 --precision 32 bf16-mixed
done
# The text + image GPT (experiment=mnist_multimodal) over a tokenizer trained briefly here.
tokenizer=$(mktemp -d)
python train.py experiment=mnist_vqvae trainer.accelerator=gpu trainer.max_steps=200 logger=none \
    paths.data_dir="$data_dir" hydra.run.dir="$tokenizer"
python scripts/bench_lm.py --device cuda --data-dir "$data_dir" --experiment mnist_multimodal \
    --image-tokenizer "$tokenizer" --steps 300 --warmup 50 --rounds 1 --precision 32 bf16-mixed
# The CIFAR-10 diffusion recipe (experiment=cifar10_ddpm), bf16 and compiled. CIFAR-10 itself
# may not be downloadable here: random labelled 32x32 images in an image folder cost the same.
folder=$(mktemp -d)
python - "$folder" <<'EOF'
import sys
from pathlib import Path

import numpy as np
from PIL import Image

root, rng = Path(sys.argv[1]), np.random.default_rng(0)
rows = ["file_name,label"]
for i in range(8192):
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / f"{i}.png")
    rows.append(f"{i}.png,class{i % 10}")
(root / "metadata.csv").write_text("\n".join(rows) + "\n")
EOF
# 989 TFLOP/s: an H100/H200's dense bf16 peak; MFU is printed against it for every variant.
python scripts/bench_diffusion.py --device cuda --experiment cifar10_ddpm --data image_folder \
    --batch-size 128 --workers 8 --steps 200 --warmup 50 --rounds 1 --precision 32 bf16-mixed \
    --compile eager compiled --peak-tflops 989 -- data.path="$folder"
