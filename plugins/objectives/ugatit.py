"""U-GAT-IT (Kim et al., ICLR 2020): CycleGAN with attention maps and AdaLIN, two discriminators a domain."""

from __future__ import annotations

from typing import Annotated, Any, Protocol, runtime_checkable

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
    unwrap,
)

Weight = Annotated[float, Range(0.0)]


@runtime_checkable
class CAMGenerator(Protocol):
    """What U-GAT-IT needs of its generators: the image with the CAM logits and heatmap, and a
    way to keep the AdaLIN/ILN mixing weights in [0, 1]."""

    def forward_cam(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]: ...

    def clip_rho(self) -> None: ...


class UGATIT(Objective):
    """Unpaired A<->B translation with class-activation-map attention (the reference's losses).

    Generators (``[generator]``, e.g. ``ugatit``) return ``forward_cam(x) -> (image, cam_logit,
    heatmap)``; each domain has a global and a local discriminator (``[discriminator.global]``
    and ``[discriminator.local]``) returning ``(logits, cam_logit)``. Losses, weighted as the
    reference: adversarial on logits and CAM logits (``adv_weight``, the ``[loss]`` component),
    cycle L1 (``cycle_weight``), identity L1 (``identity_weight``) and the generators' CAM
    classification (``cam_weight``: source-domain vs same-domain inputs). D step first, then
    G; with ``clip_rho`` every AdaLIN/ILN rho is clamped to [0, 1] after each G step.
    """

    declares = Declaration(
        sections=(
            Section("generator", "generator"),
            Section("discriminator", "discriminator", roles=("global", "local")),
            Section("loss", "loss"),
            Section("optim", "optimizer", roles=("g", "d")),
        ),
        networks={
            "G_AB": Network("generator", inference=True),
            "G_BA": Network("generator", inference=True),
            "D_GA": Network("discriminator.global"),
            "D_GB": Network("discriminator.global"),
            "D_LA": Network("discriminator.local"),
            "D_LB": Network("discriminator.local"),
        },
        losses={"loss": Part("loss")},
        optimizers={
            "g": Optimizer("optim.g", ("G_AB", "G_BA"), losses=("G_adv", "cycle", "idt", "cam")),
            "d": Optimizer("optim.d", ("D_GA", "D_GB", "D_LA", "D_LB"), losses=("D",)),
        },
        batch_keys=("A", "B"),
        directions={
            "a2b": Direction("G_AB", source="A", target="B", inverse="b2a"),
            "b2a": Direction("G_BA", source="B", target="A", inverse="a2b"),
        },
        sample_unit="pairs",
    )

    def __init__(
        self,
        builder: Any,
        runtime: Runtime,
        adv_weight: Weight = 1.0,
        cycle_weight: Weight = 10.0,
        identity_weight: Weight = 10.0,
        cam_weight: Weight = 1000.0,
        clip_rho: bool = True,
        sample_count: Annotated[int, Range(1)] = 4,
    ) -> None:
        super().__init__(builder, runtime)
        self.adv_weight, self.cycle_weight = adv_weight, cycle_weight
        self.identity_weight, self.cam_weight, self.sample_count = identity_weight, cam_weight, sample_count
        for name in ("G_AB", "G_BA"):
            if not isinstance(unwrap(self.nets[name]), CAMGenerator):
                raise ValueError(
                    "[generator] needs forward_cam(x) and clip_rho() (a CAM generator such as 'ugatit')"
                )
        if clip_rho:
            self.opt_g.after_step.insert(0, self._clip_rho)

    @torch.no_grad()
    def _clip_rho(self) -> None:
        for name in ("G_AB", "G_BA"):
            unwrap(self.nets[name]).clip_rho()

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        real_A, real_B = batch["A"], batch["B"]
        rt, loss = self.runtime, self.loss
        G_AB, G_BA = unwrap(self.nets["G_AB"]), unwrap(self.nets["G_BA"])
        discs_A, discs_B = (self.D_GA, self.D_LA), (self.D_GB, self.D_LB)

        # The translations, once: the D step sees them detached, and the G step (whose weights the
        # D step does not change) trains through them. The reference computes them twice.
        with rt.autocast():
            fake_B, cam_AB, _ = G_AB.forward_cam(real_A)
            fake_A, cam_BA, _ = G_BA.forward_cam(real_B)

        # D step: real images against the current translations (no pool, as the reference).
        with rt.autocast():
            d_A = d_B = 0
            for disc in discs_A:
                (real_logit, real_cam) = disc(self.d_input(real_A))
                (fake_logit, fake_cam) = disc(self.d_input(fake_A.detach()))
                d_A = d_A + loss.d_loss(real_logit, fake_logit) + loss.d_loss(real_cam, fake_cam)
            for disc in discs_B:
                (real_logit, real_cam) = disc(self.d_input(real_B))
                (fake_logit, fake_cam) = disc(self.d_input(fake_B.detach()))
                d_B = d_B + loss.d_loss(real_logit, fake_logit) + loss.d_loss(real_cam, fake_cam)
            d_total = self.adv_weight * (d_A + d_B)
        self.opt_d.minimize(d_total)

        # G step, every discriminator frozen.
        with frozen(*discs_A, *discs_B):
            with rt.autocast():
                rec_A = G_BA.forward_cam(fake_B)[0]
                rec_B = G_AB.forward_cam(fake_A)[0]
                idt_A, cam_AA, _ = G_BA.forward_cam(real_A)
                idt_B, cam_BB, _ = G_AB.forward_cam(real_B)
                adv_A = sum(loss.g_loss(o) for d in discs_A for o in local(d)(self.d_input(fake_A)))
                adv_B = sum(loss.g_loss(o) for d in discs_B for o in local(d)(self.d_input(fake_B)))
                cycle_A = F.l1_loss(rec_A.float(), real_A.float())
                cycle_B = F.l1_loss(rec_B.float(), real_B.float())
                identity_A = F.l1_loss(idt_A.float(), real_A.float())
                identity_B = F.l1_loss(idt_B.float(), real_B.float())
                # The CAM tells "this input is from the other domain" (1) from "already mine" (0).
                cam_A = _bce(cam_BA, 1.0) + _bce(cam_AA, 0.0)
                cam_B = _bce(cam_AB, 1.0) + _bce(cam_BB, 0.0)
                g_total = (
                    self.adv_weight * (adv_A + adv_B)
                    + self.cycle_weight * (cycle_A + cycle_B)
                    + self.identity_weight * (identity_A + identity_B)
                    + self.cam_weight * (cam_A + cam_B)
                )
            self.opt_g.minimize(g_total)

        return {
            "G_adv_A": adv_A,
            "G_adv_B": adv_B,
            "cycle_A": cycle_A,
            "cycle_B": cycle_B,
            "idt_A": identity_A,
            "idt_B": identity_B,
            "cam_A": cam_A,
            "cam_B": cam_B,
            "D_A": d_A,
            "D_B": d_B,
        }


def _bce(logits: Tensor, target: float) -> Tensor:
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))
