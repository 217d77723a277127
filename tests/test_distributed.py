"""Multi-process training through Lightning's strategies: DDP on CPU processes, FSDP's config."""

import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import TINY_GAN, TINY_LM, model_sampling, run_train_cli
from hydra.utils import instantiate
from PIL import Image
from torch.distributed.fsdp.wrap import ModuleWrapPolicy

from aigc.models.gan import GAN
from aigc.models.language_model import LanguageModel
from aigc.nn.transformer import Block
from aigc.tokenizers import build_tokenizer
from aigc.utils.distributed import strategy_for

LM_DATA = ["sampling.max_new_tokens=8", "data.batch_size=4", "data.val_batches=2"]


def tiny_gan() -> GAN:
    return GAN(image_shape=(1, 28, 28), latent_dim=4, generator_width=4, discriminator_width=4)


def tiny_lm() -> LanguageModel:
    tokenizer = build_tokenizer("char", "hello world\n")
    sizes = dict(block_size=8, n_layer=2, n_head=2, n_embd=8)
    return LanguageModel(tokenizer.state_dict(), sampling=model_sampling("language_model"), **sizes)


def test_ddp_searches_unused_parameters_only_for_models_that_need_it() -> None:
    assert strategy_for("ddp", tiny_gan()) == "ddp_find_unused_parameters_true"
    assert strategy_for("ddp_spawn", tiny_gan()) == "ddp_spawn_find_unused_parameters_true"
    assert strategy_for("ddp_find_unused_parameters_false", tiny_gan()) == (
        "ddp_find_unused_parameters_false"
    )  # the user's explicit choice stands
    assert strategy_for("ddp", tiny_lm()) == "ddp"
    assert strategy_for("auto", tiny_gan()) == "auto"


@pytest.mark.parametrize("trainer", ["gpu", "ddp", "fsdp"])
def test_gpu_trainer_without_a_gpu_says_so(
    make_cfg, tiny_mnist: Path, monkeypatch, trainer
) -> None:
    from aigc.errors import ConfigError
    from aigc.train import build

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="has no CUDA GPU; use trainer=cpu, or trainer=ddp_cpu"):
        build(make_cfg(f"trainer={trainer}", f"paths.data_dir={tiny_mnist}"))


def test_fsdp_config_wraps_each_transformer_block(make_cfg) -> None:
    from lightning.pytorch.strategies import FSDPStrategy

    cfg = make_cfg("trainer=fsdp", "model=language_model", "data=shakespeare")
    strategy = instantiate(cfg.trainer.strategy, _convert_="all")
    assert isinstance(strategy, FSDPStrategy)
    policy = strategy.kwargs["auto_wrap_policy"]
    assert isinstance(policy, ModuleWrapPolicy)
    assert policy._module_classes == {Block}
    assert cfg.trainer.accelerator == "gpu"


def test_multirun_refuses_processes_that_rerun_the_command(tiny_mnist: Path, tmp_path) -> None:
    result = run_train_cli(
        "-m", "trainer=ddp_cpu", "model.lr=1e-3,2e-3", *TINY_GAN, cwd=tmp_path, data_dir=tiny_mnist
    )
    assert result.returncode == 1
    assert "error: multirun with a multi-process trainer" in result.stderr.splitlines()[-1]


def ddp_run(data_dir: Path, run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    result = run_train_cli(
        "trainer=ddp_cpu",
        "trainer.devices=2",
        "trainer.log_every_n_steps=1",
        f"hydra.run.dir={run_dir}",
        *overrides,
        cwd=run_dir.parent,
        data_dir=data_dir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def load_last(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


@pytest.mark.slow
def test_ddp_cpu_gan_trains_on_split_data_and_resumes(tiny_mnist: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "gan"
    common = ["data.batch_size=16", "data.val_fraction=0.25", *TINY_GAN]
    ddp_run(tiny_mnist, run_dir, "trainer.max_epochs=1", *common)
    # 96 training images split over 2 ranks: 48 each, 3 batches of 16 per epoch (6 in 1 process).
    assert load_last(run_dir)["global_step"] == 3
    ddp_run(tiny_mnist, run_dir, "trainer.max_epochs=2", "ckpt_path=last", *common)
    checkpoint = load_last(run_dir)
    assert checkpoint["global_step"] == 6
    assert [state["state"][0]["step"].item() for state in checkpoint["optimizer_states"]] == [6, 6]

    # Rank 0 wrote everything into the one run directory: one event file, one metrics file.
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 2  # 2 launches
    assert {"val/D(x)", "val/D(G(z))", "val/fid_randconv", "loss/g"} <= set(
        json.loads((run_dir / "metrics.json").read_text())
    )
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    # The fixed-latent grid has the single-process format: 64 samples, 8 x 8 tiles of 28 + 2.
    grid = Image.open(run_dir / "samples" / "step_0000006.png")
    assert grid.size == (8 * 30 + 2, 8 * 30 + 2)


@pytest.mark.slow
def test_ddp_cpu_language_model_trains_and_resumes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    words = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"]
    (data_dir / "tiny.txt").write_text(
        "\n".join(" ".join(words[(i + j) % len(words)] for j in range(6)) for i in range(300))
    )
    run_dir = tmp_path / "lm"
    common = [
        *TINY_LM,
        *LM_DATA,
        f"data.path={data_dir / 'tiny.txt'}",
        "trainer.val_check_interval=2",
        "trainer.check_val_every_n_epoch=null",
        "callbacks.samples.every_n_steps=2",
    ]
    ddp_run(data_dir, run_dir, "trainer.max_steps=4", *common)
    assert load_last(run_dir)["global_step"] == 4
    ddp_run(data_dir, run_dir, "trainer.max_steps=8", "ckpt_path=last", *common)
    assert load_last(run_dir)["global_step"] == 8
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"val/loss", "val/bpc", "train/loss"} <= set(metrics)
    assert (run_dir / "samples" / "step_0000008.txt").read_text().strip()


@pytest.mark.slow
def test_torchrun_processes_share_one_run_directory(tiny_mnist: Path, tmp_path: Path) -> None:
    # As on many machines: torchrun starts every process, each composes its own config.
    run_dir = tmp_path / "logs" / "torchrun"
    result = run_train_cli(
        "trainer=ddp_cpu",
        "trainer.devices=2",
        "trainer.max_epochs=1",
        "data.batch_size=16",
        "data.val_fraction=0.25",
        f"hydra.run.dir={run_dir}",
        *TINY_GAN,
        cwd=tmp_path,
        data_dir=tiny_mnist,
        launcher=["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert [path.name for path in (tmp_path / "logs").iterdir()] == ["torchrun"]
    assert load_last(run_dir)["global_step"] == 3  # the data split over the 2 processes


def _sample_under_fsdp(rank: int, port: int, results: dict) -> None:
    import torch.distributed as dist
    from lightning.pytorch.strategies import FSDPStrategy
    from torch.distributed.fsdp import FullyShardedDataParallel

    from aigc.callbacks import SampleLogger

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)
    model = tiny_lm()
    sampling = {"seed": 0, "num_samples": 2, "max_new_tokens": 8}
    logger = SampleLogger("unused", sampling)
    expected = model.sample_from_config(sampling).texts
    wrapped = FullyShardedDataParallel(
        model,
        auto_wrap_policy=ModuleWrapPolicy({Block}),
        device_id=torch.device("cpu"),
        use_orig_params=True,
    )
    strategy = FSDPStrategy()
    strategy.model = wrapped
    results[rank] = (logger._sample(SimpleNamespace(strategy=strategy), model).texts, expected)
    dist.destroy_process_group()


@pytest.mark.slow
def test_samples_of_a_sharded_model_match_the_whole_model() -> None:
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    results = mp.Manager().dict()
    mp.spawn(_sample_under_fsdp, args=(port, results), nprocs=2)
    for rank in (0, 1):
        sample, expected = results[rank]
        assert sample == expected
