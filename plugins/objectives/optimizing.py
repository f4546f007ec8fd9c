"""What every objective does with an optimizer: schedule its lr, scale, step, and save it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn


class ScheduledOptimizer:
    """An optimizer with a learning-rate factor schedule and an optional shared GradScaler.

    ``factor(step)`` multiplies each parameter group's base lr; setting a float lr per step
    needs no host sync.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        factor: Callable[[int], float] | None,
        scaler: torch.amp.GradScaler | None,
    ) -> None:
        self.optimizer = optimizer
        self.factor = factor
        self.scaler = scaler
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])

    def set_step(self, step: int) -> None:
        if self.factor is None:
            return
        f = float(self.factor(step))
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * f

    def minimize(self, loss: torch.Tensor) -> None:
        """zero_grad(set_to_none), backward (scaled under fp16), step."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
        else:
            loss.backward()
            self.optimizer.step()

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)


def parameters(*modules: nn.Module) -> Iterable[nn.Parameter]:
    """All parameters of several modules, in order (one optimizer for both Gs, as official)."""
    return [p for m in modules for p in m.parameters()]


def set_requires_grad(modules: Iterable[nn.Module], flag: bool) -> None:
    """Freeze or unfreeze networks (the Ds during the G step)."""
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(flag)


def outputs_probabilities(module: nn.Module) -> bool:
    return bool(getattr(module, "outputs_probabilities", False))
