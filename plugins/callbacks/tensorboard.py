"""TensorBoard logging: losses, learning rates, throughput, sample grids and the recipe.

Everything goes to ``RUN/tensorboard/`` so ``tensorboard --logdir runs/`` shows every run side
by side. Scalars are written from ``on_log`` (already host floats: no extra device sync), images
from ``on_samples``. A resumed run continues the same curves: events a crashed run wrote after
its last checkpoint are purged. Needs the optional ``tensorboard`` package
(``pip install 'ganforge[tensorboard]'``); without it the callback warns once and does nothing.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import torch

from ganforge import Range
from ganforge import recipe as recipe_mod
from ganforge.safety import plain_file_name


class TensorBoard:
    """Write losses, lr, throughput, sample grids and the resolved recipe to RUN/tensorboard."""

    def __init__(
        self, subdir: str = "tensorboard", images: bool = True, flush_secs: Annotated[int, Range(1)] = 30
    ) -> None:
        # the event files stay inside the run folder
        self.subdir, self.images, self.flush_secs = plain_file_name(subdir, "tensorboard"), images, flush_secs
        self.writer: Any = None
        self._log_dir: str | None = None

    def on_train_start(self, trainer: Any) -> None:
        if not trainer.is_main:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            print(
                "warning: [callbacks.tensorboard] needs tensorboard: pip install 'ganforge[tensorboard]' "
                "(or --set callbacks.tensorboard.enabled=false); not logging to TensorBoard",
                file=sys.stderr,
                flush=True,
            )
            return
        self._log_dir = str(trainer.run_dir / self.subdir)
        # A checkpoint at step N holds steps 1..N: the events a crashed run logged after it
        # (step > N) are hidden, the ones up to N stay, so the curves continue without repeats.
        purge = trainer.step + 1 if trainer.step > 0 else None
        self.writer = SummaryWriter(self._log_dir, purge_step=purge, flush_secs=self.flush_secs)
        toml = recipe_mod.dumps(trainer.recipe)
        self.writer.add_text("recipe", "```toml\n" + toml + "```", trainer.step)
        if trainer.step == 0:
            self._write_hparams(trainer.recipe)

    def on_log(self, trainer: Any, step: int, scalars: dict[str, float]) -> None:
        if not trainer.is_main:
            return
        values = tagged_scalars(trainer, scalars)
        self._write(lambda w: [w.add_scalar(tag, v, step) for tag, v in values.items()])

    def on_samples(self, trainer: Any, step: int, grid: torch.Tensor) -> None:
        if trainer.is_main and self.images:
            self._write(lambda w: w.add_image("samples", grid.clamp(0, 1), step))

    def on_train_end(self, trainer: Any) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
            self.writer = None

    def _write(self, write: Any) -> None:
        if self.writer is not None:
            write(self.writer)
        elif self._log_dir is not None:
            # After on_train_end: a callback listed later (samples, eval) still reports at the end.
            from torch.utils.tensorboard import SummaryWriter

            with SummaryWriter(self._log_dir) as late:
                write(late)

    def _write_hparams(self, recipe: dict[str, Any]) -> None:
        """The recipe's scalar values (``optim.g.lr``, ...) for TensorBoard's HParams tab."""
        from torch.utils.tensorboard.summary import hparams

        flat = {k: v for k, v in _flatten(recipe).items() if k.split(".")[0] != "callbacks"}
        # Only the session's values: with no experiment summary in any run, the HParams tab
        # builds its table from every run's values and scalar tags (runs/ side by side).
        _, session_start, _ = hparams(flat, {})
        self.writer.file_writer.add_summary(session_start)


def tagged_scalars(trainer: Any, scalars: dict[str, float]) -> dict[str, float]:
    """One log step's values by tag: ``loss/G_AB``, ``eval/a2b/...``, ``lr/g``, ``throughput/...``."""
    values = {(k if "/" in k else f"loss/{k}"): float(v) for k, v in scalars.items()}
    if not any(k.startswith("eval/") for k in scalars):  # the eval callback's own on_log: no lr again
        values.update({f"lr/{name}": float(lr) for name, lr in trainer.engine.learning_rates().items()})
        values.update({f"throughput/{k}": float(v) for k, v in trainer.throughput.items()})
    return values


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        elif isinstance(value, bool | int | float | str):
            out[name] = value
        elif isinstance(value, list | tuple):
            out[name] = str(list(value))
    return out
