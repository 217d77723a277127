#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one go: the GPU tests (every GAN conditioning, the language
# model, FSDP on two GPUs), then throughput of both families (fp32 and bf16, eager and compiled,
# framework against a plain loop; the class-conditional GAN too; MFU for the 6-layer/384 LM).
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
