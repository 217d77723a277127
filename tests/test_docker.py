"""The Dockerfile, checked without Docker (which the test machine may lack): it copies what the
entry points need, the build context leaves out what it must not carry, and it runs as a user."""

import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        tuple(line.split(maxsplit=1))
        for line in lines
        if line and not line.startswith("#") and " " in line
    ]


def copied() -> set[str]:
    sources = set()
    for keyword, args in instructions():
        if keyword == "COPY":
            *paths, _ = args.split()
            sources.update(paths)
    return sources


def ignored(path: str) -> bool:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = Path(path).parts
    return any(
        fnmatch.fnmatch(path, p) or fnmatch.fnmatch(parts[0], p) or fnmatch.fnmatch(path, f"**/{p}")
        for p in patterns
    )


def entry_points() -> list[str]:
    """The scripts at the top of the checkout that run the package's entry points."""
    return sorted(path.name for path in ROOT.glob("*.py") if "from aigc." in path.read_text())


def test_the_image_holds_what_the_entry_points_and_install_need() -> None:
    sources = copied()
    assert {"train.py", "generate.py", "eval.py", "export.py"} <= set(entry_points())
    needed = {"pyproject.toml", "README.md", "configs", "src", "scripts", *entry_points()}
    assert needed <= sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not ignored(source), f"{source} is copied but .dockerignore leaves it out"
    # The entry points import only the package, which src holds.
    for entry in entry_points():
        imports = re.findall(r"^from (\S+) import|^import (\S+)", (ROOT / entry).read_text(), re.M)
        assert all((a or b).split(".")[0] == "aigc" for a, b in imports), entry


def test_the_build_context_leaves_out_environments_data_and_runs() -> None:
    for path in (".venv", ".git", "data", "logs", ".cache", "src/aigc/__pycache__"):
        assert ignored(path), path


def test_it_runs_as_a_user_and_its_default_command_is_short() -> None:
    keywords = dict(instructions())
    assert keywords.get("USER") not in (None, "root", "0")
    command = keywords["CMD"]
    assert "train.py" in command and "trainer.max_epochs=1" in command
