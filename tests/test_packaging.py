"""The configs (top-level configs/, linked into the package) travel inside the wheel: an installed
(not editable) aigc composes its configs."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_wheel_carries_the_configs_and_composes_them(tmp_path: Path) -> None:
    # Built from a copy: setuptools leaves build/ and egg-info folders in the source tree.
    source = tmp_path / "source"
    # The package reaches the top-level configs/ through its link, as in the checkout.
    ignore = shutil.ignore_patterns("*.egg-info")
    shutil.copytree(ROOT / "src", source / "src", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "configs", source / "configs")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*build, "-w", str(tmp_path), str(source)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("aigc-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    configs = {
        f"aigc/configs/{p.relative_to(ROOT / 'configs')}" for p in ROOT.glob("configs/**/*.yaml")
    }
    assert configs and configs <= set(names)

    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site)]
    subprocess.run([*install, str(wheel)], check=True, capture_output=True)

    def run(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, *args],
            cwd=tmp_path,  # away from the checkout
            env={"PYTHONPATH": str(site), "PATH": ""},  # the installed package comes first
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    where = run("-c", "from aigc.paths import CONFIG_DIR; print(CONFIG_DIR)")
    assert Path(where.strip()).is_relative_to(site)
    assert "conditioning: label" in run(
        "-m", "aigc.train", "--cfg", "job", "experiment=mnist_cdcgan"
    )
