"""The CycleGAN objective (Zhu et al. 2017) with the official defaults as recipe values."""

from __future__ import annotations

from typing import Annotated, Any

import torch.nn.functional as F
from torch import Tensor

from ganforge import (
    Declaration,
    Direction,
    Network,
    Objective,
    Optimizer,
    Part,
    Range,
    Runtime,
    Section,
    frozen,
    local,
    outputs_probabilities,
)

Weight = Annotated[float, Range(0.0)]
# A<->B with G_AB and G_BA, each the other's inverse (CycleGAN, U-GAT-IT).
TWO_WAY = {
    "a2b": Direction("G_AB", source="A", target="B", inverse="b2a"),
    "b2a": Direction("G_BA", source="B", target="A", inverse="a2b"),
}


class CycleGAN(Objective):
    """Unpaired translation A<->B: two generators, two discriminators, cycle and identity L1.

    One step is the G step (both Ds frozen) then the D step on image-pool samples, as in the
    official code. ``lambda_identity`` is relative to ``lambda_cycle`` (official semantics:
    identity weight = lambda_cycle * lambda_identity). Networks: ``G_AB`` (A->B), ``G_BA``,
    ``D_A`` (judges domain A), ``D_B``.
    """

    declares = Declaration(
        sections=(
            Section("generator", "generator"),
            Section("discriminator", "discriminator"),
            Section("loss", "loss"),
            Section("pool", "pool", required=False),
            Section("optim", "optimizer", roles=("g", "d")),
        ),
        networks={
            "G_AB": Network("generator", inference=True),
            "G_BA": Network("generator", inference=True),
            "D_A": Network("discriminator"),
            "D_B": Network("discriminator"),
        },
        losses={"loss": Part("loss")},
        pools={"pool_A": Part("pool", optional=True), "pool_B": Part("pool", optional=True)},
        optimizers={
            "g": Optimizer("optim.g", ("G_AB", "G_BA"), losses=("G_AB", "G_BA", "cycle", "idt")),
            "d": Optimizer("optim.d", ("D_A", "D_B"), losses=("D_A", "D_B", "gp")),
        },
        batch_keys=("A", "B"),
        directions=TWO_WAY,
        sample_unit="pairs",
    )

    def __init__(
        self,
        builder: Any,
        runtime: Runtime,
        lambda_cycle: Weight = 10.0,
        lambda_identity: Weight = 0.5,
        d_loss_weight: Weight = 0.5,
        sample_count: Annotated[int, Range(1)] = 4,
    ) -> None:
        super().__init__(builder, runtime)
        self.lambda_cycle, self.lambda_identity = lambda_cycle, lambda_identity
        self.d_loss_weight, self.sample_count = d_loss_weight, sample_count
        self._d_probs = outputs_probabilities(self.D_A)

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        real_A, real_B = batch["A"], batch["B"]
        rt, loss, probs = self.runtime, self.loss, self._d_probs

        # G step, with both discriminators frozen.
        with frozen(self.D_A, self.D_B):
            with rt.autocast():
                fake_B = self.G_AB(real_A)
                rec_A = self.G_BA(fake_B)
                fake_A = self.G_BA(real_B)
                rec_B = self.G_AB(fake_A)
                # frozen Ds: their DDP wrappers are bypassed, no gradients of theirs to synchronise
                g_adv_AB = loss.g_loss(local(self.D_B)(self.d_input(fake_B)), probabilities=probs)
                g_adv_BA = loss.g_loss(local(self.D_A)(self.d_input(fake_A)), probabilities=probs)
                cycle_A = F.l1_loss(rec_A.float(), real_A.float()) * self.lambda_cycle
                cycle_B = F.l1_loss(rec_B.float(), real_B.float()) * self.lambda_cycle
                g_total = g_adv_AB + g_adv_BA + cycle_A + cycle_B
                idt_A = idt_B = None
                if self.lambda_identity > 0:
                    w = self.lambda_cycle * self.lambda_identity
                    idt_B = F.l1_loss(self.G_AB(real_B).float(), real_B.float()) * w
                    idt_A = F.l1_loss(self.G_BA(real_A).float(), real_A.float()) * w
                    g_total = g_total + idt_A + idt_B
            self.opt_g.minimize(g_total)

        # D step on pool samples.
        pooled_B = self.pool_B.query(fake_B.detach()) if self.pool_B else fake_B.detach()
        pooled_A = self.pool_A.query(fake_A.detach()) if self.pool_A else fake_A.detach()
        with rt.autocast():
            d_B = self.d_loss_weight * loss.d_loss(
                self.D_B(self.d_input(real_B)), self.D_B(self.d_input(pooled_B)), probabilities=probs
            )
            d_A = self.d_loss_weight * loss.d_loss(
                self.D_A(self.d_input(real_A)), self.D_A(self.d_input(pooled_A)), probabilities=probs
            )
            d_total = d_A + d_B
            gp_B = loss.penalty(self.D_B, real_B, pooled_B)
            gp_A = loss.penalty(self.D_A, real_A, pooled_A)
            if gp_A is not None and gp_B is not None:
                d_total = d_total + gp_A + gp_B
        self.opt_d.minimize(d_total)

        losses = {
            "G_AB": g_adv_AB,
            "G_BA": g_adv_BA,
            "cycle_A": cycle_A,
            "cycle_B": cycle_B,
            "D_A": d_A,
            "D_B": d_B,
        }
        if idt_A is not None:
            losses.update(idt_A=idt_A, idt_B=idt_B)
        if gp_A is not None:
            losses.update(gp_A=gp_A, gp_B=gp_B)
        return losses
