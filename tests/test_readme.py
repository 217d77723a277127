"""Every shell command of the docs (README.md, CONTRIBUTING.md and docs/) runs here on tiny data,
or ALLOWED names it with the reason it is not run and where it is checked instead.

The docs are read when the tests are collected, so a command added to them is tested at once; one
that no runner here takes and ALLOWED does not name fails. A command that several pages give runs
once. The entry points run in-process on their composed config (``aigc.train.main(cfg)`` and its
kin) with TINY overrides appended: one training step, small models and batches, few samples.
The docs' placeholders (``<run>``, ``my_images``, ...) stand for runs trained once in the session
and for tiny data in the real formats. Each command runs in its own folder, which stands for the
user's, with their files.
"""

import contextlib
import io
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest
import tokenizers
import torch
from conftest import (
    ROOT,
    TINY_DIFFUSION,
    TINY_GAN,
    TINY_IMAGE_TOKENIZER,
    TINY_LM_SIZES,
    TINY_TEXT_IMAGE,
    accept_tiny_cifar10,
    run_train_cli,
    write_image_folder,
    write_tiny_cifar10,
    write_tiny_idx_dataset,
)
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict
from PIL import Image

from aigc.paths import CONFIG_DIR
from aigc.tokenizers.text import BPETokenizer
from aigc.utils.distributed import strategy_for
from aigc.utils.instantiate import instantiate, instantiate_list, instantiate_model

README = ROOT / "README.md"
# Every page whose commands run here, README first.
DOCS = [README, ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]
PYTHON = ("python", "python3")
# Hydra's flags that print something and run nothing.
HYDRA_FLAGS = ("--help", "--hydra-help", "--cfg", "--info")

# Commands this test does not run (a regular expression that matches the start of the command),
# why, and where they are checked instead.
ALLOWED = {
    r"make (train|test)$": "the two set-up commands: CI runs `make test` on a fresh clone "
    "(.ci/run), and test_make_train_trains_a_headline_command checks what `make train` runs",
    r"make test-all$": "the whole suite with its slow tests, too long for the suite itself",
    r"make lint$": "runs ruff, which CI runs after the tests (.ci/run)",
    r"make tensorboard$": "starts TensorBoard's web server, which runs until it is stopped",
    r"mlflow ui\b": "starts MLflow's web server, which runs until it is stopped",
    r"pip install\b": "installs packages: CI installs the package and all its extras with "
    "`make test` (pip install -e '.[dev]')",
    r"python3 -m venv\b|source \S+/activate$": "makes and enters a virtual environment, as "
    "`make test` does in CI",
    r"export AIGC_DATA_DIR=": "sets the data folder for the commands after it; this test sets "
    "AIGC_DATA_DIR to its own tiny data",
    r"docker\b": "needs Docker; tests/test_docker.py checks the Dockerfile without it. A command "
    "given to the image (`docker run ... python generate.py ...`) runs here on its own",
    r"sbatch\b": "needs a SLURM cluster",
}
# Commands that need an optional extra (pip install -e '.[...]'), and the module it installs.
EXTRAS = {
    r"logger=.*mlflow": "mlflow",
    r"logger=.*wandb": "wandb",
    r"hparams_search=": "hydra_plugins.hydra_optuna_sweeper",
    r"hydra/launcher=slurm": "hydra_plugins.hydra_submitit_launcher",
}
# Placeholders of the docs' commands and what stands for them here: a run of that
# experiment trained in this session (``logs/<experiment>/runs/<run>`` works for any), or data.
# (Files that commands name by a relative path, book.txt, my_images or seven.png, are in the
# folder that each command runs in: Session.files.)
PLACEHOLDERS: dict[str, Callable[["Session"], object]] = {
    "<task>": lambda s: "mnist_dcgan",
    "logs/train/runs/<run>": lambda s: s.trained("train", "model=gan", "data=mnist"),
    "<run or .ckpt>": lambda s: s.run("mnist_dcgan"),
    "<dcgan run>": lambda s: s.run("mnist_dcgan"),
    "<cdcgan run>": lambda s: s.run("mnist_cdcgan"),
    "<text gan run>": lambda s: s.run("mnist_text_gan"),
    "<text GAN>": lambda s: s.run("mnist_text_gan"),
    "<ddpm run>": lambda s: s.run("mnist_ddpm"),
    "<tokenizer run>": lambda s: s.run("mnist_image_tokenizer"),
    "<text_image run>": lambda s: s.run(
        "mnist_text_image", f"model.image_tokenizer={s.run('mnist_image_tokenizer')}"
    ),
    "<your tokenizer run>": lambda s: s.trained(
        "my_vqvae",
        "model=image_tokenizer",
        "data=image_folder",
        f"data.path={s.files / 'my_images'}",
    ),
    "<classifier run or .ckpt>": lambda s: s.checkpoint("mnist_classifier"),
    "<classifier run>": lambda s: s.run("mnist_classifier"),
    "<classifier>": lambda s: s.checkpoint("mnist_classifier"),
    "<language model>": lambda s: s.run("shakespeare_char_cpu_tuned"),
    "<lm last.ckpt>": lambda s: s.checkpoint("shakespeare_char_cpu_tuned"),
    "/datasets": lambda s: s.data_dir,
}
RUN_PLACEHOLDER = re.compile(r"logs/(\w+)/runs/<run>")

# Small enough to train in a moment, per model class.
TINY_MODELS = {
    "GAN": [
        *TINY_GAN,
        "model.text_encoder.n_layer=1",
        "model.text_encoder.n_head=2",
        "model.text_encoder.n_embd=16",
    ],
    "LanguageModel": [*TINY_LM_SIZES, "sampling.max_new_tokens=16"],
    "Classifier": ["model.width=8"],
    "DiffusionModel": [*TINY_DIFFUSION, "model.text_encoder.n_embd=16"],
    "ImageTokenizer": TINY_IMAGE_TOKENIZER,
    "TextImageModel": TINY_TEXT_IMAGE,
}
# eval.py: the default count per condition (8) rather than 10,000 samples.
TINY_EVAL = ["sampling.num_samples=null"]
# Quick settings of each script. The benchmarks: a few steps of one variant, fp32 eager
# (torch.compile takes a minute a model, and bf16 matmuls minutes on CPUs without bf16 units).
BENCH = shlex.split("--steps 3 --warmup 1 --rounds 1 --precision 32 --compile eager")
TINY_SCRIPTS = {
    "bench_gan.py": [*BENCH, "--batch-size", "16"],
    "bench_lm.py": BENCH,
    "bench_diffusion.py": [*BENCH, "--batch-size", "16"],
    "probe_text_encoder.py": ["--steps", "2"],
    "wording_accuracy.py": ["--per-class", "1"],
    "calibrate_fid.py": ["--real-images", "16"],
    "scorecard.py": ["--", *TINY_EVAL],  # eval.py overrides, after its own
}


@dataclass(frozen=True)
class Command:
    text: str  # as the page gives it: continuation lines joined, the comment left out
    comment: str  # what its ``# ...`` comment says
    section: str  # the ``## `` heading it is under ("" above the first)
    line: int
    page: str = "README.md"  # relative to the repository root

    @property
    def slug(self) -> str:
        return re.sub(r"[^\w.]+", "-", self.text.removeprefix("python ")).strip("-")[:60]


def split_comment(line: str) -> tuple[str, str]:
    """(code, comment) of a shell line: ``#`` at the start of a word outside quotes begins one."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line.rstrip(), ""


def readme_commands(markdown: str, page: str = "README.md") -> list[Command]:
    """The commands of the ```bash blocks of one page, each once, in order; ``a && b`` is two."""
    commands: dict[str, Command] = {}
    fence, section, code, comments, start = None, "", "", [], 0
    for number, line in enumerate(markdown.splitlines(), 1):
        if line.strip().startswith("```"):
            fence = line.strip()[3:] if fence is None else None
            continue
        if fence is None and line.startswith("## "):
            section = line[3:].strip()
        if fence != "bash":
            continue
        part, comment = split_comment(line)
        if not code and not part:
            continue
        if not code:
            start = number
        comments += [comment] if comment else []
        if part.endswith("\\"):
            code += part[:-1].strip() + " "
            continue
        for text in re.split(r"\s+&&\s+", code + part.strip()):
            commands.setdefault(text, Command(text, " ".join(comments), section, start, page))
        code, comments = "", []
    return list(commands.values())


def docs_commands(pages: list[Path], root: Path = ROOT) -> list[Command]:
    """The commands of every page, each once: a command that a later page repeats is left out."""
    commands: dict[str, Command] = {}
    for path in pages:
        page = path.relative_to(root).as_posix()
        for command in readme_commands(path.read_text(encoding="utf-8"), page):
            commands.setdefault(command.text, command)
    return list(commands.values())


README_COMMANDS = readme_commands(README.read_text(encoding="utf-8"))
COMMANDS = docs_commands([page for page in DOCS if page.is_file()])


def allowed_reason(text: str) -> str | None:
    return next((why for pattern, why in ALLOWED.items() if re.match(pattern, text)), None)


class Session:
    """Tiny data in the real formats, and runs of experiments trained once, on demand."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data_dir = root / "data"
        write_tiny_idx_dataset(self.data_dir)
        write_tiny_idx_dataset(self.data_dir, "FashionMNIST")
        self.cifar10 = write_tiny_cifar10(self.data_dir)
        verse = "ROMEO:\nBut soft, what light through yonder window breaks?\n\n"
        (self.data_dir / "tinyshakespeare").mkdir()
        (self.data_dir / "tinyshakespeare" / "input.txt").write_text(verse * 200)
        self.files = root / "files"  # the user's own, named by the docs' commands
        text = "Ein Buch, un livre, 一本书, a book.\n" * 60
        for name in ("book.txt", "a.txt", "b.txt", "books/one.txt", "books/more/two.md"):
            (self.files / name).parent.mkdir(parents=True, exist_ok=True)
            (self.files / name).write_text(text, encoding="utf-8")
        (self.files / "gpt2").mkdir()
        bpe = BPETokenizer.train([text], vocab_size=300).state_dict()["json"]
        tokenizers.Tokenizer.from_str(bpe).save(str(self.files / "gpt2" / "tokenizer.json"))
        write_image_folder(self.files / "my_images")
        Image.new("L", (28, 28)).save(self.files / "seven.png")  # an image to caption
        self._runs: dict[str, Path] = {}

    def run(self, experiment: str, *overrides: str) -> Path:
        """The run directory of ``python train.py experiment=<experiment> <overrides>``, trained
        tiny."""
        return self.trained(experiment, f"experiment={experiment}", *overrides)

    def trained(self, name: str, *overrides: str) -> Path:
        """The run directory of ``python train.py <overrides>``, trained tiny once per name."""
        if name not in self._runs:
            run_dir = self.root / "runs" / name
            train_job([*overrides, f"hydra.run.dir={run_dir}"])
            self._runs[name] = run_dir
        return self._runs[name]

    def checkpoint(self, experiment: str) -> Path:
        return self.run(experiment) / "checkpoints" / "last.ckpt"

    def substitute(self, text: str) -> str:
        for placeholder, stand_in in PLACEHOLDERS.items():
            if placeholder in text:
                text = text.replace(placeholder, str(stand_in(self)))
        text = RUN_PLACEHOLDER.sub(lambda m: str(self.run(m.group(1))), text)
        left = re.search(r"<[^<>]+>", text)
        assert left is None, f"no stand-in for the placeholder {left[0]}: add it to PLACEHOLDERS"
        return text


@pytest.fixture(scope="session")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    return Session(tmp_path_factory.mktemp("readme"))


@pytest.fixture
def user(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None
) -> Iterator[Session]:
    """A command's surroundings: a folder of the user's files to run in, the session's tiny data
    and caches."""
    monkeypatch.chdir(tmp_path)
    for path in session.files.iterdir():
        (tmp_path / path.name).symlink_to(path)
    monkeypatch.setenv("AIGC_DATA_DIR", str(session.data_dir))
    monkeypatch.setenv("AIGC_CACHE_DIR", str(session.root / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(session.root / "torch"))  # no InceptionV3 weights
    accept_tiny_cifar10(monkeypatch, session.cifar10)
    # Tiny models run fastest on one thread, and more only contend for a shared machine's cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield session
    torch.set_num_threads(threads)


# Running the entry points.


def console_script(name: str) -> EntryPoint:
    """The ``aigc-<name>`` console script, which ``python <name>.py`` also runs."""
    found = entry_points(group="console_scripts", name=f"aigc-{name}")
    assert found, f"no entry point aigc-{name} (python {name}.py): is the package installed?"
    (entry,) = found
    script = ROOT / f"{name}.py"
    assert f"from {entry.module} import {entry.attr}" in script.read_text(), script
    return entry


def composed(name: str, overrides: list[str]) -> DictConfig:
    """``<name>.yaml`` composed as the command line composes it, Hydra's own settings included."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(name, overrides, return_hydra_config=True)


def run_dir_of(cfg: DictConfig, job: int | None) -> Path:
    """Where Hydra puts the run (or job of a multirun), relative to the folder it runs in."""
    hydra = cfg.hydra
    return Path(hydra.run.dir if job is None else f"{hydra.sweep.dir}/{job}").resolve()


def without_hydra(cfg: DictConfig, output_dir: Path | None = None) -> DictConfig:
    """The job's config as the entry point gets it: Hydra's own settings gone, its output
    directory (which Hydra resolves at run time) filled in."""
    with open_dict(cfg):
        del cfg["hydra"]
        if output_dir is not None:
            cfg.paths.output_dir = str(output_dir)
    return cfg


def tiny_training(cfg: DictConfig, overrides: list[str]) -> list[str]:
    """What makes this training job take a moment: small model and batches, one step, no
    logger unless the command chooses one."""
    family = cfg.model._target_.rsplit(".", 1)[-1]
    assert family in TINY_MODELS, f"no tiny sizes for {family}: add them to TINY_MODELS"
    tiny = [*TINY_MODELS[family], "data.batch_size=8", "trainer.max_steps=1"]
    if "val_batches" in cfg.data:
        tiny.append("data.val_batches=2")
    # Validate at every step inside training, as a longer run would at its epochs' ends: the best
    # checkpoint and early stopping follow validations.
    tiny += ["trainer.val_check_interval=1", "trainer.check_val_every_n_epoch=null"]
    if not any(o.startswith("logger=") for o in overrides):
        tiny.append("logger=none")
    return tiny


def needs_cuda(cfg: DictConfig) -> bool:
    trainer = cfg.trainer
    return trainer.accelerator in ("gpu", "cuda") or str(trainer.precision).startswith("16")


def build_parts(cfg: DictConfig) -> None:
    """What a run builds before it trains, short of the Trainer: data, model, strategy,
    callbacks, loggers."""
    datamodule = instantiate(cfg.data)
    model = instantiate_model(cfg.model, datamodule)
    strategy = cfg.trainer.strategy
    strategy_for(instantiate(strategy) if OmegaConf.is_dict(strategy) else strategy, model)
    instantiate_list(cfg.get("callbacks"))
    instantiate_list(cfg.get("logger"))


def call(entry: Callable[[DictConfig], object], cfg: DictConfig) -> object:
    """Runs an entry point on ``cfg``; its exit with an ``error:`` line fails the test."""
    try:
        return entry(cfg)
    except SystemExit as exit:
        if exit.code:
            pytest.fail(str(exit.code))  # the error line
        return None


def train_job(overrides: list[str], job: int | None = None) -> Path:
    """``python train.py <overrides>`` (job ``job`` of a multirun), tiny, in-process; returns its
    run directory. Resuming (``ckpt_path=last`` or ``best``) first trains the run it resumes, one
    step."""
    entry = console_script("train").load()
    cfg = composed("train", overrides)
    for key in OmegaConf.select(cfg, "hydra.sweeper.params", default=None) or {}:
        assert OmegaConf.select(cfg, key) is not None, f"the search's {key} is not a config key"
    tiny = tiny_training(cfg, overrides)
    run_dir, steps = run_dir_of(cfg, job), 1
    if cfg.ckpt_path in ("last", "best") and not (run_dir / "checkpoints").is_dir():
        kept = [o for o in overrides if not o.startswith("ckpt_path=")]
        call(entry, without_hydra(composed("train", [*kept, *tiny]), run_dir))
        steps = 2
    tiny.append(f"trainer.max_steps={steps}")
    call(entry, without_hydra(composed("train", [*overrides, *tiny]), run_dir))
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == steps
    return run_dir


def sweep_jobs(overrides: list[str]) -> list[list[str]]:
    """The overrides of each job of ``python train.py -m <overrides>``, as Hydra's basic sweeper
    splits them (comma-separated values: one job per combination)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    (batch,) = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    return batch


def run_train(args: list[str], launcher: str | None = None) -> None:
    multirun = bool({"-m", "--multirun"} & set(args))
    overrides = [arg for arg in args if arg not in ("-m", "--multirun")]
    jobs = sweep_jobs(overrides) if multirun else [overrides]
    configs = [composed("train", job) for job in jobs]  # every job of a sweep composes
    cfg = configs[0]
    if multirun and not cfg.hydra.launcher._target_.endswith(".BasicLauncher"):
        launcher = cfg.hydra.launcher._target_.rsplit(".", 1)[-1]  # submits the jobs elsewhere
    if launcher or needs_cuda(cfg) or cfg.trainer.num_nodes > 1:
        build_parts(without_hydra(cfg, Path("run").resolve()))
        if launcher:
            pytest.skip(f"launched by {launcher}; composed and built, not trained")
        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA GPU; composed and built, not trained")
    if cfg.trainer.strategy != "auto":
        # Lightning starts the other processes by running the command line again: not pytest's.
        result = run_train_cli(*args, *tiny_training(cfg, overrides), cwd=Path.cwd())
        assert result.returncode == 0, result.stderr[-3000:]
        assert list(Path("logs").rglob("last.ckpt")), "the run saved no checkpoint"
        return
    # A sweep: each job composed above; the first trained (tests/test_sweeps.py runs sweeps).
    train_job(jobs[0], job=0 if multirun else None)


def show(entry: Callable[[], None], args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry point's command line with one of Hydra's flags that print and run nothing."""
    monkeypatch.setattr(sys, "argv", ["aigc", *args])
    # Hydra keeps what it composed in singletons, which the process's end would clear.
    monkeypatch.setattr(HydraConfig.instance(), "cfg", HydraConfig.instance().cfg)
    shown = io.StringIO()
    try:
        with contextlib.redirect_stdout(shown):
            entry()
    except SystemExit as exit:
        assert not exit.code, f"exited with status {exit.code}"
    finally:
        GlobalHydra.instance().clear()
    assert shown.getvalue().strip(), "printed nothing"


def run_entry(
    name: str, args: list[str], monkeypatch: pytest.MonkeyPatch, launcher: str | None = None
) -> None:
    """``python <name>.py <args>`` or ``aigc-<name> <args>``."""
    entry = console_script(name)
    if args and args[0] in HYDRA_FLAGS:
        return show(entry.load(), args, monkeypatch)
    if name == "train":
        return run_train(args, launcher)
    tiny = TINY_EVAL if name == "eval" else []
    call(entry.load(), without_hydra(composed(name, [*args, *tiny])))


def run_script(path: str, args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``python scripts/<name>.py <args>`` in-process, with its quick settings appended."""
    script = ROOT / path
    assert script.is_file(), f"the docs run {path}, which does not exist"
    assert script.name in TINY_SCRIPTS, f"add {script.name}'s quick settings to TINY_SCRIPTS"
    if "cuda" in args and not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    tiny = TINY_SCRIPTS[script.name]
    if tiny[0] == "--" and "--" in args:
        tiny = tiny[1:]
    monkeypatch.syspath_prepend(str(script.parent))  # scripts import their shared module
    monkeypatch.setattr(sys, "argv", [str(script), *args, *tiny])
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exit:
        assert not exit.code, f"{path} exited with status {exit.code}"


def run_command(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    program, args = argv[0], argv[1:]
    if program in PYTHON and args and args[0].startswith("scripts/"):
        return run_script(args[0], args[1:], monkeypatch)
    if program in PYTHON and args and args[0].endswith(".py"):
        return run_entry(args[0].removesuffix(".py"), args[1:], monkeypatch)
    if program.startswith("aigc-"):
        return run_entry(program.removeprefix("aigc-"), args, monkeypatch)
    if program == "torchrun":
        script = next(i for i, arg in enumerate(args) if arg.endswith(".py"))
        name, rest = args[script].removesuffix(".py"), args[script + 1 :]
        return run_entry(name, rest, monkeypatch, launcher=program)
    pytest.fail(f"no runner for `{shlex.join(argv)}`: run it in this file, or add it to ALLOWED")


@pytest.mark.parametrize("command", COMMANDS, ids=[c.slug for c in COMMANDS])
def test_readme_command(
    command: Command, user: Session, monkeypatch: pytest.MonkeyPatch, request
) -> None:
    for pattern, module in EXTRAS.items():
        if re.search(pattern, command.text):
            pytest.importorskip(module, reason=f"an optional extra, for `{command.text}`")
    if "wandb" in command.text:
        request.getfixturevalue("offline_wandb")
    reason = allowed_reason(command.text)
    given_to_image = re.match(r"docker run .* python ", command.text)
    if reason and not given_to_image:
        pytest.skip(reason)
    argv = shlex.split(user.substitute(command.text))
    if given_to_image:
        argv = argv[argv.index("python") :]
    while re.fullmatch(r"[A-Z_]+=.*", argv[0]):  # VAR=value before the command
        name, value = argv.pop(0).split("=", 1)
        monkeypatch.setenv(name, value)
    run_command(argv, monkeypatch)


def test_every_allowed_pattern_is_used() -> None:
    for pattern in ALLOWED:
        used = any(re.match(pattern, c.text) for c in COMMANDS)
        assert used, f"no command in the docs is {pattern}"


def test_commands_are_read_whole() -> None:
    commands = readme_commands(
        "## A\n```bash\npython train.py a=1 \\\n    b='x # y'   # why\n# only a comment\n"
        "make x && make y\n```\n```python\nprint(1)\n```\n"
    )
    assert [(c.text, c.comment, c.section, c.line) for c in commands] == [
        ("python train.py a=1 b='x # y'", "why", "A", 3),
        ("make x", "", "A", 6),
        ("make y", "", "A", 6),
    ]


def test_a_command_that_several_pages_give_runs_once(tmp_path: Path) -> None:
    first, second = tmp_path / "a.md", tmp_path / "b.md"
    first.write_text("```bash\npython train.py\n```\n")
    second.write_text("## B\n```bash\npython train.py   # again\npython eval.py\n```\n")
    commands = docs_commands([first, second], root=tmp_path)
    assert [(c.text, c.page) for c in commands] == [
        ("python train.py", "a.md"),
        ("python eval.py", "b.md"),
    ]


def test_every_page_is_read() -> None:
    pages = {c.page for c in COMMANDS}
    assert {"README.md", "docs/models/gan.md", "docs/results.md"} <= pages


def test_make_train_trains_a_headline_command() -> None:
    """From a fresh clone, `make train` trains what the README's first commands list, and the
    comment of `make train` says what that is; `make test` runs this suite, which CI runs."""
    if shutil.which("make") is None:
        pytest.skip("needs make")

    def recipe(target: str) -> str:  # what `make <target>` runs on a fresh clone, the default ARGS
        dry_run = ["make", "--dry-run", "--always-make", "--no-print-directory", target]
        # Under `make test` (CI) make's own variables are inherited; a nested make would
        # otherwise act as a sub-make of that one.
        inherited = {"ARGS", "MAKEFLAGS", "MAKELEVEL", "MFLAGS"}
        env = {name: value for name, value in os.environ.items() if name not in inherited}
        done = subprocess.run(
            dry_run, cwd=ROOT, env=env, capture_output=True, text=True, check=True
        )
        return done.stdout

    train = recipe("train").splitlines()[-1].split("/bin/")[-1]  # .venv/bin/python train.py ...
    headline = {c.text: c for c in README_COMMANDS if not c.section}
    assert train in headline, f"`make train` runs `{train}`, not a command above the first section"
    (make_train,) = [c for c in README_COMMANDS if c.text == "make train"]
    assert headline[train].comment in make_train.comment  # e.g. "DCGAN on MNIST"
    cfg = composed("train", shlex.split(train)[2:])
    assert f"{cfg.trainer.max_epochs} epochs" in make_train.comment
    assert recipe("test").splitlines()[-1].endswith("python -m pytest")
    assert "make test" in (ROOT / ".ci" / "run").read_text()
