"""What users do to training runs, done on purpose, on tiny models: kill -9 at random moments,
also while checkpoints are being written (a larger language model that checkpoints after every
step), with $TMPDIR on another filesystem than the run where one is at hand; a disk that fills
up; two runs in one directory; a loss that diverges; settings that cannot work. Prints one table
and exits non-zero when any run lost a checkpoint, resumed inexactly or failed without one clear
error line, or left files in $TMPDIR.

    python scripts/torture.py              # every fault, 5 kills per model: about 15 minutes
    python scripts/torture.py --quick      # one kill per small model, a few bad inputs (CI)

Everything runs in a temporary folder with data the script writes itself (random MNIST-format
images, a short text), through `python train.py` as a user would start it.
"""

import argparse
import gzip
import os
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
GAN = [
    "data=mnist",
    "model.latent_dim=16",
    "model.generator_width=16",
    "model.discriminator_width=16",
    "data.batch_size=32",
    "trainer.max_epochs=4",
]
LM = [
    "model=language_model",
    "data=text",
    "model.n_layer=2",
    "model.n_head=2",
    "model.n_embd=64",
    "model.block_size=32",
    "model.dropout=0.1",
    "model.lr_decay_steps=60",
    "trainer.max_steps=40",
    "trainer.val_check_interval=5",
    "trainer.check_val_every_n_epoch=null",
]
# A larger language model (about 40 MB a checkpoint) that checkpoints after every step: kills
# then often land while a checkpoint is being written.
LM_WRITING = [
    *LM,
    "model.n_layer=4",
    "model.n_embd=256",
    "model.n_head=4",
    "trainer.max_steps=12",
    "trainer.val_check_interval=1",
    "data.val_batches=1",
]
QUIET = [
    "logger=csv",
    "callbacks.samples.every_n_steps=0",
    "callbacks.progress_bar=null",
    "+trainer.enable_progress_bar=false",
]


@dataclass
class Outcome:
    """One fault's tally: a row of the table."""

    runs: int = 0
    checkpoints_lost: int = 0
    resumes: int = 0
    resumes_exact: int = 0
    errors: int = 0
    errors_clear: int = 0
    notes: list[str] = field(default_factory=list)

    def failed(self) -> bool:
        return (
            self.checkpoints_lost > 0
            or self.resumes_exact < self.resumes
            or self.errors_clear < self.errors
        )


def write_data(folder: Path) -> Path:
    """Random MNIST-format IDX files (192 training images, 64 test) and a text file."""
    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    for split, count in (("train", 192), ("t10k", 64)):
        images = torch.randint(0, 256, (count, 28, 28), dtype=torch.uint8, generator=generator)
        labels = torch.randint(0, 10, (count,), dtype=torch.uint8, generator=generator)
        header = struct.pack(">IIII", 2051, count, 28, 28)
        with gzip.open(raw / f"{split}-images-idx3-ubyte.gz", "wb") as file:
            file.write(header + images.numpy().tobytes())
        with gzip.open(raw / f"{split}-labels-idx1-ubyte.gz", "wb") as file:
            file.write(struct.pack(">II", 2049, count) + labels.numpy().tobytes())
    text = folder / "text.txt"
    words = ["to", "be", "or", "not", "that", "is", "the", "question", "nobler", "mind"]
    rng = random.Random(0)
    text.write_text("\n".join(" ".join(rng.choices(words, k=12)) for _ in range(400)) + "\n")
    return text


class Runner:
    """Starts `python train.py` the way a user would, in the script's scratch folder."""

    def __init__(self, scratch: Path, data: Path, text: Path, tmpdir: Path) -> None:
        self.scratch, self.text = scratch, text
        self.env = {
            **os.environ,
            "AIGC_DATA_DIR": str(data),
            "AIGC_CACHE_DIR": str(scratch / "cache"),
            "OMP_NUM_THREADS": "1",
            "TMPDIR": str(tmpdir),
        }
        self.count = 0

    def model(self, family: str) -> list[str]:
        """``gan``, ``lm``, or ``lm-writing`` (the LM that checkpoints all the time)."""
        if family == "gan":
            return GAN
        return [*(LM_WRITING if family == "lm-writing" else LM), f"data.path={self.text}"]

    def new_dir(self) -> Path:
        self.count += 1
        return self.scratch / f"run{self.count:03d}"

    def start(self, run_dir: Path, *overrides: str, file_limit: int | None = None):
        def limit_files() -> None:  # a disk that fills up, for this process's files
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

        return subprocess.Popen(
            [sys.executable, str(ROOT / "train.py"), *overrides, f"hydra.run.dir={run_dir}"],
            cwd=self.scratch,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=limit_files if file_limit else None,
        )

    def run(self, run_dir: Path, *overrides: str, **kwargs) -> tuple[int, str]:
        process = self.start(run_dir, *overrides, **kwargs)
        _, stderr = process.communicate(timeout=900)
        return process.returncode, stderr


def one_clear_line(returncode: int, stderr: str) -> bool:
    """A non-zero exit whose last line is one `error:` line, and no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return returncode != 0 and "Traceback" not in stderr and lines[-1].startswith("error: ")


def unreadable_checkpoints(folder: Path) -> list[Path]:
    bad = []
    for path in sorted(folder.glob("*.ckpt")):
        try:
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception:
            bad.append(path)
    return bad


def same_weights(a: Path, b: Path) -> bool:
    first, second = (torch.load(p, map_location="cpu", weights_only=True) for p in (a, b))
    return first["global_step"] == second["global_step"] and all(
        torch.equal(tensor, second["state_dict"][name])
        for name, tensor in first["state_dict"].items()
    )


def kills(runner: Runner, family: str, count: int, outcome: Outcome) -> None:
    """Runs killed with SIGKILL at random moments, then resumed until done; every checkpoint left
    must be readable, and the final weights those of a run never killed."""
    reference = runner.new_dir()
    overrides = [*runner.model(family), *QUIET]
    started = time.perf_counter()
    returncode, stderr = runner.run(reference, *overrides)
    if returncode:
        raise SystemExit(f"the uninterrupted {family} run failed:\n{stderr}")
    duration = time.perf_counter() - started
    rng = random.Random(family)
    for _ in range(count):
        run_dir = runner.new_dir()
        process = runner.start(run_dir, *overrides)
        time.sleep(rng.uniform(0.3, 0.95) * duration)
        process.send_signal(signal.SIGKILL)
        process.wait()
        outcome.runs += 1
        lost = unreadable_checkpoints(run_dir / "checkpoints")
        outcome.checkpoints_lost += len(lost)
        outcome.notes += [f"unreadable after a kill: {path.name}" for path in lost]
        resume = ["ckpt_path=last"] if (run_dir / "checkpoints" / "last.ckpt").exists() else []
        returncode, stderr = runner.run(run_dir, *overrides, *resume)
        if returncode:
            outcome.notes.append(f"the resume failed: {stderr.strip().splitlines()[-1]}")
        outcome.resumes += 1
        last = run_dir / "checkpoints" / "last.ckpt"
        if returncode == 0 and same_weights(last, reference / "checkpoints" / "last.ckpt"):
            outcome.resumes_exact += 1


def full_disk(runner: Runner, outcome: Outcome) -> None:
    """A run resumed onto a disk with no room for one more checkpoint: one error line, the
    checkpoint it resumed from intact, and no partial file left."""
    run_dir = runner.new_dir()
    overrides = [*runner.model("lm"), *QUIET]
    runner.run(run_dir, *overrides, "trainer.max_steps=5")
    last = run_dir / "checkpoints" / "last.ckpt"
    size = last.stat().st_size
    returncode, stderr = runner.run(
        run_dir, *overrides, "trainer.max_steps=10", "ckpt_path=last", file_limit=size // 2
    )
    outcome.runs += 1
    outcome.errors += 1
    outcome.errors_clear += one_clear_line(returncode, stderr)
    lost = unreadable_checkpoints(run_dir / "checkpoints")
    leftovers = list((run_dir / "checkpoints").glob("*.partial"))
    outcome.checkpoints_lost += len(lost) + len(leftovers)
    if not one_clear_line(returncode, stderr):
        outcome.notes.append(f"full disk: {stderr.strip().splitlines()[-1:]}")


def two_runs_one_directory(runner: Runner, outcome: Outcome) -> None:
    """A second run started in the directory of a running one is refused; the first finishes."""
    run_dir = runner.new_dir()
    overrides = [*runner.model("lm"), *QUIET]
    first = runner.start(run_dir, *overrides)
    lock = run_dir / ".lock"
    deadline = time.perf_counter() + 120
    while not (lock.exists() and lock.read_text()) and time.perf_counter() < deadline:
        time.sleep(0.1)
    returncode, stderr = runner.run(run_dir, *overrides)
    _, first_stderr = first.communicate(timeout=900)
    outcome.runs += 2
    outcome.errors += 1
    outcome.errors_clear += one_clear_line(returncode, stderr) and "is in use by" in stderr
    if first.returncode:
        outcome.notes.append(f"the first run failed: {first_stderr.strip().splitlines()[-1]}")
        outcome.checkpoints_lost += 1


def divergence(runner: Runner, outcome: Outcome) -> None:
    """A learning rate that makes the loss NaN: one error line, and no checkpoint of NaNs."""
    run_dir = runner.new_dir()
    returncode, stderr = runner.run(run_dir, *runner.model("lm"), *QUIET, "model.lr=1e6")
    outcome.runs += 1
    outcome.errors += 1
    outcome.errors_clear += one_clear_line(returncode, stderr) and "NaN" in stderr
    for path in (run_dir / "checkpoints").glob("*.ckpt"):
        state = torch.load(path, weights_only=True)["state_dict"]
        if not all(t.isfinite().all() for t in state.values() if t.is_floating_point()):
            outcome.checkpoints_lost += 1
            outcome.notes.append(f"{path.name} holds non-finite weights")


BAD_INPUTS = {
    "gan": [
        ["data.batch_size=0"],
        ["model.lr=-1"],
        ["model.conditioning=text"],
        ["paths.data_dir=/nonexistent/data"],
        ["ckpt_path=/nonexistent.ckpt"],
    ],
    "lm": [
        ["data.batch_size=-1"],
        ["model.block_size=0"],
        ["model.n_embd=31"],
        ["data.path=/nonexistent.txt"],
        ["trainer.precision=64-mixed"],
    ],
}


def bad_inputs(runner: Runner, outcome: Outcome, quick: bool) -> None:
    missing_data_dir = Path("/nonexistent")  # named by one of the cases
    existed = missing_data_dir.exists()
    for family, cases in BAD_INPUTS.items():
        for overrides in cases[:2] if quick else cases:
            returncode, stderr = runner.run(
                runner.new_dir(), *runner.model(family), *QUIET, *overrides
            )
            outcome.runs += 1
            outcome.errors += 1
            if one_clear_line(returncode, stderr):
                outcome.errors_clear += 1
            else:
                tail = stderr.strip().splitlines()[-1:] or ["(nothing)"]
                outcome.notes.append(
                    f"{family} {' '.join(overrides)}: exit {returncode}, {tail[0]}"
                )
    if missing_data_dir.exists() and not existed:
        outcome.errors_clear -= 1  # the error was clear, but the failed start left a folder
        outcome.notes.append(f"{missing_data_dir} was created")


def other_filesystem(scratch: Path) -> Path:
    """A folder for $TMPDIR on another filesystem than the runs (RAM-backed /dev/shm), where
    Lightning's own checkpoint write would move files across filesystems."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shm.stat().st_dev != scratch.stat().st_dev:
        return Path(tempfile.mkdtemp(dir=shm))
    return Path(tempfile.mkdtemp(dir=scratch))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one kill per model, few inputs")
    parser.add_argument("--kills", type=int, default=5, help="killed runs per model")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="aigc-torture-"))
    tmpdir = other_filesystem(scratch)
    text = write_data(scratch / "data")
    runner = Runner(scratch, scratch / "data", text, tmpdir)
    # What the runs leave in $TMPDIR: files (torch makes an empty cache folder there at import).
    leaked_before = {p for p in tmpdir.rglob("*") if p.is_file()}
    kill_count = 1 if args.quick else args.kills
    table: dict[str, Outcome] = {}
    try:
        for family in ("gan", "lm") if args.quick else ("gan", "lm", "lm-writing"):
            kills(runner, family, kill_count, table.setdefault(f"kill -9 ({family})", Outcome()))
        if not args.quick:
            full_disk(runner, table.setdefault("full disk", Outcome()))
            two_runs_one_directory(runner, table.setdefault("two runs, one directory", Outcome()))
        divergence(runner, table.setdefault("loss becomes NaN", Outcome()))
        bad_inputs(runner, table.setdefault("settings that cannot work", Outcome()), args.quick)
        leaked = {p for p in tmpdir.rglob("*") if p.is_file()} - leaked_before
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(tmpdir, ignore_errors=True)

    other = tmpdir.parent != scratch
    print(f"$TMPDIR on another filesystem: {other}; files left there: {len(leaked)}")
    print("| fault | runs | checkpoints lost | resumes exact | clear one-line errors |")
    print("| --- | --- | --- | --- | --- |")
    for fault, outcome in table.items():
        resumes = f"{outcome.resumes_exact}/{outcome.resumes}" if outcome.resumes else "-"
        errors = f"{outcome.errors_clear}/{outcome.errors}" if outcome.errors else "-"
        print(f"| {fault} | {outcome.runs} | {outcome.checkpoints_lost} | {resumes} | {errors} |")
    for fault, outcome in table.items():
        for note in outcome.notes:
            print(f"{fault}: {note}")
    for path in sorted(leaked):
        print(f"left in $TMPDIR: {path.relative_to(tmpdir)}")
    if leaked or any(outcome.failed() for outcome in table.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
