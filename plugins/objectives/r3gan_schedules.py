"""R3GAN's hyperparameter schedules over images seen, and its FFHQ-64 and CIFAR-10 presets as data.

From the official R3GAN, github.com/brownvc/R3GAN at commit
19a7ddf463fbac2bd39b4c1c73d63f1c441c7403: ``training/training_loop.py``
(``cosine_decay_with_warmup``, evaluated on the host before every step for the learning rate,
Adam's beta2, gamma, the EMA half-life and the augmentation probability, and the G_ema update)
and ``train.py`` (the presets) with the README's training commands (batch, GPUs, flags).
The reference has no linear schedule: every one is this cosine ramp. Pure Python, no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def value(
    start: float,
    end: float,
    images_seen: float,
    horizon: float,
    *,
    warmup_start: float = 0.0,
    warmup_images: float = 0,
    hold_images: float = 0,
) -> float:
    """The reference's ``cosine_decay_with_warmup``: a half-cosine ramp from ``start`` to ``end``.

    ``start + (1 - cos_ramp) * (end - start)`` with ``cos_ramp = (1 + cos(pi * t / T)) / 2``,
    ``t = images_seen - warmup_images - hold_images`` and ``T = horizon - warmup_images -
    hold_images``; ``end`` from ``horizon`` on. Before that, optionally, a linear warm-up from
    ``warmup_start`` to ``start`` over ``warmup_images`` and ``start`` held for ``hold_images``
    more (the R3GAN presets use neither).
    """
    t = images_seen - warmup_images - hold_images
    decay = 0.5 * (1.0 + math.cos(math.pi * t / float(horizon - warmup_images - hold_images)))
    current = start + (1.0 - decay) * (end - start)
    if hold_images > 0 and not images_seen > warmup_images + hold_images:
        current = start
    if warmup_images > 0 and images_seen < warmup_images:
        current = (start - warmup_start) / warmup_images * images_seen + warmup_start
    return float(end if images_seen > horizon else current)


def ema_beta(batch_size: int, half_life_images: float) -> float:
    """The G_ema decay per step: ``0.5 ** (batch / half_life)``, 0 (a copy) while the half-life is 0."""
    return 0.5 ** (batch_size / max(half_life_images, 1e-8))


@dataclass(frozen=True)
class Schedule:
    """One scheduled hyperparameter: :func:`value` from ``start`` to ``end`` over ``horizon`` images."""

    start: float
    end: float
    horizon: float

    def __call__(self, images_seen: float) -> float:
        return value(self.start, self.end, images_seen, self.horizon)


# The ADA pipeline's probability multipliers (train.py, --aug=1): the scheduled probability p
# scales each (StyleGAN2-ADA's AugmentPipe, plus cutout of half the image side).
ADA_PIPE = {
    "xflip": 1.0,
    "rotate90": 1.0,
    "xint": 1.0,
    "scale": 1.0,
    "rotate": 1.0,
    "aniso": 1.0,
    "xfrac": 1.0,
    "brightness": 0.5,
    "contrast": 0.5,
    "lumaflip": 0.5,
    "hue": 0.5,
    "saturation": 0.5,
    "cutout": 1.0,
}


@dataclass(frozen=True)
class R3GANPreset:
    """One ``train.py --preset`` with the README's command: networks, optimiser, schedules, data.

    Stage lists are in the generator's order (4x4 first); the discriminator takes them reversed.
    ``bf16_generator_stages`` are the generator stages the reference runs in bfloat16
    (``FP16Stages``; the discriminator's mirror them). Every schedule runs over
    ``schedules[...].horizon`` images and stays at its end value after.
    """

    image_size: int
    latent_dim: int
    widths: tuple[int, ...]
    cardinalities: tuple[int, ...]
    blocks: tuple[int, ...]
    expansion: int
    bf16_generator_stages: tuple[int, ...]
    conditional: bool
    batch_size: int
    gpus: int
    mirror: bool
    schedules: dict[str, Schedule]
    adam_beta1: float = 0.0
    adam_eps: float = 1e-8
    augment: dict[str, float] = field(default_factory=lambda: dict(ADA_PIPE))

    def at(self, images_seen: float) -> dict[str, float]:
        """Every scheduled value after ``images_seen`` images."""
        return {name: s(images_seen) for name, s in self.schedules.items()}


_HORIZON = 2e7  # decay_nimg: every schedule ends after 20M images

R3GAN_PRESETS: dict[str, R3GANPreset] = {
    # python train.py --data=ffhq-64x64.zip --gpus=8 --batch=256 --mirror=1 --aug=1 --preset=FFHQ-64
    "ffhq-64": R3GANPreset(
        image_size=64,
        latent_dim=64,
        widths=(768, 768, 768, 768, 384),
        cardinalities=(96, 96, 96, 96, 48),
        blocks=(2, 2, 2, 2, 2),
        expansion=2,
        bf16_generator_stages=(1, 2, 3, 4),
        conditional=False,
        batch_size=256,
        gpus=8,
        mirror=True,
        schedules={
            "lr": Schedule(2e-4, 5e-5, _HORIZON),
            "beta2": Schedule(0.9, 0.99, _HORIZON),
            "gamma": Schedule(2.0, 0.2, _HORIZON),
            "ema_half_life_images": Schedule(0.0, 500_000.0, _HORIZON),
            "augment_p": Schedule(0.0, 0.3, _HORIZON),
        },
    ),
    # python train.py --data=cifar10.zip --gpus=8 --batch=512 --mirror=1 --aug=1 --cond=1 --preset=CIFAR10
    "cifar-10": R3GANPreset(
        image_size=32,
        latent_dim=64,
        widths=(768, 768, 768, 768),
        cardinalities=(96, 96, 96, 96),
        blocks=(2, 2, 2, 2),
        expansion=2,
        bf16_generator_stages=(1, 2, 3),
        conditional=True,  # 10 classes; label embedding: 64 in G (latent_dim), 768 in D (widths[0])
        batch_size=512,
        gpus=8,
        mirror=True,
        schedules={
            "lr": Schedule(2e-4, 5e-5, _HORIZON),
            "beta2": Schedule(0.9, 0.99, _HORIZON),
            "gamma": Schedule(0.05, 0.005, _HORIZON),
            "ema_half_life_images": Schedule(0.0, 5_000_000.0, _HORIZON),
            "augment_p": Schedule(0.0, 0.55, _HORIZON),
        },
    ),
}
