"""The relativistic pairing GAN loss (RpGAN) with R1 and R2, as R3GAN trains with it.

Follows the official R3GAN, github.com/brownvc/R3GAN at commit
19a7ddf463fbac2bd39b4c1c73d63f1c441c7403, ``R3GAN/Trainer.py`` (``AdversarialTraining``): each
real image is paired with the generated image at the same batch position,

    D loss  = mean_i softplus(-(D(real_i) - D(fake_i)))
    G loss  = mean_i softplus(-(D(fake_i) - D(real_i)))
    penalty = gamma / 2 * mean_i (||grad_x D(real_i)||^2 + ||grad_x D(fake_i)||^2)   (R1 + R2)

The reference adds the penalty to the D loss per image (``AdversarialLoss + (Gamma / 2) *
(R1Penalty + R2Penalty)``, then the mean): the same sum. Its gradients are taken with respect to
the images before augmentation, from the same discriminator forward as the loss (real and
generated images are made to require grad and go through ``Preprocessor`` then D): use
:meth:`RpGANLoss.penalty_from` for that. :meth:`RpGANLoss.penalty` follows the common loss
contract and runs the discriminator again on the images it is given.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from .adversarial import AdversarialLoss, Weight, _logits, _total, gradient_square_norms, r1_penalty


def r2_penalty(
    discriminator: nn.Module, fake: Tensor, gamma: float, fake_kwargs: dict[str, Any] | None = None
) -> Tensor:
    """R2: ``gamma / 2 * mean_i ||grad_x D(x_i)||^2`` over generated images, i.e. R1 of the fakes.

    ``fake`` is detached, so the penalty trains only the discriminator. The input and the
    gradient are float32; the discriminator runs under whatever autocast is active.
    ``fake_kwargs`` are passed to the discriminator as they are.
    """
    return r1_penalty(discriminator, fake, gamma, fake_kwargs)


def _paired(real: Tensor, fake: Tensor) -> None:
    # The pairing is positional: a pool returning another number of fakes has no partner for each.
    if real.shape != fake.shape:
        raise ValueError(
            f"rpgan pairs each real score with the fake one at its position: got real {tuple(real.shape)} "
            f"and fake {tuple(fake.shape)} scores (use the same batch size and no image pool)"
        )


class RpGANLoss(AdversarialLoss):
    """Relativistic pairing GAN loss with R1 and R2 (R3GAN): ``softplus(-(D(real) - D(fake)))``.

    ``d_loss(real_out, fake_out) = mean(softplus(fake_out - real_out))`` and
    ``g_loss(fake_out, real_out=...) = mean(softplus(real_out - fake_out))``: the generator's
    loss needs the discriminator's scores of a real batch too (pass them detached or not; only
    the fake scores should carry the generator's graph). Scores are paired by position, so both
    batches must have the same shape. ``r1_gamma`` and ``r2_gamma`` weigh the zero-centred
    gradient penalties on real and on generated images, each ``gamma / 2 * mean ||grad||^2``; R3GAN
    uses one gamma for both (FFHQ-64: 2 decaying to 0.2, CIFAR-10: 0.05 to 0.005).
    ``gradient_penalty > 0`` adds the WGAN-GP interpolate penalty. With ``probabilities=True``
    the outputs are mapped back to logits first. Float32, no host synchronisation.
    """

    def __init__(
        self, r1_gamma: Weight = 0.0, r2_gamma: Weight = 0.0, gradient_penalty: Weight = 0.0
    ) -> None:
        super().__init__(gradient_penalty, r1_gamma)
        if r2_gamma < 0:
            raise ValueError(f"r2_gamma must be >= 0, got {r2_gamma}")
        self.r2_gamma = float(r2_gamma)

    def d_loss(self, real_out: Tensor, fake_out: Tensor, *, probabilities: bool = False) -> Tensor:
        real = _logits(real_out, probabilities)
        fake = _logits(fake_out, probabilities)
        _paired(real, fake)
        return F.softplus(-(real - fake)).mean()

    def g_loss(
        self, fake_out: Tensor, *, real_out: Tensor | None = None, probabilities: bool = False
    ) -> Tensor:
        if real_out is None:
            raise TypeError("rpgan: g_loss needs real_out, the discriminator's scores of a real batch")
        real = _logits(real_out, probabilities)
        fake = _logits(fake_out, probabilities)
        _paired(real, fake)
        return F.softplus(-(fake - real)).mean()

    def penalty(
        self,
        discriminator: nn.Module,
        real: Tensor,
        fake: Tensor,
        *,
        real_kwargs: dict[str, Any] | None = None,
        fake_kwargs: dict[str, Any] | None = None,
    ) -> Tensor | None:
        """R1 on ``real`` + R2 on ``fake`` (+ the interpolate penalty), running D again on each.

        ``None`` when every weight is 0. ``real_kwargs`` / ``fake_kwargs`` as the base class's.
        """
        base = super().penalty(discriminator, real, fake, real_kwargs=real_kwargs, fake_kwargs=fake_kwargs)
        terms = [] if base is None else [base]  # the interpolate penalty and R1
        if self.r2_gamma > 0:
            terms.append(r2_penalty(discriminator, fake, self.r2_gamma, fake_kwargs))
        return _total(terms)

    def penalty_from(
        self,
        real: Tensor,
        real_out: Tensor,
        fake: Tensor,
        fake_out: Tensor,
        *,
        scale: Tensor | float | None = None,
    ) -> Tensor | None:
        """R1 + R2 from scores already computed, as the reference: no extra discriminator pass.

        ``real`` and ``fake`` are the images made to require grad before anything else (the
        augmentation included) and ``real_out`` / ``fake_out`` the discriminator's scores of
        them. ``scale`` multiplies both terms: a float, or a 0-d device tensor (a schedule's
        ``gamma(t) / gamma(0)`` written in place keeps a captured step valid). ``None`` when
        ``r1_gamma`` and ``r2_gamma`` are both 0; the interpolate penalty is not included.
        """
        terms = []
        if self.r1_gamma > 0:
            terms.append((0.5 * self.r1_gamma) * gradient_square_norms(real, real_out).mean())
        if self.r2_gamma > 0:
            terms.append((0.5 * self.r2_gamma) * gradient_square_norms(fake, fake_out).mean())
        total = _total(terms)
        return total if total is None or scale is None else total * scale
