"""What every model family's LightningModule shares."""

from typing import Any, ClassVar

import lightning as L

MODEL_CLASS_KEY = "aigc_model_class"


class AigcModule(L.LightningModule):
    """A LightningModule whose checkpoints name its class, so entry points can rebuild any of them.

    ``modality`` says which datamodules it pairs with ("image" or "text").
    ``ddp_find_unused_parameters`` says whether DDP must look for parameters that a backward pass
    leaves without gradients (it costs a walk over the autograd graph at every backward).
    """

    modality: ClassVar[str]
    ddp_find_unused_parameters: ClassVar[bool] = False

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[MODEL_CLASS_KEY] = f"{type(self).__module__}.{type(self).__qualname__}"
