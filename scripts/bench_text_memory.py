"""Peak memory and tokens/s of a GPT training run as its text corpus grows from 10 MB to 1 GB:
training memory-maps the tokens rather than loading them, so its memory should stay flat.

    python scripts/bench_text_memory.py                            # 10 MB and 1 GB
    python scripts/bench_text_memory.py --sizes 10 100 --work-dir /big/disk --tokenizer bpe

For each size (in MB) it writes a corpus of made-up words (drawn with Zipf-like frequencies from
a fixed list, a line break every 12 words or so) under --work-dir (a temporary folder by default;
the corpora and their token files are deleted at the end unless --keep). It tokenizes the corpus
in a process of its own, timed apart, then trains on it with

    python train.py model=language_model data=text data.path=<corpus> trainer.max_steps=<steps> ...

(4 layers x 128, block 64, batch 12: the experiment=shakespeare_char_cpu model, no validation
and no samples), --rounds times, alternating between the sizes. Peak memory is the operating
system's peak resident set of each process (``os.wait4``); tokens/s is the median of what the
run logs (``tokens_per_sec``, every 10 steps) after the first third of its steps. Goal: the
training peak memory of the largest corpus within 10 % of the smallest's.
"""

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODEL = [
    "model=language_model",
    "data=text",
    "model.n_layer=4",
    "model.n_head=4",
    "model.n_embd=128",
    "model.block_size=64",
    "model.attention_backends=[math]",
    "data.batch_size=12",
]
RUN = [
    "trainer.max_epochs=-1",
    "++trainer.limit_val_batches=0",
    "trainer.log_every_n_steps=10",
    "callbacks.samples.every_n_steps=0",
    "callbacks.samples.on_epoch_end=false",
    "logger=csv",
]
TOKENIZE = """
import sys
from aigc.data import TextDataModule
path, tokenizer, vocab_size, cache_dir = sys.argv[1:]
TextDataModule(path, 64, cache_dir, tokenizer=tokenizer, vocab_size=int(vocab_size)).setup()
"""


def write_corpus(path: Path, megabytes: float, seed: int = 0) -> int:
    """Writes about ``megabytes`` MB of random words to ``path``; returns its size in bytes."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, rng.integers(1, 11))) for _ in range(5000)]
    frequency = 1 / np.arange(1, len(words) + 1)  # Zipf: a few words are most of the text
    spaced = np.array([f"{word} " for word in words], dtype=object)
    broken = np.array([f"{word}\n" for word in words], dtype=object)
    target, written = int(megabytes * 1e6), 0
    with path.open("w", encoding="utf-8") as f:
        while written < target:
            picks = rng.choice(len(words), 1_000_000, p=frequency / frequency.sum())
            line_ends = rng.random(len(picks)) < 1 / 12
            block = "".join(np.where(line_ends, broken[picks], spaced[picks]))
            written += f.write(block[: target - written])
    return path.stat().st_size


def run_child(command: list[str], log: Path) -> tuple[float, float]:
    """Runs ``command`` (its output to ``log``); returns (wall seconds, peak resident MB)."""
    started = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        sys.exit(f"{' '.join(command[:3])} ... failed ({process.returncode}); see {log}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024  # Linux: kilobytes


def tokens_per_sec(run_dir: Path, steps: int) -> float:
    """The median of the logged throughput after the first third of the steps."""
    with (run_dir / "csv" / "metrics.csv").open() as f:
        rows = [row for row in csv.DictReader(f) if row.get("tokens_per_sec")]
    late = [float(row["tokens_per_sec"]) for row in rows if int(row["step"]) >= steps // 3]
    return statistics.median(late)


def prepare(args: argparse.Namespace, megabytes: float, work: Path) -> tuple[Path, dict]:
    """Writes and tokenizes a corpus of ``megabytes`` MB; returns it and the figures."""
    corpus = work / f"corpus-{megabytes:g}MB.txt"
    started = time.perf_counter()
    size = write_corpus(corpus, megabytes)
    print(f"{megabytes:g} MB: wrote {size / 1e6:,.0f} MB in {time.perf_counter() - started:.0f} s")
    tokenize = [sys.executable, "-c", TOKENIZE, str(corpus), args.tokenizer, str(args.vocab_size)]
    tokenize_s, tokenize_mb = run_child([*tokenize, str(work)], work / "tokenize.log")
    (token_file,) = work.glob(f"{corpus.stem}.*.tokens.bin")
    return corpus, {
        "corpus_mb": size / 1e6,
        "token_file_mb": token_file.stat().st_size / 1e6,
        "tokenize_s": tokenize_s,
        "tokenize_peak_mb": tokenize_mb,
    }


def train(args: argparse.Namespace, corpus: Path, work: Path) -> dict[str, float]:
    """Trains on a tokenized corpus; returns the run's peak memory and tokens/s."""
    run_dir = work / f"run-{corpus.stem}"
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        *MODEL,
        *RUN,
        f"data.path={corpus}",
        f"data.tokenizer={args.tokenizer}",
        f"data.vocab_size={args.vocab_size}",
        f"trainer.max_steps={args.steps}",
        f"hydra.run.dir={run_dir}",
    ]
    train_s, train_mb = run_child(command, work / "train.log")
    result = {"train_s": train_s, "train_peak_mb": train_mb}
    result["tokens_per_sec"] = tokens_per_sec(run_dir, args.steps)
    shutil.rmtree(run_dir)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=float, nargs="+", default=[10, 1000], help="MB")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2, help="training runs of each size")
    parser.add_argument("--tokenizer", default="char", choices=["char", "byte", "bpe"])
    parser.add_argument("--vocab-size", type=int, default=4096, help="for --tokenizer bpe")
    parser.add_argument("--work-dir", help="where corpora are written (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the corpora and token files")
    args = parser.parse_args()

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench_text_memory-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        prepared = {size: prepare(args, size, work) for size in args.sizes}
        # Rounds alternate between the sizes, so that machine noise hits each alike.
        rounds = [
            {size: train(args, corpus, work) for size, (corpus, _) in prepared.items()}
            for _ in range(args.rounds)
        ]
    finally:
        if not args.keep:
            for path in work.glob("corpus-*"):
                path.unlink()
            if not args.work_dir:
                shutil.rmtree(work, ignore_errors=True)

    print(
        f"GPT 4 layers x 128, block 64, batch 12, {args.steps} steps, {args.tokenizer} tokenizer,"
        f" {os.cpu_count()} CPUs; medians of {args.rounds} rounds. Goal: training peak memory"
        " flat within 10 %."
    )
    results = {}
    for size, (_, figures) in prepared.items():
        runs = [runs_of_round[size] for runs_of_round in rounds]
        results[size] = {**figures, **{k: statistics.median(r[k] for r in runs) for k in runs[0]}}
    names = ("corpus MB", "token file MB", "tokenize s", "tokenize peak MB")
    names += ("train s", "train peak MB", "tokens/s")
    print("".join(f"{name:>17}" for name in names))
    for result in results.values():
        print("".join(f"{value:>17,.1f}" for value in result.values()))
    smallest, largest = results[min(results)], results[max(results)]
    for name in ("tokenize_peak_mb", "train_peak_mb", "tokens_per_sec"):
        print(f"{name}: largest / smallest = {largest[name] / smallest[name]:.3f}")
    for size in results:
        rounds_text = ", ".join(f"{r[size]['tokens_per_sec']:,.0f}" for r in rounds)
        print(f"{size:g} MB tokens/s by round: {rounds_text}")


if __name__ == "__main__":
    main()
