"""The example family of tests/example_family, a package of its own outside aigc, keeps the
contract of every family (tests/test_contract.py), through the extension points a family of
another package uses: its config found on ``hydra.searchpath``, and its package declared in the
entry-point group ``aigc.families`` so that its checkpoints and exports load."""

import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import torch
from conftest import ROOT, compose_config, tiny_classifier, write_tiny_idx_dataset
from example_family import PixelAffine
from test_contract import keeps_the_contract, resumes_exactly, tiny_cfg

from aigc.core.checkpoints import load_model
from aigc.core.families import ENTRY_POINT_GROUP, family_class
from aigc.core.pretrained import from_pretrained, save_pretrained
from aigc.errors import CheckpointError
from aigc.eval import evaluate
from aigc.generate import generate
from aigc.train import train

SEARCHPATH = f"hydra.searchpath=[file://{ROOT / 'tests' / 'example_family' / 'configs'}]"
CONFIG = "pixel_gaussian"
# Tiny already (two numbers a pixel); an EMA, so that sampling with and without it is tested.
TINY = [SEARCHPATH, "data=mnist", "data.batch_size=16", "model.ema_decay=0.9"]


def declare(site: Path, package: str) -> Path:
    """What installing a distribution that declares ``package``'s model families writes into the
    folder ``site``: its metadata, with the entry point (``pip install`` of a project whose
    pyproject.toml has ``[project.entry-points."aigc.families"]``)."""
    info = site / f"{package}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{package} = {package}\n")
    return site


@pytest.fixture
def declared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example family's package declared, as if installed; returns the folder that holds its
    metadata."""
    site = declare(tmp_path / "site", "example_family")
    monkeypatch.syspath_prepend(str(site))
    return site


def test_the_network_fits_each_pixels_gaussian() -> None:
    torch.manual_seed(0)
    mean, std = torch.rand(1, 2, 3) - 0.5, torch.rand(1, 2, 3) + 0.1
    data = mean + std * torch.randn(4096, 1, 2, 3)
    network = PixelAffine((1, 2, 3))
    optimizer = torch.optim.Adam(network.parameters(), lr=0.05)
    for _ in range(300):
        optimizer.zero_grad()
        network.nll(data).backward()
        optimizer.step()
    # Maximum likelihood: the data's own mean and standard deviation, pixel by pixel.
    torch.testing.assert_close(network.mean.detach(), data.mean(0), atol=1e-2, rtol=0)
    torch.testing.assert_close(network.log_std.exp().detach(), data.std(0), atol=1e-2, rtol=0)


def test_the_example_family_keeps_the_contract(make_cfg, tmp_path: Path, declared: Path) -> None:
    keeps_the_contract(partial(tiny_cfg, make_cfg, tmp_path, CONFIG, TINY), tmp_path)


def test_the_example_family_resumes_exactly(make_cfg, tmp_path: Path, declared: Path) -> None:
    resumes_exactly(partial(tiny_cfg, make_cfg, tmp_path, CONFIG, TINY), tmp_path)


def test_only_declared_packages_families_load(
    make_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny_cfg(make_cfg, tmp_path, CONFIG, TINY, "trainer.max_steps=1")
    train(cfg)  # the config names the class: training needs no declaration
    run = Path(cfg.paths.output_dir)
    with monkeypatch.context() as declared:
        declared.syspath_prepend(str(declare(tmp_path / "site", "example_family")))
        export = save_pretrained(load_model(run), tmp_path / "export")
        assert type(from_pretrained(export)).__name__ == "PixelGaussian"
        # Nothing else is imported, not even a package whose name begins with the declared one's.
        lookalike = tmp_path / "elsewhere" / "example_family_copy"
        lookalike.mkdir(parents=True)
        (lookalike / "__init__.py").write_text("raise RuntimeError('imported')\n")
        declared.syspath_prepend(str(lookalike.parent))
        for key in ("example_family_copy.PixelGaussian", "os.system"):
            with pytest.raises(CheckpointError, match="not an aigc model family"):
                family_class(key, "a checkpoint")
    # Undeclared, the same checkpoint and export are refused, in one line.
    for saved in (run, export):
        with pytest.raises(CheckpointError, match="not an aigc model family") as refused:
            load_model(saved)
        assert "\n" not in str(refused.value)


def test_generate_and_eval_take_it(
    make_cfg, tmp_path: Path, declared: Path, monkeypatch: pytest.MonkeyPatch, no_network: None
) -> None:
    cfg = tiny_cfg(make_cfg, tmp_path, CONFIG, TINY, "trainer.max_steps=2")
    train(cfg)
    run, data_dir = cfg.paths.output_dir, cfg.paths.data_dir
    samples, path = generate(
        compose_config("generate", f"ckpt_path={run}", f"output={tmp_path / 'samples'}")
    )
    assert samples.images.shape == (64, 1, 28, 28) and path.is_file()

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # without InceptionV3 weights
    classifier = tiny_classifier(make_cfg, Path(data_dir), tmp_path / "classifier")
    scores = evaluate(
        compose_config(
            "eval",
            f"ckpt_path={run}",
            "data=mnist",
            f"paths.data_dir={data_dir}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            f"image.feature_ckpt={classifier}",
            "sampling.num_samples=32",
            "image.batch_size=32",
        )
    )
    assert scores["fid"] > 0 and scores["samples"] == 32


@pytest.mark.slow
def test_its_command_lines_run(tmp_path: Path, declared: Path) -> None:
    """``python train.py`` with the config on ``hydra.searchpath``, then ``python generate.py``
    of its run, in a process where the family's package is installed."""
    data_dir, run = tmp_path / "data", tmp_path / "run"
    write_tiny_idx_dataset(data_dir)
    env = {
        **os.environ,
        "AIGC_DATA_DIR": str(data_dir),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "tests"), str(declared), os.environ.get("PYTHONPATH", "")]
        ),
    }
    commands = [
        [
            "train.py",
            SEARCHPATH,
            f"model={CONFIG}",
            "trainer.max_steps=2",
            "logger=none",
            f"hydra.run.dir={run}",
        ],
        ["generate.py", f"ckpt_path={run}", f"output={tmp_path / 'samples'}"],
    ]
    for script, *args in commands:
        done = subprocess.run(
            [sys.executable, str(ROOT / script), *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    assert list(tmp_path.glob("samples.*"))
