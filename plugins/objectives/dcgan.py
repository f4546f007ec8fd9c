"""Unconditional generation (DCGAN and friends): noise in, images out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.utils import make_grid

from ganforge.runtime import Runtime, eval_mode, local, unwrap
from ganforge_plugins.objectives.optimizing import (
    ScheduledOptimizer,
    make_capturable,
    outputs_probabilities,
    set_requires_grad,
)


class UnconditionalGAN:
    """Noise-to-image GAN (DCGAN, S4): D step then G step, any adversarial loss, optional EMA of G.

    ``n_critic`` D steps per G step (5 is usual for ``wgan-gp``). With ``ema > 0`` a moving
    average of G's weights is kept and used for samples. Samples use a fixed noise batch drawn
    from ``sample_seed``.
    """

    required_sections = ("generator", "discriminator", "loss", "optim.g", "optim.d")
    kind = "generation"

    def __init__(
        self,
        recipe: dict[str, Any],
        build: Callable[..., Any],
        runtime: Runtime,
        n_critic: int = 1,
        ema: float = 0.0,
        sample_count: int = 64,
        sample_seed: int = 1234,
    ) -> None:
        self.runtime = runtime
        self.n_critic, self.ema_decay, self.sample_count = max(1, n_critic), ema, sample_count
        self.G = runtime.prepare(build("generator"))
        self.D = runtime.prepare(build("discriminator"))
        self.latent_dim = int(getattr(unwrap(self.G), "latent_dim", 100))
        self.loss = build("loss")
        schedule = build("schedule") if "schedule" in recipe else None
        self.scaler = runtime.grad_scaler()
        self.opt_g = ScheduledOptimizer(
            build("optim.g", params=list(self.G.parameters())), schedule, self.scaler
        )
        self.opt_d = ScheduledOptimizer(
            build("optim.d", params=list(self.D.parameters())), schedule, self.scaler
        )
        self.G_ema: nn.Module | None = None
        if ema > 0:
            self.G_ema = runtime.prepare(build("generator"), trainable=False)
            self.G_ema.load_state_dict(unwrap(self.G).state_dict())
            self.G_ema.requires_grad_(False)
        g = torch.Generator().manual_seed(sample_seed)
        self.fixed_noise = torch.randn(sample_count, self.latent_dim, generator=g).to(runtime.device)
        self._d_probs = outputs_probabilities(unwrap(self.D))

    @property
    def networks(self) -> dict[str, nn.Module]:
        nets = {"G": unwrap(self.G), "D": unwrap(self.D)}
        if self.G_ema is not None:
            nets["G_ema"] = self.G_ema
        return nets

    @property
    def generators(self) -> dict[str, nn.Module]:
        return {"G": unwrap(self.G), **({"G_ema": self.G_ema} if self.G_ema is not None else {})}

    def noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Latent vectors on the device (drawn on the CPU when a generator is given, for seeding)."""
        if generator is not None:
            return torch.randn(n, self.latent_dim, generator=generator).to(self.runtime.device)
        return torch.randn(n, self.latent_dim, device=self.runtime.device)

    def set_step(self, step: int) -> None:
        """Host-side settings of a step: the scheduled learning rates."""
        self.opt_g.set_step(step)
        self.opt_d.set_step(step)

    def step_variant(self, step: int) -> bool:
        """Whether G updates at this step (one CUDA graph per answer)."""
        return (step + 1) % self.n_critic == 0

    def capture_ready(self) -> str | None:
        """Switch the optimizers to graph-safe behaviour (``ganforge.cudagraph``)."""
        return make_capturable({"optim.g": self.opt_g, "optim.d": self.opt_d})

    def train_step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        real = batch["image"]
        rt, loss, probs = self.runtime, self.loss, self._d_probs
        self.set_step(step)
        z = self.noise(real.shape[0])

        with rt.autocast():
            fake = self.G(z)
            if rt.channels_last:
                fake = fake.contiguous(memory_format=torch.channels_last)
            d_loss = loss.d_loss(self.D(real), self.D(fake.detach()), probabilities=probs)
            gp = loss.penalty(self.D, real, fake.detach())
            d_total = d_loss if gp is None else d_loss + gp
        self.opt_d.minimize(d_total)

        losses = {"D": d_loss}
        if gp is not None:
            losses["gp"] = gp
        if self.step_variant(step):
            set_requires_grad((self.D,), False)
            with rt.autocast():
                g_loss = loss.g_loss(local(self.D)(fake), probabilities=probs)
            self.opt_g.minimize(g_loss)
            set_requires_grad((self.D,), True)
            losses["G"] = g_loss
            if self.G_ema is not None:
                self._update_ema()
        if self.scaler is not None:
            self.scaler.update()
        return {k: v.detach() for k, v in losses.items()}

    @torch.no_grad()
    def _update_ema(self) -> None:
        ema_params = list(self.G_ema.parameters())
        g = unwrap(self.G)
        torch._foreach_lerp_(ema_params, list(g.parameters()), 1.0 - self.ema_decay)
        for b_ema, b in zip(self.G_ema.buffers(), g.buffers()):
            b_ema.copy_(b)

    # -- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {name: net.state_dict() for name, net in self.networks.items()}
        state["opt_g"] = self.opt_g.state_dict()
        state["opt_d"] = self.opt_d.state_dict()
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any], inference_only: bool = False) -> None:
        for name, net in (self.generators if inference_only else self.networks).items():
            net.load_state_dict(state[name])
        if inference_only:
            return
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])

    # -- inference ---------------------------------------------------------------------------

    def generate(self, z: Tensor) -> Tensor:
        """Latents -> images in [-1, 1] (float32), from the EMA generator when there is one."""
        net = self.G_ema if self.G_ema is not None else unwrap(self.G)
        with eval_mode(net), self.runtime.autocast():
            return net(z.to(self.runtime.device)).float()

    def sample_grid(self, holdout: dict[str, Tensor] | None = None) -> Tensor:
        """The fixed-noise grid in [0, 1]."""
        images = self.generate(self.fixed_noise).clamp(-1, 1).add(1).div(2)
        nrow = max(1, int(round(len(images) ** 0.5)))
        return make_grid(images.cpu(), nrow=nrow, padding=2, pad_value=1.0)
