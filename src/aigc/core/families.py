"""The model family a saved model names: checkpoints and exported folders both name their class."""

import importlib
from pathlib import Path

from aigc.core.module import AigcModule
from aigc.errors import CheckpointError

# Saved models name their class; only classes from here are imported and rebuilt.
_FAMILIES_PACKAGE = "aigc.models."
# Families renamed in this release: what their earlier checkpoints and exports name.
_RENAMED = {
    "aigc.models.transformer.module.LanguageModel": (
        "aigc.models.language_model.module.LanguageModel"
    ),
    "aigc.models.vqvae.module.VQVAE": "aigc.models.image_tokenizer.module.ImageTokenizer",
}


def family_class(key: str, source: str | Path) -> type[AigcModule]:
    """The class ``key`` (``module.QualifiedName``, as ``AigcModule.class_key`` writes it) names;
    anything but a class of aigc's model families is refused before it is imported. ``source``
    is the file or folder that named it, for the error message."""
    module_name, _, class_name = _RENAMED.get(str(key), str(key)).rpartition(".")
    if not module_name.startswith(_FAMILIES_PACKAGE):
        raise CheckpointError(f"{source} names {key!r}, which is not an aigc model family")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise CheckpointError(f"{source} names {key!r}, which this aigc does not have") from err
    if not (isinstance(cls, type) and issubclass(cls, AigcModule)):
        raise CheckpointError(f"{source} names {key!r}, which is not an aigc model family")
    return cls
