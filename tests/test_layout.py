"""The layout shows the architecture: lower layers never import upper ones, entry points never
import each other, and every model family has the same file roles."""

import ast
from pathlib import Path

import pytest

import aigc

PACKAGE = Path(aigc.__file__).parent
ENTRY_POINTS = {"aigc.train", "aigc.generate", "aigc.eval", "aigc.export"}
# What each part of the package must not import (prefixes of module names).
FORBIDDEN = {
    "aigc.utils": ["aigc.core", "aigc.nn", "aigc.models", "aigc.data", "aigc.metrics"],
    "aigc.tokenizers": ["aigc.core", "aigc.nn", "aigc.models", "aigc.data", "aigc.metrics"],
    "aigc.nn": ["aigc.core", "aigc.models", "aigc.data", "aigc.metrics"],
    "aigc.core": ["aigc.models", "aigc.data", "aigc.metrics", "aigc.callbacks"],
    "aigc.data": ["aigc.core", "aigc.models", "aigc.metrics", "aigc.callbacks"],
    "aigc.models": ["aigc.data", "aigc.metrics", "aigc.callbacks"],
    "aigc.metrics": ["aigc.models", "aigc.callbacks"],
    "aigc.callbacks": ["aigc.models", "aigc.data", "aigc.metrics"],
}


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found.append((".".join(parts).removesuffix(".__init__"), path))
    return found


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_no_import_against_the_layering(module: str, path: Path) -> None:
    forbidden = [*ENTRY_POINTS - {module}]
    for part, below in FORBIDDEN.items():
        if module == part or module.startswith(part + "."):
            forbidden += below
    wrong = sorted(
        name for name in imports(path) for f in forbidden if name == f or name.startswith(f + ".")
    )
    assert not wrong, f"{module} imports {wrong}"


def test_every_family_has_the_same_file_roles() -> None:
    families = [p for p in (PACKAGE / "models").iterdir() if (p / "__init__.py").is_file()]
    assert families
    for family in families:
        assert (family / "network.py").is_file() and (family / "module.py").is_file(), family


def test_every_model_config_names_a_family() -> None:
    configs = {p.stem for p in (PACKAGE / "configs" / "model").glob("*.yaml")}
    families = {p.name for p in (PACKAGE / "models").iterdir() if (p / "module.py").is_file()}
    assert configs == families
