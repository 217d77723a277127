"""`python <entry point>.py --help` lists that entry point's groups and keys, each with the comment
above it in the configs; `make help` lists the Makefile's targets."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from hydra import compose, initialize_config_dir

from aigc.paths import CONFIG_DIR
from aigc.utils.help import comments, register_resolver

# What each entry point's help must list (GROUP=OPTION or KEY=VALUE), and what it must not.
LISTS = {
    "train": (
        "data=mnist model=gan trainer=default callbacks=default logger=tensorboard experiment=null "
        "debug=null seed=42 ckpt_path=null sampling.num_samples=null paths.data_dir=",
        "accelerator= label= output=",
    ),
    "generate": (
        "ckpt_path=??? label=null prompt=null image=null output=samples accelerator=auto "
        "precision=32 sampling.num_samples=null sampling.ema=null",
        "trainer= data= paths.",
    ),
    "eval": (
        "data=null ckpt_path=??? accelerator=auto precision=32 output=null "
        "image.feature_ckpt=null sampling.num_samples=10000 paths.data_dir=",
        "trainer= label= model=",
    ),
    "export": (
        "ckpt_path=??? output=??? format=aigc sampling.ema=null",
        "sampling.num_samples= accelerator= out=",
    ),
}


def help_of(entry_point: str, *overrides: str) -> str:
    """The text ``python <entry point>.py <overrides> --help`` prints: Hydra's help template, as
    that entry point's config sets it."""
    register_resolver()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(entry_point, list(overrides), return_hydra_config=True)
    return cfg.hydra.help.template


def rows(text: str) -> dict[str, str]:
    """Each listed ``name=value`` of a help text, with its description (wrapped lines joined)."""
    found: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if re.match(r"  \S+=", line):
            last, _, description = line.strip().partition("  ")
            found[last] = description.strip()
        elif line.startswith("   ") and last:
            found[last] = f"{found[last]} {line.strip()}".strip()
        else:
            last = ""
    return found


@pytest.mark.parametrize("entry_point", LISTS)
def test_help_lists_the_groups_and_keys_of_its_entry_point(entry_point: str) -> None:
    listed = rows(help_of(entry_point))
    wanted, unwanted = LISTS[entry_point]
    for name in wanted.split():
        assert any(row.startswith(name) for row in listed), (entry_point, name)
    for name in unwanted.split():
        assert not any(row.startswith(name) for row in listed), (entry_point, name)
    undescribed = [row for row, description in listed.items() if not description]
    assert not undescribed, f"{entry_point}: no comment above {undescribed} in the configs"


def test_help_describes_each_key_with_its_comment_and_each_group_with_its_options() -> None:
    listed = rows(help_of("eval"))
    # eval.yaml's own comment on a sampling key comes before the sampling group's.
    assert listed["sampling.num_samples=10000"].startswith("Generated images to score")
    assert listed["precision=32"].startswith("32 | bf16-mixed | 16-mixed")
    options = sorted(path.stem for path in (CONFIG_DIR / "data").glob("*.yaml"))
    assert listed["data=null"].endswith(f"({', '.join(options)})")


def test_help_shows_the_options_chosen_on_the_command_line() -> None:
    listed = rows(help_of("train", "model=diffusion", "seed=7"))
    assert "model=diffusion" in listed and "seed=7" in listed


def test_comments_are_read_per_key_nested_and_per_group(tmp_path: Path) -> None:
    config = tmp_path / "entry.yaml"
    config.write_text(
        "# The header.\ndefaults:\n  # The data.\n  - data: mnist\n  - _self_\n\n"
        "# A comment with a blank line after it belongs to no key.\n\n"
        "seed: 0\nimage:\n  # Images at a time;\n  # null: all.\n  batch_size: 5\n"
        "# The output.\noutput: null\n"
    )
    assert comments(config) == {
        "defaults": "The header.",
        "data": "The data.",
        "image.batch_size": "Images at a time; null: all.",
        "output": "The output.",
    }


def test_train_help_on_the_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "train.py", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "python train.py [GROUP=OPTION ...] [KEY=VALUE ...]" in result.stdout
    assert "model=gan" in rows(result.stdout)


def test_make_help_lists_every_target() -> None:
    result = subprocess.run(["make", "help"], cwd=ROOT, capture_output=True, text=True, check=True)
    phony = re.search(r"^\.PHONY: (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)[1]
    for target in phony.split():
        assert re.search(rf"^  make {target} +\S", result.stdout, re.MULTILINE), target
