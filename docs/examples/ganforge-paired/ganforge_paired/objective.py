"""``paired``: G(A) should look like B (reconstruction) and fool a discriminator of (A, G(A))."""

from __future__ import annotations

from typing import Annotated, Any

import torch
from torch import Tensor

from ganforge import (
    Declaration,
    Direction,
    Network,
    Objective,
    Optimizer,
    Part,
    Range,
    Section,
    frozen,
    outputs_probabilities,
)


class PairedTranslation(Objective):
    """Paired translation A->B: adversarial loss on (A, G(A)) pairs plus a weighted pixel loss."""

    declares = Declaration(
        sections=(
            Section("generator", "generator"),
            Section("discriminator", "discriminator", doc="sees input and output stacked (6 channels)"),
            Section("loss", "loss"),
            Section("reconstruction", "reconstruction", doc="pixel loss against the paired target"),
            Section("optim", "optimizer", roles=("g", "d")),
        ),
        networks={"G": Network("generator", inference=True), "D": Network("discriminator")},
        losses={"adversarial": Part("loss"), "pixel": Part("reconstruction")},
        optimizers={"g": Optimizer("optim.g", ("G",)), "d": Optimizer("optim.d", ("D",))},
        batch_keys=("A", "B"),
        directions={"a2b": Direction("G", source="A", target="B")},
    )

    def __init__(
        self,
        builder: Any,
        runtime: Any,
        lambda_pixel: Annotated[float, Range(0.0)] = 100.0,
        sample_count: Annotated[int, Range(1)] = 4,
    ) -> None:
        super().__init__(builder, runtime)
        self.lambda_pixel, self.sample_count = lambda_pixel, sample_count
        self._probs = outputs_probabilities(self.D)

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        real_a, real_b = batch["A"], batch["B"]
        adv, rt = self.adversarial, self.runtime
        with frozen(self.D):
            with rt.autocast():
                fake_b = self.G(real_a)
                g_adv = adv.g_loss(self.D(torch.cat([real_a, fake_b], 1)), probabilities=self._probs)
                pixel = self.pixel(fake_b, real_b) * self.lambda_pixel
            self.opt_g.minimize(g_adv + pixel)
        with rt.autocast():
            real_pair = torch.cat([real_a, real_b], 1)
            fake_pair = torch.cat([real_a, fake_b.detach()], 1)
            d_loss = adv.d_loss(self.D(real_pair), self.D(fake_pair), probabilities=self._probs) * 0.5
        self.opt_d.minimize(d_loss)
        return {"G": g_adv, "pixel": pixel, "D": d_loss}
