"""Unconditional generation (DCGAN and friends): noise in, images out."""

from __future__ import annotations

from typing import Annotated, Any

import torch
from torch import Tensor

from ganforge import (
    Declaration,
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


class UnconditionalGAN(Objective):
    """Noise-to-image GAN (DCGAN, S4): D step then G step, any adversarial loss, optional EMA of G.

    ``n_critic`` D steps per G step (5 is usual for ``wgan-gp``). With ``ema > 0`` a moving
    average of G's weights is kept and used for samples. Samples use a fixed noise batch drawn
    from ``sample_seed``.
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
            "g": Optimizer("optim.g", ("G",), losses=("G",)),
            "d": Optimizer("optim.d", ("D",), losses=("D", "gp")),
        },
        batch_keys=("image",),
        noise="G",
    )

    def __init__(
        self,
        builder: Any,
        runtime: Runtime,
        n_critic: Annotated[int, Range(1)] = 1,
        sample_count: Annotated[int, Range(1)] = 64,
        sample_seed: Seed = 1234,
    ) -> None:
        super().__init__(builder, runtime)
        self.n_critic, self.sample_count, self.sample_seed = n_critic, sample_count, sample_seed
        self._d_probs = outputs_probabilities(self.D)
        self.latent_dim = protocols.latent_dim(unwrap(self.G))

    def step_variant(self, step: int) -> bool:
        """Whether G updates at this step (one CUDA graph per answer)."""
        return (step + 1) % self.n_critic == 0

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        real = batch["image"]
        rt, loss, probs = self.runtime, self.loss, self._d_probs
        z = torch.randn(real.shape[0], self.latent_dim, device=real.device)

        with rt.autocast():
            fake = self.G(z)
            if rt.channels_last:
                fake = fake.contiguous(memory_format=torch.channels_last)
            d_real, d_fake = self.D(self.d_input(real)), self.D(self.d_input(fake.detach()))
            d_loss = loss.d_loss(d_real, d_fake, probabilities=probs)
            gp = loss.penalty(self.D, real, fake.detach())
            d_total = d_loss if gp is None else d_loss + gp
        self.opt_d.minimize(d_total)

        losses = {"D": d_loss}
        if gp is not None:
            losses["gp"] = gp
        if self.step_variant(step):
            with frozen(self.D):
                with rt.autocast():
                    g_loss = loss.g_loss(local(self.D)(self.d_input(fake)), probabilities=probs)
                self.opt_g.minimize(g_loss)  # the moving average of G, if on, updates here
            losses["G"] = g_loss
        return losses
