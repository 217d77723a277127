"""The model family a saved model names: checkpoints and exported folders both name their class.

A saved model is rebuilt by importing the class it names and calling it with its saved settings,
so only classes of known packages are imported: aigc's own families, and those of the packages
that installed distributions declare in the entry-point group ``aigc.families``::

    [project.entry-points."aigc.families"]
    my_project = "my_project.models"
"""

import importlib
from importlib.metadata import entry_points
from pathlib import Path

from aigc.core.module import AigcModule
from aigc.errors import CheckpointError

FAMILIES_PACKAGE = "aigc.models"
# Where installed packages declare the packages that hold their model families.
ENTRY_POINT_GROUP = "aigc.families"
# Families renamed in this release: what their earlier checkpoints and exports name.
_RENAMED = {
    "aigc.models.transformer.module.LanguageModel": (
        "aigc.models.language_model.module.LanguageModel"
    ),
    "aigc.models.vqvae.module.VQVAE": "aigc.models.image_tokenizer.module.ImageTokenizer",
}


def family_packages() -> list[str]:
    """The packages whose classes saved models may name: aigc's families, and those declared in
    the entry-point group ``aigc.families``."""
    return [FAMILIES_PACKAGE, *(entry.value for entry in entry_points(group=ENTRY_POINT_GROUP))]


def family_class(key: str, source: str | Path) -> type[AigcModule]:
    """The class ``key`` (``module.QualifiedName``, as ``AigcModule.class_key`` writes it) names;
    anything but a class of a family package is refused before it is imported. ``source`` is the
    file or folder that named it, for the error message."""
    module_name, _, class_name = _RENAMED.get(str(key), str(key)).rpartition(".")
    if not any(
        module_name == package or module_name.startswith(f"{package}.")
        for package in family_packages()
    ):
        raise CheckpointError(
            f"{source} names {key!r}, which is not an aigc model family (nor one of a package "
            f"declared in the entry-point group {ENTRY_POINT_GROUP})"
        )
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise CheckpointError(f"{source} names {key!r}, which this aigc does not have") from err
    if not (isinstance(cls, type) and issubclass(cls, AigcModule)):
        raise CheckpointError(f"{source} names {key!r}, which is not an aigc model family")
    return cls
