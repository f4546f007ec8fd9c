"""Class-conditional GAN (SNGAN / BigGAN family): noise and a class in, an image of that class out.

The training step follows POSTECH-CVLab/PyTorch-StudioGAN at commit
947b35e9835b67860fdce44d337f6d7fee7c8db3, ``src/worker.py`` (``train_discriminator``, then
``train_generator``), ``src/utils/sample.py`` (``sample_zy``: fake labels uniform over the classes,
``y_sampler="totally_random"``, drawn before the noise) and ``src/utils/ema.py``, with the
networks of ``ganforge_plugins.networks.conditional`` (``sngan`` / ``biggan`` and ``projection``):

- a **discriminator step at every step** on the batch's real images and labels and a fresh fake
  batch ``G(z, y_fake)`` (no gradient into G); its batch norm statistics are not tracked there
  (StudioGAN's ``untrack_bn_statistics``: only the generator step updates them);
- a **generator step every ``n_critic`` steps** (StudioGAN's ``d_updates_per_step``; 5 for SNGAN),
  after the discriminator step of that step, on its own fresh ``z`` and labels. StudioGAN counts
  generator updates as steps (``total_steps``); a ganforge step is one discriminator update, so
  StudioGAN's 100,000 steps are 500,000 here at ``n_critic = 5``;
- the discriminator sees ``self.d_input`` of every image (the recipe's DiffAugment, if any) and
  the image's class: ``D(x, y)``;
- a penalty of the loss (``gradient_penalty``, ``r1_gamma``) is computed on the un-augmented
  images with the real labels, as StudioGAN's ``cal_grad_penalty`` / ``cal_r1_reg``;
- ``[objective] ema`` keeps a moving average of G (the engine's); ``ema_start`` generator
  updates copy G instead of averaging it (StudioGAN's ``g_ema_start``: 1000 for BigGAN).

Differences from StudioGAN: its moving average also averages the batch norm statistics (ganforge's
copies them, as for every objective), and its Adam eps is 1e-6 (the recipes set it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Annotated, Any

import torch
from torch import Tensor, nn

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
    outputs_probabilities,
    protocols,
    unwrap,
)


class ConditionalGAN(Objective):
    """Class-conditional GAN (SNGAN, BigGAN; StudioGAN's loop): D every step, G every n_critic, D(x, y).

    ``n_critic`` discriminator steps per generator step (StudioGAN's ``d_updates_per_step``).
    Fake classes are drawn uniformly; the generator's batch norm statistics follow its own step
    only. ``ema_start``: generator updates before the moving average (``[objective] ema``) starts
    averaging (it copies G until then). Sample grids have a row per class.
    """

    declares = Declaration(
        sections=(
            Section("generator", "generator"),
            Section("discriminator", "discriminator"),
            Section("loss", "loss"),
            Section("optim", "optimizer", roles=("g", "d")),
        ),
        networks={"G": Network("generator", inference=True), "D": Network("discriminator")},
        losses={"loss": Part("loss")},
        optimizers={
            "d": Optimizer("optim.d", ("D",), losses=("D", "gp")),
            "g": Optimizer("optim.g", ("G",), losses=("G",)),
        },
        batch_keys=("image", "label"),
        noise="G",
        condition=Condition("label", ("G", "D")),
    )

    def __init__(
        self,
        builder: Any,
        runtime: Runtime,
        n_critic: Annotated[int, Range(1, 1000, why="steps: G would almost never update")] = 5,
        ema_start: Annotated[int, Range(0)] = 0,
        sample_count: Annotated[int, Range(1, 4096, why="memory: one grid holds them all")] = 100,
        sample_seed: Seed = 1234,
    ) -> None:
        super().__init__(builder, runtime)
        self.n_critic, self.ema_start = n_critic, ema_start
        self.sample_count, self.sample_seed = sample_count, sample_seed
        if self.num_classes < 1 or self.contexts["G"].get("num_classes") != self.num_classes:
            generator = builder.recipe["generator"]["name"]
            raise GanforgeError(
                f"[generator]: objective 'cgan' needs a class-conditional generator (one that takes "
                f"num_classes, as 'sngan' and 'biggan'); '{generator}' does not"
            )
        self.latent_dim = protocols.latent_dim(unwrap(self.G))
        self._d_probs = outputs_probabilities(self.D)
        # StudioGAN's untrack_bn_statistics: the D step's generator pass leaves G's statistics alone.
        self._g_norms = [
            m for m in unwrap(self.G).modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
        ]

    def step_variant(self, step: int) -> bool:
        """Whether G updates at this step (one CUDA graph per answer)."""
        return (step + 1) % self.n_critic == 0

    def ema_decay(self, step: int) -> float | None:
        """0 (the average copies G) for the first ``ema_start`` generator updates, then the recipe's."""
        return 0.0 if (step + 1) // self.n_critic <= self.ema_start else None

    def _fake_inputs(self, n: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """Uniform fake classes, then the noise (StudioGAN's ``sample_zy`` order)."""
        labels = torch.randint(0, self.num_classes, (n,), device=device)
        return torch.randn(n, self.latent_dim, device=device), labels

    @contextmanager
    def _untracked_norms(self) -> Iterator[None]:
        tracked = [m.track_running_stats for m in self._g_norms]
        for m in self._g_norms:
            m.track_running_stats = False
        try:
            yield
        finally:
            for m, flag in zip(self._g_norms, tracked):
                m.track_running_stats = flag

    def _generate(self, z: Tensor, labels: Tensor) -> Tensor:
        fake = self.G(z, labels)
        if self.runtime.channels_last:
            fake = fake.contiguous(memory_format=torch.channels_last)
        return fake

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        real, labels = batch["image"], batch["label"]
        rt, loss, probs = self.runtime, self.loss, self._d_probs
        n, device = real.shape[0], real.device

        z, fake_labels = self._fake_inputs(n, device)
        with rt.autocast():
            with torch.no_grad(), self._untracked_norms():
                fake = self._generate(z, fake_labels)
            d_real = self.D(self.d_input(real), labels)
            d_fake = self.D(self.d_input(fake), fake_labels)
            d_loss = loss.d_loss(d_real, d_fake, probabilities=probs)
            gp = loss.penalty(partial(self.D, y=labels), real, fake)
            d_total = d_loss if gp is None else d_loss + gp
        self.opt_d.minimize(d_total)
        losses = {"D": d_loss}
        if gp is not None:
            losses["gp"] = gp

        if self.step_variant(step):
            z, fake_labels = self._fake_inputs(n, device)
            with frozen(self.D), rt.autocast():
                fake = self._generate(z, fake_labels)
                g_loss = loss.g_loss(local(self.D)(self.d_input(fake), fake_labels), probabilities=probs)
            self.opt_g.minimize(g_loss)  # the moving average of G, if on, updates here
            losses["G"] = g_loss
        return losses
