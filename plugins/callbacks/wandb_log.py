"""Weights & Biases logging: the same scalars and sample grids as ``tensorboard``, to a W&B run.

Off unless a recipe lists ``[callbacks.wandb]``: an online run needs an account
(``wandb login``); ``mode = "offline"`` (or ``WANDB_MODE=offline``) writes ``RUN/wandb/`` for a
later ``wandb sync``. The W&B run id is saved in checkpoints, so ``--resume`` continues the same
W&B run. Needs ``pip install 'ganforge[wandb]'``; without it the callback warns once and does nothing.
"""

from __future__ import annotations

import sys
from typing import Any, Literal

import torch

from ganforge_plugins.callbacks.tensorboard import tagged_scalars


class WandB:
    """Log losses, lr, throughput, sample grids and the recipe (as config) to Weights & Biases."""

    def __init__(
        self,
        project: str = "ganforge",
        entity: str = "",
        mode: Literal["", "online", "offline", "disabled"] = "",
        images: bool = True,
    ) -> None:
        self.project, self.entity, self.mode, self.images = project, entity, mode, images
        self.run: Any = None
        self.run_id: str | None = None
        self._wandb: Any = None

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id} if self.run_id else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run_id = state.get("run_id") or None

    def on_train_start(self, trainer: Any) -> None:
        if not trainer.is_main:
            return
        try:
            import wandb
        except ImportError:
            print(
                "warning: [callbacks.wandb] needs wandb: pip install 'ganforge[wandb]'; not logging to W&B",
                file=sys.stderr,
                flush=True,
            )
            return
        self._wandb = wandb
        self.run = wandb.init(
            project=self.project,
            entity=self.entity or None,
            mode=self.mode or None,  # None: WANDB_MODE or the login decides
            dir=str(trainer.run_dir),  # RUN/wandb/
            name=trainer.run_dir.name,
            id=self.run_id,
            resume="allow",  # a resumed ganforge run continues its W&B run
            settings=wandb.Settings(console="off"),  # the metrics are logged, not the terminal
        )
        self.run_id = self.run.id
        # A resume may raise train.max_steps: the config follows the recipe, changed values too.
        self.run.config.update(trainer.recipe, allow_val_change=True)

    def on_log(self, trainer: Any, step: int, scalars: dict[str, float]) -> None:
        if self.run is None:
            return
        self.run.log(tagged_scalars(trainer, scalars), step=step)

    def on_samples(self, trainer: Any, step: int, grid: torch.Tensor) -> None:
        if self.run is not None and self.images:
            array = grid.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            self.run.log({"samples": self._wandb.Image(array, caption=f"step {step}")}, step=step)

    def on_train_end(self, trainer: Any) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None
