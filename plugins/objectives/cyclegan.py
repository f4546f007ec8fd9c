"""The CycleGAN objective (Zhu et al. 2017) with the official defaults as recipe values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.utils import make_grid

from ganforge.runtime import Runtime, eval_mode, local, unwrap
from ganforge_plugins.objectives.optimizing import (
    ScheduledOptimizer,
    make_capturable,
    outputs_probabilities,
    parameters,
    set_requires_grad,
)


class CycleGAN:
    """Unpaired translation A<->B: two generators, two discriminators, cycle and identity L1.

    One step is the G step (both Ds frozen) then the D step on image-pool samples, as in the
    official code. ``lambda_identity`` is relative to ``lambda_cycle`` (official semantics:
    identity weight = lambda_cycle * lambda_identity). Networks: ``G_AB`` (A->B), ``G_BA``,
    ``D_A`` (judges domain A), ``D_B``.
    """

    required_sections = ("generator", "discriminator", "loss", "optim.g", "optim.d")
    kind = "translation"

    def __init__(
        self,
        recipe: dict[str, Any],
        build: Callable[..., Any],
        runtime: Runtime,
        lambda_cycle: float = 10.0,
        lambda_identity: float = 0.5,
        d_loss_weight: float = 0.5,
        sample_count: int = 4,
    ) -> None:
        self.runtime = runtime
        self.lambda_cycle, self.lambda_identity = lambda_cycle, lambda_identity
        self.d_loss_weight, self.sample_count = d_loss_weight, sample_count
        self.G_AB, self.G_BA = (runtime.prepare(build("generator")) for _ in range(2))
        self.D_A, self.D_B = (runtime.prepare(build("discriminator")) for _ in range(2))
        self.loss = build("loss")
        has_pool = "pool" in recipe
        self.pool_A = build("pool") if has_pool else None  # fakes of domain A, for D_A
        self.pool_B = build("pool") if has_pool else None
        schedule = build("schedule") if "schedule" in recipe else None
        self.scaler = runtime.grad_scaler()
        self.opt_g = ScheduledOptimizer(
            build("optim.g", params=parameters(self.G_AB, self.G_BA)), schedule, self.scaler
        )
        self.opt_d = ScheduledOptimizer(
            build("optim.d", params=parameters(self.D_A, self.D_B)), schedule, self.scaler
        )
        self._d_probs = outputs_probabilities(unwrap(self.D_A))
        self._compiled: dict[str, nn.Module] = {}  # inference networks, when runtime.compile

    @property
    def networks(self) -> dict[str, nn.Module]:
        return {
            "G_AB": unwrap(self.G_AB),
            "G_BA": unwrap(self.G_BA),
            "D_A": unwrap(self.D_A),
            "D_B": unwrap(self.D_B),
        }

    @property
    def generators(self) -> dict[str, nn.Module]:
        """The networks inference needs (saved in every checkpoint under these names)."""
        return {"G_AB": unwrap(self.G_AB), "G_BA": unwrap(self.G_BA)}

    # -- training ----------------------------------------------------------------------------

    def set_step(self, step: int) -> None:
        """Host-side settings of a step: the scheduled learning rates."""
        self.opt_g.set_step(step)
        self.opt_d.set_step(step)

    def capture_ready(self) -> str | None:
        """Switch pools and optimizers to graph-safe behaviour (``ganforge.cudagraph``)."""
        return make_capturable(
            {"pool_A": self.pool_A, "pool_B": self.pool_B, "optim.g": self.opt_g, "optim.d": self.opt_d}
        )

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        real_A, real_B = batch["A"], batch["B"]
        rt, loss, probs = self.runtime, self.loss, self._d_probs
        self.set_step(step)

        # G step, with both discriminators frozen.
        set_requires_grad((self.D_A, self.D_B), False)
        with rt.autocast():
            fake_B = self.G_AB(real_A)
            rec_A = self.G_BA(fake_B)
            fake_A = self.G_BA(real_B)
            rec_B = self.G_AB(fake_A)
            # frozen Ds: their DDP wrappers are bypassed, no gradients of theirs to synchronise
            g_adv_AB = loss.g_loss(local(self.D_B)(fake_B), probabilities=probs)
            g_adv_BA = loss.g_loss(local(self.D_A)(fake_A), probabilities=probs)
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
        set_requires_grad((self.D_A, self.D_B), True)
        pooled_B = self.pool_B.query(fake_B.detach()) if self.pool_B else fake_B.detach()
        pooled_A = self.pool_A.query(fake_A.detach()) if self.pool_A else fake_A.detach()
        with rt.autocast():
            d_B = loss.d_loss(self.D_B(real_B), self.D_B(pooled_B), probabilities=probs) * self.d_loss_weight
            d_A = loss.d_loss(self.D_A(real_A), self.D_A(pooled_A), probabilities=probs) * self.d_loss_weight
            d_total = d_A + d_B
            gp_B = loss.penalty(self.D_B, real_B, pooled_B)
            gp_A = loss.penalty(self.D_A, real_A, pooled_A)
            if gp_A is not None and gp_B is not None:
                d_total = d_total + gp_A + gp_B
        self.opt_d.minimize(d_total)
        if self.scaler is not None:
            self.scaler.update()

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
        return {k: v.detach() for k, v in losses.items()}

    # -- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {name: net.state_dict() for name, net in self.networks.items()}
        state["opt_g"] = self.opt_g.state_dict()
        state["opt_d"] = self.opt_d.state_dict()
        if self.pool_A is not None:
            state["pool_A"] = self.pool_A.state_dict()
            state["pool_B"] = self.pool_B.state_dict()
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def local_state_dict(self) -> dict[str, Any]:
        """What differs between DDP ranks: each rank's image pools."""
        if self.pool_A is None:
            return {}
        return {"pool_A": self.pool_A.state_dict(), "pool_B": self.pool_B.state_dict()}

    def load_local_state_dict(self, state: dict[str, Any]) -> None:
        if self.pool_A is not None and state:
            self.pool_A.load_state_dict(state["pool_A"])
            self.pool_B.load_state_dict(state["pool_B"])

    def load_state_dict(self, state: dict[str, Any], inference_only: bool = False) -> None:
        for name, net in (self.generators if inference_only else self.networks).items():
            net.load_state_dict(state[name])
        if inference_only:
            return
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if self.pool_A is not None:
            self.pool_A.load_state_dict(state["pool_A"])
            self.pool_B.load_state_dict(state["pool_B"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])

    # -- inference ---------------------------------------------------------------------------

    def translate(self, images: Tensor, direction: Literal["a2b", "b2a"] = "a2b") -> Tensor:
        """Images in [-1, 1] -> translated images in [-1, 1] (float32)."""
        net = unwrap(self.G_AB if direction == "a2b" else self.G_BA)
        if self.runtime.compile:
            if direction not in self._compiled:
                self._compiled[direction] = torch.compile(net)
            net = self._compiled[direction]
        with eval_mode(net), self.runtime.autocast():
            return net(images).float()

    def sample_grid(self, holdout: dict[str, Tensor]) -> Tensor:
        """Rows of input | translation | reconstruction for A->B then B->A, in [0, 1]."""
        n = self.sample_count
        real_A, real_B = holdout["A"][:n], holdout["B"][:n]
        g_ab, g_ba = unwrap(self.G_AB), unwrap(self.G_BA)
        with eval_mode(g_ab, g_ba), self.runtime.autocast():
            fake_B = g_ab(real_A)
            rec_A = g_ba(fake_B)
            fake_A = g_ba(real_B)
            rec_B = g_ab(fake_A)
        rows = []
        k = min(len(real_A), len(real_B))
        for i in range(k):
            rows += [real_A[i], fake_B[i], rec_A[i], real_B[i], fake_A[i], rec_B[i]]
        images = torch.stack([r.float() for r in rows]).clamp(-1, 1).add(1).div(2)
        return make_grid(images.cpu(), nrow=6, padding=2, pad_value=1.0)
