# CPU or GPU image: torch's default Linux wheels carry CUDA, so `docker run --gpus all` uses it.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY train.py generate.py eval.py ./
# The configs travel inside the package, so a plain (non-editable) install finds them.
RUN pip install --no-cache-dir .

ENV AIGC_DATA_DIR=/data
VOLUME ["/data", "/app/logs"]
CMD ["python", "train.py", "model=gan", "data=mnist"]
