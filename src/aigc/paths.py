"""Where the configs are, and the names of the files that runs write and entry points read."""

from pathlib import Path

# The checkout's configs/, linked into the package: a wheel carries them inside the package, so
# an installed wheel finds its configs as an editable checkout does.
CONFIG_DIR = Path(__file__).resolve().parent / "configs"

# In a run directory: the final value of every logged metric (train.py writes it, the multirun
# summary reads it; eval.py writes its own next to the checkpoint it scored).
METRICS_FILE = "metrics.json"
# In a run's checkpoint folder: the newest checkpoint, what `ckpt_path=last` resumes from, and the
# one with the best value of the model family's monitored metric so far, `ckpt_path=best`.
LAST_CHECKPOINT = "last.ckpt"
BEST_CHECKPOINT = "best.ckpt"
