"""Adversarial losses: least squares, binary cross-entropy, hinge and Wasserstein, plus penalties.

Every loss object has the same interface::

    d_loss(real_out, fake_out, *, probabilities=False) -> Tensor   # D loss, real + fake terms
    g_loss(fake_out, *, probabilities=False) -> Tensor             # G's adversarial loss
    penalty(discriminator, real, fake) -> Tensor | None            # extra D regulariser

``real_out`` / ``fake_out`` are discriminator outputs of any shape (per image or per patch);
each term is a mean over all elements. ``probabilities`` says whether they went through a
sigmoid; pass the discriminator's ``outputs_probabilities`` attribute
(``getattr(d, "outputs_probabilities", False)``). Only ``bce`` depends on it. Losses are computed
in float32 whatever the output dtype (bf16 autocast), and build their targets on the output's
device without host synchronisation.

Every loss takes ``gradient_penalty`` (WGAN-GP's interpolate penalty; ``wgan-gp`` calls it
``lambda_gp``) and ``r1_gamma`` (R1, a zero-centred gradient penalty on real images); ``penalty``
returns the sum of those that are on, or ``None``. Both differentiate the discriminator's output,
which must be a tensor (not the tuple some discriminators return).

Three more options shape the interpolate penalty: ``gp_center`` (the gradient norm it pulls
towards: 1 for WGAN-GP, 0 for a zero-centred one), ``gp_alpha`` (one interpolation weight per
sample, or ``batch``: one for the whole batch) and ``gp_reduce`` (how each sample's outputs, one
per patch, are reduced before differentiating: ``sum`` or ``mean``). UVCGAN2 (LS4GAN/uvcgan2,
``uvcgan2/torch/gradient_penalty.py``: ``GradientPenalty(mix_type="real-fake", center=0,
reduction="mean")``) is ``gp_center=0, gp_alpha="batch", gp_reduce="mean"`` with
``gradient_penalty=0.01`` for selfie2anime; its discriminator's keyword arguments (the batch
head's queued bodies) are interpolated with the same weight: ``penalty(..., real_kwargs=...,
fake_kwargs=...)``.
"""

from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge import GanforgeError, Range

Weight = Annotated[float, Range(0.0)]
Label = Annotated[float, Range(-1e18, 1e18, why="float32: the squared error of a larger label overflows")]
Probability = Annotated[float, Range(0.0, 1.0)]  # BCE targets are probabilities
Center = Annotated[float, Range(0.0, 1e18, why="float32: the square of a larger norm overflows")]
GPAlpha = Literal["sample", "batch"]
GPReduce = Literal["sum", "mean"]


def _scores(out: Tensor) -> Tensor:
    """A discriminator's output as float32 scores; a tuple output is refused with its reason."""
    if isinstance(out, tuple | list):
        raise TypeError(
            "the discriminator returns a tuple (like U-GAT-IT's (logits, cam_logit)); the bundled "
            "losses take one tensor: pair it with an objective made for it"
        )
    return out.float()


def _logits(out: Tensor, probabilities: bool, eps: float = 1e-7) -> Tensor:
    """Raw scores: a sigmoid's outputs (``probabilities``) clamped to ``[eps, 1 - eps]`` and
    mapped back to logits, anything else as float32 scores."""
    out = _scores(out)
    return torch.logit(out, eps=eps) if probabilities else out


def _total(terms: list[Tensor]) -> Tensor | None:
    """The sum of the penalty terms that are on, in order; ``None`` when none is."""
    if not terms:
        return None
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def gradient_square_norms(inputs: Tensor, outputs: Tensor) -> Tensor:
    """``||grad_x D(x_i)||^2`` per image, ``[N]`` float32 (R3GAN's ``ZeroCenteredGradientPenalty``).

    ``inputs`` must require grad and ``outputs`` come from them (one score, or any number of
    scores, per image: their sum is differentiated, so each image gets the gradient of its own
    scores). The graph is kept (``create_graph``) so a penalty of it trains the discriminator.
    """
    (grad,) = torch.autograd.grad(outputs.float().sum(), inputs, create_graph=True)
    return grad.float().square().flatten(1).sum(1)


def _mix_kwargs(alpha: Tensor, real: dict[str, Any] | None, fake: dict[str, Any] | None) -> dict[str, Any]:
    """Interpolate the discriminator's keyword arguments like its input: tensors as
    ``alpha * real + (1 - alpha) * fake`` (detached, float32), anything else must be equal."""
    real, fake = real or {}, fake or {}
    if real.keys() != fake.keys():
        raise ValueError(
            f"gradient penalty: real_kwargs {sorted(real)} and fake_kwargs {sorted(fake)} differ"
        )
    mixed = {}
    for key, r in real.items():
        f = fake[key]
        if isinstance(r, Tensor) and isinstance(f, Tensor):
            mixed[key] = alpha * r.detach().float() + (1.0 - alpha) * f.detach().float()
        elif isinstance(r, Tensor) or isinstance(f, Tensor) or r != f:
            raise ValueError(f"gradient penalty: real and fake {key!r} must both be tensors or be equal")
        else:
            mixed[key] = r
    return mixed


def gradient_penalty(
    discriminator: nn.Module,
    real: Tensor,
    fake: Tensor,
    weight: float,
    *,
    center: float = 1.0,
    alpha: GPAlpha = "sample",
    reduce: GPReduce = "sum",
    real_kwargs: dict[str, Any] | None = None,
    fake_kwargs: dict[str, Any] | None = None,
) -> Tensor:
    """``weight * mean((||grad D(x_hat)||_2 - center)^2)`` on random interpolates of real and fake.

    ``x_hat = a * real + (1 - a) * fake`` with ``a ~ U[0, 1]`` per sample (``alpha="sample"``,
    Gulrajani et al.) or one ``a`` for the batch (``alpha="batch"``, UVCGAN2). The gradient is
    that of the sum over samples of each sample's outputs, summed (``reduce="sum"``) or averaged
    (``reduce="mean"``). ``center=0`` is the squared norm itself (no square root).
    ``real_kwargs`` / ``fake_kwargs`` are keyword arguments of the discriminator for the real and
    the fake batch; their tensors are interpolated with the same ``a`` (``alpha="batch"`` only,
    their batch need not match). Inputs are detached, so the penalty trains only the
    discriminator. If the batches differ in size (a pool can return a different number of fakes)
    the first ``min`` samples of each are paired. The interpolation, gradient and norm are
    float32; the discriminator itself still runs under whatever autocast is active. The weight
    is drawn on the device: no host synchronisation.
    """
    if alpha not in ("sample", "batch") or reduce not in ("sum", "mean"):
        raise ValueError(
            f"gradient penalty: alpha must be sample or batch and reduce sum or mean, "
            f"got {alpha!r} and {reduce!r}"
        )
    if alpha == "sample" and (real_kwargs or fake_kwargs):
        raise ValueError("gradient penalty: discriminator kwargs are interpolated only with alpha='batch'")
    n = min(real.shape[0], fake.shape[0])
    real = real[:n].detach().float()
    fake = fake[:n].detach().float()
    shape = (n,) + (1,) * (real.dim() - 1) if alpha == "sample" else (1,) * real.dim()
    a = torch.rand(shape, device=real.device, dtype=torch.float32)
    x_hat = (a * real + (1.0 - a) * fake).requires_grad_(True)
    kwargs = _mix_kwargs(a.reshape(()), real_kwargs, fake_kwargs) if alpha == "batch" else {}
    out = _scores(discriminator(x_hat, **kwargs))
    total = out.sum() if reduce == "sum" else out.reshape(out.shape[0], -1).mean(1).sum()
    sq_norm = gradient_square_norms(x_hat, total)
    if center == 0:
        return weight * sq_norm.mean()
    # The epsilon keeps the norm differentiable at a zero gradient.
    return weight * (sq_norm.add(1e-12).sqrt() - center).pow(2).mean()


def r1_penalty(
    discriminator: nn.Module, real: Tensor, gamma: float, real_kwargs: dict[str, Any] | None = None
) -> Tensor:
    """R1 (Mescheder et al.): ``gamma / 2 * mean_i ||grad_x D(x_i)||^2`` over the real images.

    Zero-centred: it pushes D's gradient on the data towards zero. ``real`` is detached, so the
    penalty trains only the discriminator. The input and the gradient are float32; the
    discriminator itself runs under whatever autocast is active. No host synchronisation.
    ``real_kwargs`` are passed to the discriminator as they are.
    """
    x = real.detach().float().requires_grad_(True)
    out = _scores(discriminator(x, **(real_kwargs or {})))
    return (0.5 * gamma) * gradient_square_norms(x, out).mean()


class AdversarialLoss:
    """Shared part of the bundled losses: the optional interpolate gradient penalty and R1."""

    def __init__(
        self,
        gradient_penalty: Weight = 0.0,
        r1_gamma: Weight = 0.0,
        gp_center: Center = 1.0,
        gp_alpha: GPAlpha = "sample",
        gp_reduce: GPReduce = "sum",
    ) -> None:
        if gradient_penalty < 0:
            raise GanforgeError(f"gradient_penalty must be >= 0, got {gradient_penalty}")
        if r1_gamma < 0:
            raise ValueError(f"r1_gamma must be >= 0, got {r1_gamma}")
        if gp_center < 0:
            raise ValueError(f"gp_center must be >= 0, got {gp_center}")
        if gp_alpha not in ("sample", "batch"):
            raise ValueError(f"gp_alpha must be 'sample' or 'batch', got {gp_alpha!r}")
        if gp_reduce not in ("sum", "mean"):
            raise ValueError(f"gp_reduce must be 'sum' or 'mean', got {gp_reduce!r}")
        self.gradient_penalty = float(gradient_penalty)
        self.r1_gamma = float(r1_gamma)
        self.gp_center = float(gp_center)
        self.gp_alpha = gp_alpha
        self.gp_reduce = gp_reduce

    def d_loss(self, real_out: Tensor, fake_out: Tensor, *, probabilities: bool = False) -> Tensor:
        raise NotImplementedError

    def g_loss(self, fake_out: Tensor, *, probabilities: bool = False) -> Tensor:
        raise NotImplementedError

    def penalty(
        self,
        discriminator: nn.Module,
        real: Tensor,
        fake: Tensor,
        *,
        real_kwargs: dict[str, Any] | None = None,
        fake_kwargs: dict[str, Any] | None = None,
    ) -> Tensor | None:
        """The sum of the gradient penalty and R1, each when its weight is positive; ``None`` if neither.

        ``real_kwargs`` / ``fake_kwargs``: the discriminator's keyword arguments for each batch
        (interpolated for the gradient penalty, the real ones for R1).
        """
        terms = []
        if self.gradient_penalty > 0:
            terms.append(
                gradient_penalty(
                    discriminator,
                    real,
                    fake,
                    self.gradient_penalty,
                    center=self.gp_center,
                    alpha=self.gp_alpha,
                    reduce=self.gp_reduce,
                    real_kwargs=real_kwargs,
                    fake_kwargs=fake_kwargs,
                )
            )
        if self.r1_gamma > 0:
            terms.append(r1_penalty(discriminator, real, self.r1_gamma, real_kwargs))
        return _total(terms)


class LSGANLoss(AdversarialLoss):
    """Least-squares GAN loss (Mao et al.): mean squared error against real/fake targets.

    ``d_loss = mse(real_out, real_label) + mse(fake_out, fake_label)`` and
    ``g_loss = mse(fake_out, real_label)``, as the official CycleGAN ``GANLoss('lsgan')`` (whose
    objective halves the D loss itself). Outputs are used as they are, so ``probabilities`` makes
    no difference. ``gradient_penalty > 0`` adds the WGAN-GP interpolate penalty with that weight,
    ``r1_gamma > 0`` the R1 penalty on real images.
    """

    def __init__(
        self,
        real_label: Label = 1.0,
        fake_label: Label = 0.0,
        gradient_penalty: Weight = 0.0,
        r1_gamma: Weight = 0.0,
        gp_center: Center = 1.0,
        gp_alpha: GPAlpha = "sample",
        gp_reduce: GPReduce = "sum",
    ) -> None:
        super().__init__(gradient_penalty, r1_gamma, gp_center, gp_alpha, gp_reduce)
        self.real_label = float(real_label)
        self.fake_label = float(fake_label)

    def _mse(self, out: Tensor, label: float) -> Tensor:
        out = _scores(out)
        return F.mse_loss(out, torch.full_like(out, label))

    def d_loss(self, real_out: Tensor, fake_out: Tensor, *, probabilities: bool = False) -> Tensor:
        return self._mse(real_out, self.real_label) + self._mse(fake_out, self.fake_label)

    def g_loss(self, fake_out: Tensor, *, probabilities: bool = False) -> Tensor:
        return self._mse(fake_out, self.real_label)


class BCELoss(AdversarialLoss):
    """Binary cross-entropy GAN loss (the original GAN, non-saturating G), with label smoothing.

    ``d_loss = bce(real_out, real_label) + bce(fake_out, fake_label)`` and
    ``g_loss = bce(fake_out, 1)``: the labels smooth the discriminator's targets only (one-sided
    smoothing, Salimans et al.), the generator always aims at 1. Logits (``probabilities=False``)
    go through ``binary_cross_entropy_with_logits``; probabilities are clamped to
    ``[1e-7, 1 - 1e-7]`` before the logs, which keeps them finite and autocast-safe.
    ``gradient_penalty > 0`` adds the WGAN-GP interpolate penalty with that weight, ``r1_gamma > 0``
    the R1 penalty on real images.
    """

    _EPS = 1e-7

    def __init__(
        self,
        real_label: Probability = 1.0,
        fake_label: Probability = 0.0,
        gradient_penalty: Weight = 0.0,
        r1_gamma: Weight = 0.0,
        gp_center: Center = 1.0,
        gp_alpha: GPAlpha = "sample",
        gp_reduce: GPReduce = "sum",
    ) -> None:
        super().__init__(gradient_penalty, r1_gamma, gp_center, gp_alpha, gp_reduce)
        self.real_label = float(real_label)
        self.fake_label = float(fake_label)

    def _bce(self, out: Tensor, label: float, probabilities: bool) -> Tensor:
        out = _scores(out)
        target = torch.full_like(out, label)
        if not probabilities:
            return F.binary_cross_entropy_with_logits(out, target)
        p = out.clamp(self._EPS, 1.0 - self._EPS)
        return -(target * torch.log(p) + (1.0 - target) * torch.log1p(-p)).mean()

    def d_loss(self, real_out: Tensor, fake_out: Tensor, *, probabilities: bool = False) -> Tensor:
        return self._bce(real_out, self.real_label, probabilities) + self._bce(
            fake_out, self.fake_label, probabilities
        )

    def g_loss(self, fake_out: Tensor, *, probabilities: bool = False) -> Tensor:
        return self._bce(fake_out, 1.0, probabilities)


class WGANGPLoss(AdversarialLoss):
    """Wasserstein GAN loss with gradient penalty (Gulrajani et al.); D outputs are critic scores.

    ``d_loss = -mean(real_out) + mean(fake_out)``, ``g_loss = -mean(fake_out)`` and
    ``penalty = lambda_gp * mean((||grad D(x_hat)||_2 - 1)^2)`` on random interpolates
    (``None`` when ``lambda_gp`` is 0). The critic should output raw scores (no sigmoid);
    ``probabilities`` is ignored. ``r1_gamma > 0`` adds the R1 penalty on real images.
    """

    def __init__(
        self,
        lambda_gp: Weight = 10.0,
        r1_gamma: Weight = 0.0,
        gp_center: Center = 1.0,
        gp_alpha: GPAlpha = "sample",
        gp_reduce: GPReduce = "sum",
    ) -> None:
        if lambda_gp < 0:
            raise GanforgeError(f"wgan-gp: lambda_gp must be >= 0, got {lambda_gp}")
        super().__init__(lambda_gp, r1_gamma, gp_center, gp_alpha, gp_reduce)
        self.lambda_gp = float(lambda_gp)

    def d_loss(self, real_out: Tensor, fake_out: Tensor, *, probabilities: bool = False) -> Tensor:
        return _scores(fake_out).mean() - _scores(real_out).mean()

    def g_loss(self, fake_out: Tensor, *, probabilities: bool = False) -> Tensor:
        return -_scores(fake_out).mean()


class HingeLoss(AdversarialLoss):
    """Hinge GAN loss (Lim & Ye; SNGAN, SAGAN, BigGAN): margins of 1 for D, raw scores for G.

    ``d_loss = mean(relu(1 - real_out)) + mean(relu(1 + fake_out))`` and
    ``g_loss = -mean(fake_out)``. It is defined on raw scores: with ``probabilities=True`` the
    outputs are clamped to ``[1e-7, 1 - 1e-7]`` and mapped back to logits first.
    ``gradient_penalty > 0`` adds the WGAN-GP interpolate penalty with that weight, ``r1_gamma > 0``
    the R1 penalty on real images.
    """

    def d_loss(self, real_out: Tensor, fake_out: Tensor, *, probabilities: bool = False) -> Tensor:
        real = _logits(real_out, probabilities)
        fake = _logits(fake_out, probabilities)
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()

    def g_loss(self, fake_out: Tensor, *, probabilities: bool = False) -> Tensor:
        return -_logits(fake_out, probabilities).mean()
