"""When to call ``self.log`` in a training step."""

import lightning as L


def logs_this_step(trainer: L.Trainer) -> bool:
    """True on the steps whose values the loggers write (every ``trainer.log_every_n_steps``).

    Loggers only keep the value of every n-th step anyway, and each ``self.log`` call costs about
    a millisecond of Lightning bookkeeping, which is several percent of a small model's step.
    """
    return (trainer.global_step + 1) % max(
        1, trainer.log_every_n_steps
    ) == 0 or trainer.fast_dev_run
