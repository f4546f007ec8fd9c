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
        self._capturable = False
        self._factor = 1.0
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])

    def set_step(self, step: int) -> None:
        """Set each group's lr for ``step``: a float, or in place into a tensor lr (graph mode).

        While a CUDA graph is being captured this records nothing: the value is host data,
        set before every replay.
        """
        if self.factor is None:
            return
        f = self._factor = float(self.factor(step))
        for group in self.optimizer.param_groups:
            lr = group["lr"]
            if isinstance(lr, torch.Tensor):
                if not (lr.is_cuda and torch.cuda.is_current_stream_capturing()):
                    lr.fill_(group["initial_lr"] * f)
            else:
                group["lr"] = group["initial_lr"] * f

    def make_capturable(self) -> str | None:
        """Make ``step()`` safe to capture in a CUDA graph; returns why not, or None.

        Step counters move to the device (``capturable``) and, under a schedule, learning rates
        become device tensors, so the schedule changes them in place instead of baking one value
        into the graph.
        """
        opt = self.optimizer
        for group in opt.param_groups:
            if "capturable" not in group and not group.get("fused"):
                return f"{type(opt).__name__} without fused=true cannot be captured"
        self._capturable = True
        for group in opt.param_groups:
            device = group["params"][0].device
            if "capturable" in group:
                group["capturable"] = True
            if self.factor is not None and not isinstance(group["lr"], torch.Tensor):
                group["lr"] = torch.tensor(float(group["lr"]), dtype=torch.float32, device=device)
        for param, state in opt.state.items():
            step = state.get("step")
            if isinstance(step, torch.Tensor) and step.device != param.device:
                state["step"] = step.to(param.device, torch.float32)
        return None

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
        """The first group's current lr (computed on the host: a tensor lr is never read back)."""
        group = self.optimizer.param_groups[0]
        if isinstance(group["lr"], torch.Tensor):
            return group["initial_lr"] * self._factor
        return group["lr"]

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state; graph-mode settings (tensor lr, capturable) saved as plain ones."""
        state = self.optimizer.state_dict()
        for group in state["param_groups"]:  # fresh dicts: the live groups are untouched
            if isinstance(group.get("lr"), torch.Tensor):
                group["lr"] = float(group["lr"])
            if "capturable" in group:
                group["capturable"] = False
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)
        # Saved moments are contiguous; fused and foreach kernels need the parameters' strides
        # (channels_last conv weights on CUDA).
        for param, param_state in self.optimizer.state.items():
            for key, value in param_state.items():
                if (
                    isinstance(value, torch.Tensor)
                    and value.shape == param.shape
                    and value.stride() != param.stride()
                ):
                    param_state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)
        if self._capturable:
            self.make_capturable()


def make_capturable(parts: dict[str, Any]) -> str | None:
    """Call ``make_capturable()`` on each named part (pools first, then optimizers).

    Returns the first part's reason for refusing, prefixed with its name, or None when all agree.
    A part without the method refuses.
    """
    for name, part in parts.items():
        if part is None:
            continue
        method = getattr(part, "make_capturable", None)
        reason = f"{type(part).__name__} has no make_capturable()" if method is None else method()
        if reason:
            return f"{name}: {reason}"
    return None


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
