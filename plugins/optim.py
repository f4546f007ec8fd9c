"""Bundled optimizers (Adam, AdamW, SGD) and learning-rate schedules.

A schedule is built with the context ``steps_per_epoch`` and ``total_steps`` and is a pure
function of the global step: ``factor(step) -> float`` multiplies each optimizer's base learning
rate. Epoch-based schedules use ``epoch = step // steps_per_epoch`` (0-based).
"""

import math
from collections.abc import Iterable
from typing import Annotated, Any, Literal

import torch
from torch import Tensor

from ganforge import GanforgeError, Range, hookimpl
from ganforge.hookspecs import Register

Rate = Annotated[float, Range(0.0)]  # 0 freezes the parameters (torch refuses negative rates)
Beta = Annotated[float, Range(0.0, 1.0, max_open=True)]  # moving-average decays: 1 never forgets
Betas = tuple[Beta, Beta]
Eps = Annotated[float, Range(0.0, min_open=True)]  # 0 divides by zero where a gradient is zero
Decay = Annotated[float, Range(0.0)]
Fraction = Annotated[float, Range(0.0, 1.0)]
Epochs = Annotated[int, Range(0)]

# ---------------------------------------------------------------------------------------------
# Optimizers


def _param_groups(params: Iterable[Any]) -> tuple[list[Any], list[Tensor]]:
    """``params`` as a list (generators consumed once) and every tensor in it."""
    items: list[Any] = []
    tensors: list[Tensor] = []
    for p in params:
        if isinstance(p, dict):
            group_params = p["params"]
            group_params = [group_params] if isinstance(group_params, Tensor) else list(group_params)
            items.append({**p, "params": group_params})
            tensors += group_params
        else:
            items.append(p)
            tensors.append(p)
    return items, tensors


def _fused(tensors: list[Tensor], fused: bool | None) -> bool | None:
    # Fused kernels only pay off (and are only guaranteed) on CUDA; elsewhere torch picks foreach/loop.
    if fused is None and tensors and all(t.is_cuda for t in tensors):
        return True
    return fused


def adam(
    params: Iterable[Any],
    lr: Rate = 2e-4,
    betas: Betas = (0.5, 0.999),
    eps: Eps = 1e-8,
    weight_decay: Decay = 0.0,
    fused: bool | None = None,
) -> torch.optim.Adam:
    """Adam with the GAN defaults of CycleGAN and DCGAN (lr 2e-4, betas 0.5/0.999).

    ``fused`` unset means fused kernels when every parameter is on CUDA, torch's default otherwise.
    """
    groups, tensors = _param_groups(params)
    return torch.optim.Adam(
        groups, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, fused=_fused(tensors, fused)
    )


def adamw(
    params: Iterable[Any],
    lr: Rate = 2e-4,
    betas: Betas = (0.5, 0.999),
    eps: Eps = 1e-8,
    weight_decay: Decay = 0.01,
    fused: bool | None = None,
) -> torch.optim.AdamW:
    """AdamW (decoupled weight decay, 0.01 by default) with the GAN betas 0.5/0.999.

    ``fused`` unset means fused kernels when every parameter is on CUDA, torch's default otherwise.
    """
    groups, tensors = _param_groups(params)
    return torch.optim.AdamW(
        groups, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, fused=_fused(tensors, fused)
    )


def sgd(
    params: Iterable[Any],
    lr: Rate = 1e-3,
    momentum: Beta = 0.9,
    weight_decay: Decay = 0.0,
    nesterov: bool = False,
    fused: bool | None = None,
) -> torch.optim.SGD:
    """SGD with momentum (0.9 by default), optionally Nesterov.

    ``fused`` unset means fused kernels when every parameter is on CUDA (which also lets the
    step be captured in a CUDA graph), torch's default otherwise.
    """
    groups, tensors = _param_groups(params)
    if nesterov and momentum <= 0:
        raise GanforgeError("sgd: nesterov needs momentum > 0")
    return torch.optim.SGD(
        groups,
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        nesterov=nesterov,
        fused=_fused(tensors, fused),
    )


# ---------------------------------------------------------------------------------------------
# Schedules


def _at_least_one(value: int) -> int:
    return max(1, int(value))


class Constant:
    """Constant learning rate: the factor is always 1."""

    def __call__(self, step: int) -> float:
        return 1.0

    def __repr__(self) -> str:
        return "Constant()"


class LinearDecay:
    """CycleGAN's 'linear' policy: full rate for constant_epochs, then linear decay over decay_epochs.

    ``factor = 1 - max(0, epoch + 1 - constant_epochs) / (decay_epochs + 1)`` with the 0-based
    ``epoch = step // steps_per_epoch``: the official formula with ``epoch_count=1``. With the
    defaults it is 1.0 through epoch 99 and 1/101 at epoch 199; later epochs stay at 0 instead of
    going negative.
    """

    def __init__(
        self,
        steps_per_epoch: int,
        total_steps: int,
        constant_epochs: Epochs = 100,
        decay_epochs: Epochs = 100,
    ) -> None:
        if constant_epochs < 0 or decay_epochs < 0:
            raise GanforgeError("linear-decay: constant_epochs and decay_epochs must be >= 0")
        self.steps_per_epoch = _at_least_one(steps_per_epoch)
        self.constant_epochs = constant_epochs
        self.decay_epochs = decay_epochs

    def __call__(self, step: int) -> float:
        epoch = max(0, step) // self.steps_per_epoch
        factor = 1.0 - max(0, epoch + 1 - self.constant_epochs) / float(self.decay_epochs + 1)
        return max(0.0, factor)

    def __repr__(self) -> str:
        return f"LinearDecay(constant_epochs={self.constant_epochs}, decay_epochs={self.decay_epochs})"


class Cyclic:
    """Cyclical learning rate (Smith): the factor cycles between min_factor and 1.

    One cycle lasts ``cycle_epochs`` epochs (``cycle_epochs * steps_per_epoch`` steps); like
    ``torch.optim.lr_scheduler.CyclicLR`` each cycle starts at ``min_factor`` and peaks at 1.0
    half-way. ``triangular`` rises and falls linearly, ``triangular2`` also halves the amplitude
    every cycle, ``cosine`` follows a raised cosine.
    """

    def __init__(
        self,
        steps_per_epoch: int,
        total_steps: int,
        min_factor: Fraction = 0.1,
        cycle_epochs: Annotated[float, Range(0.0, min_open=True)] = 10.0,
        mode: Literal["triangular", "triangular2", "cosine"] = "triangular",
    ) -> None:
        if not 0.0 <= min_factor <= 1.0:
            raise GanforgeError(f"cyclic: min_factor must be in [0, 1], got {min_factor}")
        if cycle_epochs <= 0:
            raise GanforgeError(f"cyclic: cycle_epochs must be > 0, got {cycle_epochs}")
        if mode not in ("triangular", "triangular2", "cosine"):
            raise GanforgeError(f"cyclic: unknown mode {mode!r}")
        self.min_factor = min_factor
        self.cycle_epochs = cycle_epochs
        self.mode = mode
        self.period = cycle_epochs * _at_least_one(steps_per_epoch)

    def __call__(self, step: int) -> float:
        step = max(0, step)
        cycle = math.floor(step / self.period)
        x = step / self.period - cycle  # position in the cycle, [0, 1)
        amplitude = 1.0 - self.min_factor
        if self.mode == "cosine":
            return self.min_factor + amplitude * 0.5 * (1.0 - math.cos(2.0 * math.pi * x))
        if self.mode == "triangular2":
            amplitude /= 2.0**cycle
        return self.min_factor + amplitude * (1.0 - abs(2.0 * x - 1.0))

    def __repr__(self) -> str:
        return f"Cyclic(min_factor={self.min_factor}, cycle_epochs={self.cycle_epochs}, mode={self.mode!r})"


class StepDecay:
    """Step decay: the factor is multiplied by gamma every step_epochs epochs."""

    def __init__(
        self,
        steps_per_epoch: int,
        total_steps: int,
        step_epochs: Annotated[int, Range(1)] = 30,
        # a decay: a factor above 1 would grow the rate without bound (and overflow)
        gamma: Annotated[float, Range(0.0, 1.0, min_open=True)] = 0.1,
    ) -> None:
        if step_epochs < 1 or gamma <= 0:
            raise GanforgeError("step: step_epochs must be >= 1 and gamma > 0")
        self.steps_per_epoch = _at_least_one(steps_per_epoch)
        self.step_epochs = step_epochs
        self.gamma = gamma

    def __call__(self, step: int) -> float:
        epoch = max(0, step) // self.steps_per_epoch
        return self.gamma ** (epoch // self.step_epochs)

    def __repr__(self) -> str:
        return f"StepDecay(step_epochs={self.step_epochs}, gamma={self.gamma})"


class Cosine:
    """Cosine annealing from 1 to min_factor over the whole run, after an optional linear warmup.

    During the first ``warmup_steps`` steps the factor rises linearly to 1 (``(step + 1) /
    warmup_steps``); it then follows half a cosine, reaching ``min_factor`` at ``total_steps``
    and staying there.
    """

    def __init__(
        self,
        steps_per_epoch: int,
        total_steps: int,
        min_factor: Fraction = 0.0,
        warmup_steps: Annotated[int, Range(0)] = 0,
    ) -> None:
        if not 0.0 <= min_factor <= 1.0:
            raise GanforgeError(f"cosine: min_factor must be in [0, 1], got {min_factor}")
        if warmup_steps < 0:
            raise GanforgeError(f"cosine: warmup_steps must be >= 0, got {warmup_steps}")
        self.total_steps = _at_least_one(total_steps)
        self.min_factor = min_factor
        self.warmup_steps = warmup_steps

    def __call__(self, step: int) -> float:
        step = max(0, step)
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def __repr__(self) -> str:
        return f"Cosine(min_factor={self.min_factor}, warmup_steps={self.warmup_steps})"


class CosineRestarts:
    """Cosine annealing with warm restarts per epoch (torch's CosineAnnealingWarmRestarts).

    The factor falls from 1 to ``min_factor`` over ``restart_epochs`` epochs along half a cosine,
    then starts again at 1; with ``t_mult`` > 1 each period is that many times longer than the one
    before. The epoch is ``step // steps_per_epoch``, so the factor changes once per epoch, as
    when the torch scheduler is stepped after each epoch. ``min_factor`` is ``eta_min / lr``.
    UVCGAN2's pre-training uses ``restart_epochs = 500``, ``t_mult = 1``, ``min_factor = 1e-5``.
    """

    def __init__(
        self,
        steps_per_epoch: int,
        total_steps: int,
        restart_epochs: Annotated[int, Range(1)] = 500,
        t_mult: Annotated[int, Range(1, 1000, why="each period is t_mult times the last")] = 1,
        min_factor: Fraction = 0.0,
    ) -> None:
        if restart_epochs < 1 or t_mult < 1:
            raise GanforgeError("cosine-restarts: restart_epochs and t_mult must be >= 1")
        if not 0.0 <= min_factor <= 1.0:
            raise GanforgeError(f"cosine-restarts: min_factor must be in [0, 1], got {min_factor}")
        self.steps_per_epoch = _at_least_one(steps_per_epoch)
        self.restart_epochs = restart_epochs
        self.t_mult = t_mult
        self.min_factor = min_factor

    def __call__(self, step: int) -> float:
        epoch = max(0, step) // self.steps_per_epoch
        t0, mult = self.restart_epochs, self.t_mult
        t_cur, t_i = (epoch % t0, t0) if mult == 1 else (epoch, t0)
        while t_cur >= t_i:  # as the stepped scheduler: each finished period is t_mult times longer
            t_cur -= t_i
            t_i *= mult
        return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * t_cur / t_i))

    def __repr__(self) -> str:
        return (
            f"CosineRestarts(restart_epochs={self.restart_epochs}, t_mult={self.t_mult}, "
            f"min_factor={self.min_factor})"
        )


@hookimpl
def register_optimizers(register: Register) -> None:
    register("adam", adam)
    register("adamw", adamw)
    register("sgd", sgd)


@hookimpl
def register_schedulers(register: Register) -> None:
    register("constant", Constant)
    register("linear-decay", LinearDecay)
    register("cyclic", Cyclic)
    register("step", StepDecay)
    register("cosine", Cosine)
    register("cosine-restarts", CosineRestarts)
