#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one go: the GPU tests (every GAN and diffusion conditioning,
# the language model, the text + image GPT with its tokenizer, sampling and scoring; FSDP on two
# GPUs), then throughput of each family (fp32 and bf16, eager and compiled, framework against a
# plain loop; MFU for the 6-layer/384 LM and the 36 M-parameter CIFAR-10 diffusion recipe).
#   AIGC_DATA_DIR=/path/to/data [LOG_DIR=dir] [BUDGET=seconds] bash scripts/gpu_check.sh
# Each check runs under its own time limit, and all of them within BUDGET, so that one slow or
# failing check costs no other: the compiled tests, the slowest, come last. Each check's output
# goes to LOG_DIR/<check>.log (its last lines to the screen), and a line each to summary.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
data_dir=${AIGC_DATA_DIR:-../shared/data}
log_dir=${LOG_DIR:-$(mktemp -d)}
deadline=$((SECONDS + ${BUDGET:-3600}))
mkdir -p "$log_dir"
: >"$log_dir/summary.txt"
failed=0

check() {  # check NAME SECONDS COMMAND...: COMMAND, stopped after SECONDS or at the deadline
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    ((limit = limit < deadline - SECONDS ? limit : deadline - SECONDS))
    if ((limit < 10)); then
        echo "$name: skipped, the budget is spent" | tee -a "$log_dir/summary.txt"
        failed=1
        return
    fi
    echo "== $name (at most $limit s)"
    # Into a file rather than through a pipe, which a process left behind would hold open.
    timeout --kill-after=10 "$limit" "$@" >"$log_dir/$name.log" 2>&1
    local rc=$?
    tail -n 12 "$log_dir/$name.log"
    echo "$name: exit $rc after $((SECONDS - start)) s" | tee -a "$log_dir/summary.txt"
    ((rc == 0)) || failed=1
}

bench=(--device cuda --data-dir "$data_dir" --steps 300 --warmup 50 --rounds 1)

check device 60 bash -c 'nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv &&
    python -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())"'
check tests_eager 240 python -m pytest -q -m "" -k "not True" --durations=10 tests/test_gpu.py
# The text + image GPT (experiment=mnist_text_image) over a tokenizer trained briefly here.
tokenizer=$(mktemp -d)
check image_tokenizer 120 python train.py experiment=mnist_image_tokenizer trainer.accelerator=gpu \
    trainer.max_steps=200 logger=none paths.data_dir="$data_dir" hydra.run.dir="$tokenizer"
check bench_text_image 120 python scripts/bench_lm.py "${bench[@]}" --experiment mnist_text_image \
    --image-tokenizer "$tokenizer" --precision 32 bf16-mixed --compile eager
check bench_lm 120 python scripts/bench_lm.py "${bench[@]}" --experiment shakespeare_char \
    --precision 32 bf16-mixed --compile eager
for conditioning in null label; do
    check "bench_gan_$conditioning" 90 python scripts/bench_gan.py "${bench[@]}" --batch-size 256 \
        --conditioning "$conditioning" --precision 32 bf16-mixed --compile eager
done
# The CIFAR-10 diffusion recipe (experiment=cifar10_ddpm), bf16, eager and compiled. CIFAR-10
# itself may not be downloadable here: random labelled 32x32 images in an image folder cost the same.
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
check bench_diffusion 300 python scripts/bench_diffusion.py "${bench[@]}" --experiment cifar10_ddpm \
    --data image_folder --batch-size 128 --workers 8 --steps 200 --precision bf16-mixed \
    --compile eager compiled --peak-tflops 989 -- data.path="$folder"
check tests_compiled 400 python -m pytest -q -m "" -k "True" --durations=10 tests/test_gpu.py
echo "== summary (logs in $log_dir)"
cat "$log_dir/summary.txt"
exit $failed
