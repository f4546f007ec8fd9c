"""The pix2pix objective (Isola et al. 2017) with the official defaults as recipe values.

Reference: junyanz/pytorch-CycleGAN-and-pix2pix, ``models/pix2pix_model.py`` at commit
48ced5e8e3af621acca066a70203a196ba571bed: ``optimize_parameters`` runs ``forward`` (fake_B =
G(real_A)), then the D step (``backward_D``: D on cat(real_A, fake_B) detached, through the image
pool, and on cat(real_A, real_B); ``loss_D = (D_fake + D_real) * 0.5``), then the G step with D
frozen (``backward_G``: the updated D on cat(real_A, fake_B), ``loss_G = G_GAN + lambda_L1 *
L1(fake_B, real_B)``). Its defaults: ``gan_mode='vanilla'`` (BCE on logits), ``lambda_L1=100``,
``pool_size=0``, ``norm='batch'``, ``netG='unet_256'`` with dropout, ``netD='basic'`` (70x70
PatchGAN on input_nc + output_nc = 6 channels); ``options/train_options.py`` at the same commit:
Adam lr 2e-4, beta1 0.5, 100 epochs at that rate then 100 of linear decay; batch 1
(``options/base_options.py``). ``recipes/pix2pix_facades.toml`` holds them.
"""

from __future__ import annotations

from typing import Annotated, Any

import torch
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


class Pix2Pix(Objective):
    """Paired translation A->B: U-Net G, conditional PatchGAN D on (input, image) pairs, GAN + L1.

    One step is the official order: G translates, D is updated on (A, G(A)) against (A, B), then
    G is updated against the updated D (frozen) plus ``lambda_l1`` x L1(G(A), B). The D loss is
    multiplied by ``d_loss_weight`` (0.5, as the official). Networks: ``G`` (A->B, inference) and
    ``D`` (its discriminator sees input and image stacked: ``in_channels`` = 6 for RGB).
    """

    declares = Declaration(
        sections=(
            Section("generator", "generator"),
            Section("discriminator", "discriminator", doc="sees (input, image) stacked: in_channels = 6"),
            Section("loss", "loss"),
            Section("pool", "pool", required=False, doc="of (input, generated) pairs; the official has none"),
            Section("optim", "optimizer", roles=("g", "d")),
        ),
        networks={"G": Network("generator", inference=True), "D": Network("discriminator")},
        losses={"loss": Part("loss")},
        pools={"pool": Part("pool", optional=True)},
        optimizers={
            "g": Optimizer("optim.g", ("G",), losses=("G_GAN", "G_L1")),
            "d": Optimizer("optim.d", ("D",), losses=("D", "gp")),
        },
        batch_keys=("A", "B"),
        paired=("A", "B"),
        directions={"a2b": Direction("G", source="A", target="B")},
        sample_unit="pairs",
    )

    def __init__(
        self,
        builder: Any,
        runtime: Runtime,
        lambda_l1: Weight = 100.0,
        d_loss_weight: Weight = 0.5,
        sample_count: Annotated[int, Range(1)] = 4,
    ) -> None:
        super().__init__(builder, runtime)
        self.lambda_l1, self.d_loss_weight, self.sample_count = lambda_l1, d_loss_weight, sample_count
        self._d_probs = outputs_probabilities(self.D)

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        real_a, real_b = batch["A"], batch["B"]
        rt, loss, probs = self.runtime, self.loss, self._d_probs
        with rt.autocast():
            fake_b = self.G(real_a)

        # D step: the fake pair detached (through the pool when there is one), then the real pair.
        fake_pair = torch.cat([real_a, fake_b.detach()], 1)
        pooled = self.pool.query(fake_pair) if self.pool else fake_pair
        real_pair = torch.cat([real_a, real_b], 1)
        with rt.autocast():
            pred_fake = self.D(self.d_input(pooled))  # fake first, as the official (batch-norm stats)
            pred_real = self.D(self.d_input(real_pair))
            d = self.d_loss_weight * loss.d_loss(pred_real, pred_fake, probabilities=probs)
            d_total = d
            gp = loss.penalty(self.D, real_pair, pooled)
            if gp is not None:
                d_total = d_total + gp
        self.opt_d.minimize(d_total)

        # G step against the updated D, frozen: its DDP wrapper is bypassed, no gradients of its own.
        with frozen(self.D):
            with rt.autocast():
                pred = local(self.D)(self.d_input(torch.cat([real_a, fake_b], 1)))
                g_gan = loss.g_loss(pred, probabilities=probs)
                g_l1 = F.l1_loss(fake_b.float(), real_b.float()) * self.lambda_l1
            self.opt_g.minimize(g_gan + g_l1)

        losses = {"G_GAN": g_gan, "G_L1": g_l1, "D": d}
        if gp is not None:
            losses["gp"] = gp
        return losses
