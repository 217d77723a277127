"""A NaN or infinite loss stops the run with one line before a checkpoint of it is written, or,
when asked, its steps are skipped."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_LM, run_train_cli

from aigc.callbacks.divergence import TrainingDiverged
from aigc.errors import ConfigError
from aigc.train import train


@pytest.fixture
def nan_at_step(monkeypatch: pytest.MonkeyPatch):
    """Makes the classifier's training loss NaN at the given step (0-based)."""

    def install(bad_step: int) -> None:
        cross_entropy, steps = F.cross_entropy, []

        def flaky(logits: torch.Tensor, labels: torch.Tensor, **kwargs) -> torch.Tensor:
            loss = cross_entropy(logits, labels, **kwargs)
            if not torch.is_grad_enabled():  # validation
                return loss
            steps.append(len(steps))
            return loss * float("nan") if steps[-1] == bad_step else loss

        monkeypatch.setattr(F, "cross_entropy", flaky)

    return install


def classifier_run(make_cfg, data_dir: Path, *overrides: str):
    return make_cfg(
        f"paths.data_dir={data_dir}",
        "model=classifier",
        "data.batch_size=32",
        "data.val_fraction=0.25",
        "logger=none",
        *overrides,
    )


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(
    make_cfg, tiny_mnist: Path, tmp_path: Path, nan_at_step
) -> None:
    nan_at_step(4)  # in the second epoch of 3 batches
    with pytest.raises(TrainingDiverged, match=r"NaN or infinite at step 4; lower model\.lr"):
        train(classifier_run(make_cfg, tiny_mnist, "trainer.max_epochs=3"))
    checkpoints = tmp_path / "run" / "checkpoints"
    names = sorted(p.name for p in checkpoints.iterdir())
    # Nothing after the first epoch.
    assert names == ["best.ckpt", "epoch_000-step_0000003.ckpt", "last.ckpt"]
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert last["global_step"] == 3
    assert all(t.isfinite().all() for t in last["state_dict"].values())


def test_skip_leaves_out_the_steps_with_a_nan_loss(
    make_cfg, tiny_mnist: Path, tmp_path: Path, nan_at_step
) -> None:
    nan_at_step(1)
    metrics = train(
        classifier_run(
            make_cfg,
            tiny_mnist,
            "trainer.max_steps=4",
            "callbacks.divergence.on_nonfinite=skip",
            "trainer.log_every_n_steps=1",
        )
    )
    assert metrics["skipped_steps"] == 1
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert all(t.isfinite().all() for t in last["state_dict"].values())
    # Adam counts the updates it made to each parameter: one step of four was left out.
    (optimizer,) = last["optimizer_states"]
    assert {state["step"].item() for state in optimizer["state"].values()} == {3.0}


def test_a_diverging_language_model_ends_with_one_line_and_a_nonzero_exit(tmp_path: Path) -> None:
    text = tmp_path / "text.txt"
    text.write_text("to be or not to be, that is the question.\n" * 2000)  # a long epoch
    result = run_train_cli(
        *TINY_LM,
        f"data.path={text}",
        "model.lr=1e6",
        "trainer.max_steps=20",
        "logger=none",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: the loss became NaN")


def test_on_nonfinite_takes_stop_or_skip(make_cfg, tiny_mnist: Path) -> None:
    with pytest.raises(ConfigError, match="on_nonfinite must be stop or skip, not 'ignore'"):
        train(classifier_run(make_cfg, tiny_mnist, "callbacks.divergence.on_nonfinite=ignore"))
