"""R3GAN (Huang et al., "The GAN is dead; long live the GAN!", NeurIPS 2024): RpGAN + R1 + R2.

Follows the official training loop, github.com/brownvc/R3GAN at commit
19a7ddf463fbac2bd39b4c1c73d63f1c441c7403 (``training/training_loop.py``, ``R3GAN/Trainer.py``,
``train.py``). One step is one iteration of the reference:

- **D phase**: its own real batch and noise; ``fake = G(z)`` without a graph; the real and
  generated images are made to require grad *before* augmentation, D scores each (two forwards),
  and D minimises ``mean softplus(D(fake) - D(real)) + gamma(t) / 2 * mean(R1 + R2)``, with R1
  and R2 the squared gradient norms of D's scores with respect to those images.
- **G phase**: a second real batch and new noise; D frozen; G minimises
  ``mean softplus(D(real) - D(G(z)))`` (the relativistic loss needs D's scores of real images).
- Adam (beta1 0) with its learning rate and beta2 scheduled, the same for G and D; gamma, the
  moving average's half-life and the augmentation probability scheduled too. Every schedule is
  the reference's half-cosine from ``start`` to ``end`` over ``horizon`` images, then held.

**Two real batches from one.** The dataset gives one batch per step: its first half is the D
phase's real batch and its second half the G phase's, so ``train.batch_size`` is twice the
reference's ``--batch``. Images seen after ``step`` steps are ``step * batch_size / 2`` (times the
number of processes): the reference's ``cur_nimg``, which counts one of its two batches per
iteration. This keeps the objective a plain batch consumer (any dataset, resume and DDP as every
method) at no cost: the reference also reads two batches per iteration.

**Augmentation.** The reference's ADA pipeline applies each of 13 transforms with probability
``p(t)`` times a multiplier. Here the recipe's ``[augment]`` (DiffAugment: colour, translation,
cutout) is applied to each image D sees, real or generated, with probability ``augment_p(t)``
(per image; the others pass unchanged): the same schedule, a smaller family of transforms.

**Conditional.** ``r3gan-cond`` is the same method declaring a class condition: G(z, y) and
D(x, y), the fakes of each phase drawn with the labels of that phase's real batch, as the
reference. It needs a dataset with classes (``class-folders``).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from ganforge import (
    Condition,
    Declaration,
    GanforgeError,
    Network,
    Objective,
    Optimizer,
    Part,
    Range,
    Runtime,
    Section,
    Seed,
    frozen,
    local,
    protocols,
    unwrap,
)

from .r3gan_schedules import R3GAN_PRESETS, Schedule, ema_beta

_FFHQ64 = R3GAN_PRESETS["ffhq-64"].schedules

Rate = Annotated[float, Range(0.0, 1.0)]
Beta2 = Annotated[float, Range(0.0, 1.0, max_open=True)]
Gamma = Annotated[float, Range(0.0)]
Images = Annotated[float, Range(0.0, 1e15, why="images seen; 1e15 is far beyond any training run")]
Probability = Annotated[float, Range(0.0, 1.0)]
Horizon = Annotated[float, Range(1.0, 1e15, why="images seen; 1e15 is far beyond any training run")]


def _pair(name: str) -> tuple[float, float]:
    s = _FFHQ64[name]
    return (s.start, s.end)


@runtime_checkable
class RelativisticLoss(Protocol):
    """What r3gan needs of its ``[loss]``: the ``rpgan`` loss's pairing and penalty."""

    r1_gamma: float
    r2_gamma: float

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor: ...

    def g_loss(self, fake_out: Tensor, *, real_out: Tensor) -> Tensor: ...

    def penalty_from(
        self, real: Tensor, real_out: Tensor, fake: Tensor, fake_out: Tensor, *, scale: Tensor
    ) -> Tensor | None: ...


def _world_size() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


class R3GAN(Objective):
    """R3GAN: RpGAN + R1 + R2, Adam lr / beta2, gamma, EMA half-life and augmentation scheduled over images.

    Each pair option is ``[start, end]`` of a half-cosine over ``horizon`` images seen, held at
    ``end`` after (the official R3GAN's ``cosine_decay_with_warmup``); the defaults are its
    FFHQ-64 preset. ``lr`` and ``beta2`` are set in both Adams' groups every step (their recipe
    values are overwritten; beta1 stays the recipe's, 0 in R3GAN). ``gamma`` multiplies the
    ``[loss]`` rpgan's ``r1_gamma`` and ``r2_gamma`` (1 and 1: R3GAN's R1 + R2).
    ``ema_half_life`` (images) gives the moving average's decay ``0.5 ** (batch / half_life)``
    per step; the average is kept when ``ema`` is above 0 (any value: the half-life decides it).
    ``augment_p`` is the probability that an image D sees goes through ``[augment]``. The
    batch's first half trains D and its second half G: ``train.batch_size`` must be even.
    """

    declares = Declaration(
        sections=(
            Section("generator", "generator"),
            Section("discriminator", "discriminator"),
            Section("loss", "loss", doc="rpgan: the relativistic pairing loss with R1 and R2"),
            Section("optim", "optimizer", roles=("g", "d")),
        ),
        networks={"G": Network("generator", inference=True), "D": Network("discriminator")},
        losses={"loss": Part("loss")},
        optimizers={
            "g": Optimizer("optim.g", ("G",), losses=("G",)),
            "d": Optimizer("optim.d", ("D",), losses=("D", "r1r2")),
        },
        batch_keys=("image",),
        noise="G",
    )

    def __init__(
        self,
        builder: Any,
        runtime: Runtime,
        horizon: Horizon = _FFHQ64["lr"].horizon,
        lr: tuple[Rate, Rate] = _pair("lr"),
        beta2: tuple[Beta2, Beta2] = _pair("beta2"),
        gamma: tuple[Gamma, Gamma] = _pair("gamma"),
        ema_half_life: tuple[Images, Images] = _pair("ema_half_life_images"),
        augment_p: tuple[Probability, Probability] = _pair("augment_p"),
        sample_count: Annotated[int, Range(1, 4096, why="memory: one grid image each")] = 64,
        sample_seed: Seed = 1234,
    ) -> None:
        batch = int(builder.recipe["train"]["batch_size"])
        if batch % 2:
            raise GanforgeError(
                f"[train] batch_size must be even for r3gan: its first half trains D and its second "
                f"half G, got {batch}"
            )
        if builder.has("schedule"):
            raise GanforgeError(
                "[schedule]: r3gan schedules its learning rate itself (objective.lr over "
                "objective.horizon images); remove the [schedule] section"
            )
        if runtime.compile and max(gamma) > 0:
            raise GanforgeError(
                "[train] compile: r3gan's R1 and R2 differentiate D's gradients (a double backward), "
                "which torch.compile does not support: set train.compile = false"
            )
        super().__init__(builder, runtime)
        if not isinstance(self.loss, RelativisticLoss):
            raise GanforgeError(
                f"[loss]: r3gan trains with the relativistic pairing loss and its R1 + R2: set "
                f"loss.name = 'rpgan' (got '{builder.recipe['loss']['name']}')"
            )
        if max(gamma) > 0 and not (self.loss.r1_gamma or self.loss.r2_gamma):
            raise GanforgeError(
                "[loss]: r1_gamma and r2_gamma are both 0, so objective.gamma weighs nothing: set "
                "loss.r1_gamma = 1.0 and loss.r2_gamma = 1.0 (R3GAN's R1 + R2), or objective.gamma = [0, 0]"
            )
        graphs = runtime.device.type == "cuda" and builder.recipe["train"].get("cuda_graph", False)
        for name, opt in self.optimizers.items():
            groups = opt.optimizer.param_groups
            if not all("betas" in g for g in groups):
                raise GanforgeError(
                    f"[optim.{name}]: r3gan schedules Adam's beta2: use adam or adamw "
                    f"(got {type(opt.optimizer).__name__})"
                )
            if graphs and any(g.get("fused") for g in groups):
                raise GanforgeError(
                    f"[optim.{name}]: a fused Adam takes beta2 as a number fixed in a captured CUDA "
                    f"graph, and r3gan changes it every step: set optim.{name}.fused = false (Adam then "
                    "reads it from a device tensor) or train.cuda_graph = false"
                )
        self.sample_count, self.sample_seed = sample_count, sample_seed
        self.latent_dim = protocols.latent_dim(unwrap(self.G))
        self.conditional = self.declares.condition is not None
        # Images per phase and step across processes: the reference's batch and cur_nimg step.
        self.phase_batch = batch // 2 * _world_size()
        self.schedules = {
            "lr": Schedule(*lr, horizon),
            "beta2": Schedule(*beta2, horizon),
            "gamma": Schedule(*gamma, horizon),
            "ema_half_life": Schedule(*ema_half_life, horizon),
            "augment_p": Schedule(*augment_p, horizon),
        }
        device = runtime.device
        # What the step reads on the device, written in place by prepare_step (CUDA-graph safe).
        self._gamma = torch.tensor(float(gamma[0]), dtype=torch.float32, device=device)
        self._augment_p = torch.tensor(float(augment_p[0]), dtype=torch.float32, device=device)

    # -- schedules --------------------------------------------------------------------------------

    def images_seen(self, step: int) -> float:
        """Images seen before ``step``: ``step * phase_batch``, the reference's ``cur_nimg``."""
        return float(step) * self.phase_batch

    def scheduled(self, step: int) -> dict[str, float]:
        """Every scheduled value at ``step``: lr, beta2, gamma, ema_half_life, augment_p."""
        seen = self.images_seen(step)
        return {name: s(seen) for name, s in self.schedules.items()}

    def prepare_step(self, step: int) -> None:
        """Set the step's lr and beta2 in both Adams and write gamma and augment_p in place."""
        values = self.scheduled(step)
        for opt in self.optimizers.values():
            for group in opt.optimizer.param_groups:
                _set_adam(group, values["lr"], values["beta2"])
        self._gamma.fill_(values["gamma"])
        self._augment_p.fill_(values["augment_p"])

    def ema_decay(self, step: int) -> float:
        """``0.5 ** (phase_batch / half_life)``: the average's half-life in images (0: a copy)."""
        return ema_beta(self.phase_batch, self.schedules["ema_half_life"](self.images_seen(step)))

    # -- the step ---------------------------------------------------------------------------------

    def d_input(self, images: Tensor) -> Tensor:
        """``[augment]`` applied to each image with probability ``augment_p(t)`` (none: unchanged)."""
        if self.augment is None:
            return images
        augmented = self.augment(images)
        chosen = torch.rand(images.shape[0], 1, 1, 1, device=images.device) < self._augment_p
        return torch.where(chosen, augmented, images)

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        images = batch["image"]
        n = images.shape[0] // 2
        real_d, real_g = images[:n], images[n : 2 * n]
        if self.conditional:
            labels = batch[self.declares.condition.batch_key]
            y_d, y_g = (labels[:n],), (labels[n : 2 * n],)
        else:
            y_d = y_g = ()
        rt, loss = self.runtime, self.loss

        # D phase: its own real batch and noise.
        z = torch.randn(n, self.latent_dim, device=images.device)
        with torch.no_grad(), rt.autocast():
            fake = self.G(z, *y_d)
        # Gradients of the penalties are taken with respect to the images before augmentation.
        real = real_d.detach().float().requires_grad_(True)
        fake = self._layout(fake.detach().float()).requires_grad_(True)
        with rt.autocast():
            real_out = self.D(self.d_input(real), *y_d)
            fake_out = self.D(self.d_input(fake), *y_d)
        adversarial = loss.d_loss(real_out, fake_out)
        penalty = loss.penalty_from(real, real_out, fake, fake_out, scale=self._gamma)
        self.opt_d.minimize(adversarial if penalty is None else adversarial + penalty)
        losses = {"D": adversarial}
        if penalty is not None:
            losses["r1r2"] = penalty

        # G phase: a second real batch, new noise; D's scores of real images join the loss.
        z = torch.randn(n, self.latent_dim, device=images.device)
        d = local(self.D)
        with frozen(self.D), rt.autocast():
            fake_out = d(self.d_input(self._layout(self.G(z, *y_g))), *y_g)
            with torch.no_grad():
                real_out = d(self.d_input(real_g), *y_g)
            g_loss = loss.g_loss(fake_out, real_out=real_out)
        self.opt_g.minimize(g_loss)  # the moving average of G, when on, updates here
        losses["G"] = g_loss
        return losses

    def _layout(self, images: Tensor) -> Tensor:
        if self.runtime.channels_last:
            return images.contiguous(memory_format=torch.channels_last)
        return images


def _set_adam(group: dict[str, Any], lr: float, beta2: float) -> None:
    """An Adam group's lr and beta2: plain floats, or device tensors written in place once the
    step is captured in a CUDA graph (``capturable``), where a float would stay fixed."""
    group["initial_lr"] = lr  # what ScheduledOptimizer.lr reports for a tensor lr
    beta1 = group["betas"][0]
    if not group.get("capturable"):
        group["lr"], group["betas"] = lr, (beta1, beta2)
        return
    device = group["params"][0].device
    if not isinstance(group["lr"], Tensor):
        group["lr"] = torch.tensor(lr, dtype=torch.float32, device=device)
    group["lr"].fill_(lr)
    if group.get("fused"):  # a fused kernel reads beta2 as a number (refused with CUDA graphs)
        group["betas"] = (beta1, beta2)
        return
    if not isinstance(group["betas"][1], Tensor):
        group["betas"] = tuple(
            torch.tensor(float(b), dtype=torch.float32, device=device) for b in (beta1, beta2)
        )
    group["betas"][1].fill_(beta2)


class R3GANConditional(R3GAN):
    """R3GAN, class-conditional: G(z, y) and D(x, y), as the reference's --cond (a dataset with classes)."""

    declares = dataclasses.replace(
        R3GAN.declares,
        batch_keys=("image", "label"),
        condition=Condition("label", networks=("G", "D")),
    )
