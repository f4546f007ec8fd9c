"""Helpers every objective uses (all exported from ``ganforge``): scheduled optimizers,
``minimize``, freezing networks, reaching the plain network inside compile and DDP wrappers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from ganforge import protocols
from ganforge.runtime import local, unwrap

__all__ = [
    "ScheduledOptimizer",
    "frozen",
    "local",
    "make_capturable",
    "minimize",
    "outputs_probabilities",
    "set_requires_grad",
    "unwrap",
]


class ScheduledOptimizer:
    """An optimizer with a learning-rate factor schedule and an optional shared GradScaler, one per
    declared optimizer: the engine sets ``factor`` (the recipe's schedule: ``factor(step)``
    multiplies each group's base lr), ``scaler`` (fp16) and ``after_step`` (moving-average updates)."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        factor: Callable[[int], float] | None = None,
        scaler: torch.amp.GradScaler | None = None,
    ) -> None:
        self.optimizer, self.factor, self.scaler = optimizer, factor, scaler
        self.after_step: list[Callable[[], None]] = []
        self._capturable = False
        self._factor = 1.0
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])

    def set_step(self, step: int) -> None:
        """Set each group's lr for ``step``: a float, or in place into a tensor lr (graph mode);
        nothing while a CUDA graph is being captured (host data, set before every replay)."""
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
        """Make ``step()`` safe to capture in a CUDA graph; returns why not, or None. Step counters
        move to the device and, under a schedule, learning rates become device tensors that the
        schedule fills in place."""
        opt = self.optimizer
        if any("capturable" not in group and not group.get("fused") for group in opt.param_groups):
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

    def minimize(self, loss: Tensor) -> None:
        """zero_grad(set_to_none), backward (scaled under fp16), step, then ``after_step``."""
        minimize(loss, self)

    @property
    def lr(self) -> float:
        """The first group's current lr (computed on the host: a tensor lr is never read back)."""
        group = self.optimizer.param_groups[0]
        return group["initial_lr"] * self._factor if isinstance(group["lr"], torch.Tensor) else group["lr"]

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
        """Restore moments and step counts; the hyperparameters stay the recipe's (a resumed run's
        ``--set optim.g.lr=...`` takes effect, an unchanged recipe resumes exactly)."""
        recipe = [{k: v for k, v in g.items() if k in _RECIPE_KEYS} for g in self.optimizer.param_groups]
        self.optimizer.load_state_dict(state)
        for group, settings in zip(self.optimizer.param_groups, recipe):
            group.update(settings)
        # Saved moments are contiguous; fused and foreach kernels need the parameters' strides
        # (channels_last conv weights on CUDA).
        for param, moments in self.optimizer.state.items():
            for key, value in moments.items():
                if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                    moments[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)
        if self._capturable:
            self.make_capturable()


# Optimizer settings that come from the recipe, not from a checkpoint.
_RECIPE_KEYS = ("lr", "initial_lr", "betas", "eps", "weight_decay", "momentum", "dampening", "nesterov")


def minimize(loss: Tensor, *optimizers: ScheduledOptimizer) -> None:
    """One backward of ``loss`` (gradients set to None first; scaled under fp16), then a step of each
    optimizer (e.g. a generator and its head, through the shared GradScaler) and its ``after_step``."""
    for opt in optimizers:
        opt.optimizer.zero_grad(set_to_none=True)
    scaler = optimizers[0].scaler
    (scaler.scale(loss) if scaler is not None else loss).backward()
    for opt in optimizers:
        if scaler is not None:
            scaler.step(opt.optimizer)
        else:
            opt.optimizer.step()
        for fn in opt.after_step:
            fn()


def make_capturable(parts: dict[str, Any]) -> str | None:
    """Call ``make_capturable()`` on each named part (pools first, then optimizers): the first
    part's reason for refusing, prefixed with its name, or None when all agree. A part that is not
    :class:`ganforge.protocols.Capturable` refuses."""
    for name, part in parts.items():
        if part is not None and not isinstance(part, protocols.Capturable):
            return f"{name}: {type(part).__name__} has no make_capturable()"
        if part is not None and (reason := part.make_capturable()):
            return f"{name}: {reason}"
    return None


def set_requires_grad(modules: Iterable[nn.Module], flag: bool) -> None:
    """Freeze or unfreeze networks (the discriminators during a generator step)."""
    for m in modules:
        m.requires_grad_(flag)


@contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Networks with ``requires_grad`` off inside the block, on again after it."""
    set_requires_grad(modules, False)
    try:
        yield
    finally:
        set_requires_grad(modules, True)


def outputs_probabilities(module: nn.Module) -> bool:
    """Whether a discriminator ends in a sigmoid (it declares ``outputs_probabilities = True``)."""
    return protocols.outputs_probabilities(unwrap(module))
