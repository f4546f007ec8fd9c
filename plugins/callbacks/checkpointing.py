"""Periodic checkpoints (the trainer also writes one at the end and on Ctrl-C / SIGTERM)."""

from __future__ import annotations

from typing import Annotated, Any

from ganforge import Range


class Checkpointing:
    """Save a checkpoint every ``every`` steps (and at epoch ends if asked), keeping the last ``keep``.

    ``every = 0`` writes none periodically (the trainer still writes one at the end and on a
    signal); ``keep = 0`` keeps every checkpoint.
    """

    def __init__(
        self,
        every: Annotated[int, Range(0)] = 1000,
        keep: Annotated[int, Range(0)] = 3,
        on_epoch: bool = False,
    ) -> None:
        self.every, self.keep, self.on_epoch = every, keep, on_epoch

    def on_train_start(self, trainer: Any) -> None:
        trainer.checkpoints.keep = self.keep

    def on_step_end(self, trainer: Any, step: int, losses: dict) -> None:
        if self.every > 0 and step % self.every == 0 and step < trainer.total_steps:
            trainer.save_checkpoint()

    def on_epoch_end(self, trainer: Any, epoch: int) -> None:
        periodic = self.every > 0 and trainer.step % self.every == 0  # already written this step
        if self.on_epoch and not periodic and trainer.step < trainer.total_steps:
            trainer.save_checkpoint()
