# The image runs train.py, generate.py, eval.py, export.py and the scripts. torch's default Linux
# wheels carry CUDA, so `docker run --gpus all` uses a GPU; a much smaller CPU-only image:
# `docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu -t aigc-cpu .`
FROM python:3.11-slim
ARG TORCH_INDEX=""

WORKDIR /app
COPY pyproject.toml README.md ./
COPY configs ./configs
COPY src ./src
COPY train.py generate.py eval.py export.py ./
COPY scripts ./scripts
# The configs travel inside the package (src/aigc/configs links to configs/), so a plain
# (non-editable) install finds them.
RUN if [ -n "$TORCH_INDEX" ]; then \
        pip install --no-cache-dir torch torchvision --index-url "$TORCH_INDEX"; \
    fi \
    && pip install --no-cache-dir .

# Runs as a user, not root; the mounted folders are where it writes.
RUN useradd --create-home aigc && mkdir -p /data /app/logs && chown aigc /data /app/logs
USER aigc
ENV AIGC_DATA_DIR=/data
VOLUME ["/data", "/app/logs"]
# One DCGAN epoch on MNIST (downloaded into /data when absent): a few minutes on a laptop CPU.
CMD ["python", "train.py", "experiment=mnist_dcgan", "trainer.max_epochs=1"]
