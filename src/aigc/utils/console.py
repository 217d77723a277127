"""What a run prints: Lightning's notices that a user cannot act on are left out."""

import logging
import warnings

# Lightning's adverts for its cloud services start so.
_ADVERT_PREFIX = "💡 Tip:"


class _NoAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_ADVERT_PREFIX)


def quiet_library_notices() -> None:
    """Leaves out, for this process, notices about choices the framework has made on purpose."""
    # Images are tensors in memory and text is read from a memory-mapped file: worker processes
    # would only add copying.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    # Lightning 2.6 calls a torch.utils._pytree API that newer torch deprecates: Lightning's to fix.
    warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # The model summary's size estimate under bf16-mixed: it falls back to 32 bits and says so.
    warnings.filterwarnings("ignore", "Precision .* is not supported by the model summary")
    # Frozen parts, such as the text + image model's image tokenizer, stay in eval mode.
    warnings.filterwarnings("ignore", r"Found \d+ module\(s\) in eval mode at the start")
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _NoAdverts) for f in rank_zero.filters):
        rank_zero.addFilter(_NoAdverts())
