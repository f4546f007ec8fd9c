"""U-GAT-IT networks (Kim et al., 2020), laid out as the reference znxlwm/UGATIT-pytorch.

Module names follow the reference (``DownBlock``, ``gap_fc``, ``gmp_fc``, ``conv1x1``, ``FC``,
``gamma``, ``beta``, ``UpBlock1_<i>``, ``UpBlock2``; ``model``, ``conv`` in the discriminator),
with one change: spectral norm uses ``torch.nn.utils.parametrizations`` (keys
``parametrizations.weight.original`` instead of ``weight_orig``). AdaILN and ILN use the true
instance and layer statistics (see ``_ada_iln``).
"""

from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from ganforge import Range

from .layers import InstanceNorm2d
from .patchgan import conv_chain_min_size
from .resnet import Blocks, ResnetBlock, Width, resnet_size_problem

# Its MLP reads the whole (image_size / 4)**2 map unless light: memory grows with the square.
UGATITSize = Annotated[int, Range(4, 16384, why="memory: the MLP's input grows with its square")]
DiscLayers = Annotated[int, Range(3, 30, why="each layer halves the image: 30 need sides of 2**30 px")]


def _ada_iln(x: Tensor, rho: Tensor, gamma: Tensor, beta: Tensor, eps: float, correction: int = 0) -> Tensor:
    """``(rho * IN(x) + (1 - rho) * LN(x)) * gamma + beta`` with float32 statistics.

    IN normalises each channel of each image over ``(H, W)``, LN each image over ``(C, H, W)``,
    by default with the biased variance, as the paper and the official TensorFlow release.
    ``correction=1`` is the unbiased variance of the PyTorch reference's ``torch.var`` (its
    earliest versions nested ``torch.var`` over H then over W, which is not the variance of the
    map). ``rho``, ``gamma`` and ``beta`` broadcast against ``[N, C, H, W]``.
    """
    xf = x.float()
    in_var, in_mean = torch.var_mean(xf, dim=(2, 3), keepdim=True, correction=correction)
    ln_var, ln_mean = torch.var_mean(xf, dim=(1, 2, 3), keepdim=True, correction=correction)
    out_in = (xf - in_mean) * torch.rsqrt(in_var + eps)
    out_ln = (xf - ln_mean) * torch.rsqrt(ln_var + eps)
    rho = rho.float()
    out = rho * out_in + (1.0 - rho) * out_ln
    return (out * gamma.float() + beta.float()).to(x.dtype)


class AdaILN(nn.Module):
    """Adaptive instance-layer norm: a learnt per-channel mix of IN and LN, scaled by given gamma/beta.

    ``forward(x, gamma, beta)`` with ``x`` ``[N, C, H, W]`` and ``gamma``, ``beta`` ``[N, C]`` (from
    the generator's MLP). ``rho`` (``[1, C, 1, 1]``, starts at 0.9) is kept in [0, 1] by the
    generator's ``clip_rho``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, correction: int = 0) -> None:
        super().__init__()
        self.eps = eps
        self.correction = correction
        self.rho = nn.Parameter(torch.full((1, num_features, 1, 1), 0.9))

    def forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        return _ada_iln(
            x, self.rho, gamma[:, :, None, None], beta[:, :, None, None], self.eps, self.correction
        )


class ILN(nn.Module):
    """Instance-layer norm: a learnt per-channel mix of IN and LN with its own affine gamma/beta.

    ``rho`` starts at 0 (pure LN), ``gamma`` at 1 and ``beta`` at 0, all ``[1, C, 1, 1]``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, correction: int = 0) -> None:
        super().__init__()
        self.eps = eps
        self.correction = correction
        self.rho = nn.Parameter(torch.zeros(1, num_features, 1, 1))
        self.gamma = nn.Parameter(torch.ones(1, num_features, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, num_features, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return _ada_iln(x, self.rho, self.gamma, self.beta, self.eps, self.correction)


class ResnetAdaILNBlock(nn.Module):
    """Residual block of the U-GAT-IT decoder: (pad, conv3, AdaILN, ReLU, pad, conv3, AdaILN) + x."""

    def __init__(self, dim: int, use_bias: bool = False, correction: int = 0) -> None:
        super().__init__()
        self.pad1 = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=0, bias=use_bias)
        self.norm1 = AdaILN(dim, correction=correction)
        self.relu1 = nn.ReLU(True)
        self.pad2 = nn.ReflectionPad2d(1)
        self.conv2 = nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=0, bias=use_bias)
        self.norm2 = AdaILN(dim, correction=correction)

    def forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        out = self.relu1(self.norm1(self.conv1(self.pad1(x)), gamma, beta))
        out = self.norm2(self.conv2(self.pad2(out)), gamma, beta)
        return out + x


def _cam(x: Tensor, gap_fc: nn.Linear, gmp_fc: nn.Linear, weight_gap: Tensor, weight_gmp: Tensor):
    """Class activation map: GAP and GMP logits ``[N, 2]`` and the two weighted maps, concatenated."""
    n = x.shape[0]
    gap_logit = gap_fc(F.adaptive_avg_pool2d(x, 1).view(n, -1))
    gmp_logit = gmp_fc(F.adaptive_max_pool2d(x, 1).view(n, -1))
    # Each channel weighted by its logit weight: where the auxiliary classifier looks.
    gap = x * weight_gap[:, :, None, None]
    gmp = x * weight_gmp[:, :, None, None]
    return torch.cat([gap_logit, gmp_logit], 1), torch.cat([gap, gmp], 1)


class UGATITGenerator(nn.Module):
    """U-GAT-IT generator: ResNet encoder, CAM attention, AdaILN decoder driven by an MLP.

    Encoder: reflect-pad, c7, IN, ReLU, two stride-2 convs (IN, ReLU), ``blocks`` residual
    blocks; CAM: bias-free ``Linear(4*ngf, 1)`` logits on the global average and max pools, the
    maps weighted by those weights, a 1x1 conv and ReLU, and a heatmap (the channel sum); the
    gamma/beta MLP reads the whole flattened map (``light=False``, so the input side must equal
    ``image_size``) or its global average (``light=True``, any side divisible by 4); decoder:
    ``blocks`` AdaILN residual blocks, two (nearest x2, reflect-pad, conv3, ILN, ReLU), reflect-pad,
    c7, tanh.

    ``forward(x)`` is the translated image (inference); ``forward_cam(x)`` returns
    ``(image, cam_logit [N, 2], heatmap [N, 1, H/4, W/4])`` for training. Call ``clip_rho()``
    after each optimizer step (the reference's ``RhoClipper(0, 1)``). The reference uses
    PyTorch's default initialisation: build it with ``init = "none"`` to match.

    ``variance`` is the variance AdaILN and ILN normalise by: ``biased`` (the paper and the
    TensorFlow release) or ``unbiased`` (the PyTorch reference's ``torch.var``; what
    ``ganforge convert --from ugatit`` sets, so converted weights give the reference's outputs).
    """

    @classmethod
    def check_image_size(cls, options: dict[str, Any], size: int) -> str | None:
        """ResNet-encoder sizes; with ``light=False`` exactly its own ``image_size``."""
        problem = resnet_size_problem(size)
        own = options.get("image_size", 256)
        if problem is None and not options.get("light", False) and size != own:
            problem = (
                f"with light=false its MLP is sized for {own} px images; set generator.image_size={size}"
            )
        return problem

    def __init__(
        self,
        in_channels: Width = 3,
        out_channels: Width = 3,
        ngf: Width = 64,
        blocks: Blocks = 4,
        image_size: UGATITSize = 256,
        light: bool = False,
        variance: Literal["biased", "unbiased"] = "biased",
    ) -> None:
        super().__init__()
        if variance not in ("biased", "unbiased"):
            raise ValueError(f"ugatit generator: variance must be 'biased' or 'unbiased', got {variance!r}")
        correction = 1 if variance == "unbiased" else 0
        if min(in_channels, out_channels, ngf) < 1 or blocks < 0:
            raise ValueError(
                f"ugatit generator: channels and ngf must be >= 1 and blocks >= 0, got "
                f"in_channels={in_channels}, out_channels={out_channels}, ngf={ngf}, blocks={blocks}"
            )
        if image_size < 4 or image_size % 4:
            raise ValueError(
                f"ugatit generator: image_size must be a positive multiple of 4, got {image_size}"
            )
        self.size_multiple = 4
        self.image_size = image_size
        self.light = light
        self.blocks = blocks
        dim = ngf * 4

        down: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, kernel_size=7, stride=1, padding=0, bias=False),
            InstanceNorm2d(ngf),
            nn.ReLU(True),
        ]
        for i in range(2):
            ch = ngf * 2**i
            down += [
                nn.ReflectionPad2d(1),
                nn.Conv2d(ch, ch * 2, kernel_size=3, stride=2, padding=0, bias=False),
                InstanceNorm2d(ch * 2),
                nn.ReLU(True),
            ]
        down += [ResnetBlock(dim, "instance", dropout=False, use_bias=False) for _ in range(blocks)]
        self.DownBlock = nn.Sequential(*down)

        self.gap_fc = nn.Linear(dim, 1, bias=False)
        self.gmp_fc = nn.Linear(dim, 1, bias=False)
        self.conv1x1 = nn.Conv2d(dim * 2, dim, kernel_size=1, stride=1, bias=True)
        self.relu = nn.ReLU(True)

        mlp_in = dim if light else (image_size // 4) ** 2 * dim
        self.FC = nn.Sequential(
            nn.Linear(mlp_in, dim, bias=False),
            nn.ReLU(True),
            nn.Linear(dim, dim, bias=False),
            nn.ReLU(True),
        )
        self.gamma = nn.Linear(dim, dim, bias=False)
        self.beta = nn.Linear(dim, dim, bias=False)

        for i in range(blocks):
            self.add_module(
                f"UpBlock1_{i + 1}", ResnetAdaILNBlock(dim, use_bias=False, correction=correction)
            )

        up: list[nn.Module] = []
        for i in range(2):
            ch = ngf * 2 ** (2 - i)
            up += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.ReflectionPad2d(1),
                nn.Conv2d(ch, ch // 2, kernel_size=3, stride=1, padding=0, bias=False),
                ILN(ch // 2, correction=correction),
                nn.ReLU(True),
            ]
        up += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, out_channels, kernel_size=7, stride=1, padding=0, bias=False),
            nn.Tanh(),
        ]
        self.UpBlock2 = nn.Sequential(*up)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_cam(x)[0]

    def forward_cam(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(image, cam_logit [N, 2], heatmap [N, 1, H/4, W/4])``: the image and the CAM outputs."""
        h, w = x.shape[-2:]
        if not self.light and (h != self.image_size or w != self.image_size):
            raise ValueError(
                f"ugatit generator: input is {h}x{w} but image_size={self.image_size} "
                f"(light=False sizes its MLP for image_size; use light=True for other sizes)"
            )
        x = self.DownBlock(x)
        cam_logit, x = _cam(x, self.gap_fc, self.gmp_fc, self.gap_fc.weight, self.gmp_fc.weight)
        x = self.relu(self.conv1x1(x))
        heatmap = x.sum(dim=1, keepdim=True)
        if self.light:
            style = self.FC(F.adaptive_avg_pool2d(x, 1).flatten(1))
        else:
            style = self.FC(x.flatten(1))
        gamma, beta = self.gamma(style), self.beta(style)
        for i in range(self.blocks):
            x = getattr(self, f"UpBlock1_{i + 1}")(x, gamma, beta)
        return self.UpBlock2(x), cam_logit, heatmap

    @torch.no_grad()
    def clip_rho(self) -> None:
        """Clamp every AdaILN and ILN ``rho`` to [0, 1] in place (the reference's ``RhoClipper``)."""
        for m in self.modules():
            if isinstance(m, AdaILN | ILN):
                m.rho.clamp_(0.0, 1.0)


class UGATITDiscriminator(nn.Module):
    """U-GAT-IT discriminator: spectral-normed PatchGAN with a CAM head; returns ``(logits, cam_logit)``.

    Unlike the other discriminators, ``forward`` returns a tuple: the patch logits
    ``[N, 1, h, w]`` and the CAM logits ``[N, 2]`` (GAP and GMP); both are raw scores
    (``outputs_probabilities = False``). ``layers=5`` is the reference's local discriminator
    (256 px in, 30x30 out), ``layers=7`` the global one (6x6 out; it needs inputs of at least
    about 96 px). Every conv and linear layer is spectral-normed except the 1x1 conv, as the
    reference. Build it with ``init = "none"`` to match the reference's initialisation.
    """

    @classmethod
    def check_image_size(cls, options: dict[str, Any], size: int) -> str | None:
        """Why ``size`` px square images are too small for this many layers, or None."""
        layers = options.get("layers", 5)
        convs = [(4, 2, 0, 1, 1)] * (layers - 2) + [(4, 1, 0, 1, 1), (4, 1, 0, 1, 1)]
        need = conv_chain_min_size(convs)
        if need is None or size < need:
            return f"with layers={layers} it needs images of at least {need or 2**24} px (got {size})"
        return None

    def __init__(self, in_channels: Width = 3, ndf: Width = 64, layers: DiscLayers = 5) -> None:
        super().__init__()
        if in_channels < 1 or ndf < 1 or layers < 3:
            raise ValueError(
                f"ugatit discriminator: need in_channels, ndf >= 1 and layers >= 3, got "
                f"in_channels={in_channels}, ndf={ndf}, layers={layers}"
            )
        self.outputs_probabilities = False
        model: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            spectral_norm(nn.Conv2d(in_channels, ndf, kernel_size=4, stride=2, padding=0, bias=True)),
            nn.LeakyReLU(0.2, True),
        ]
        for i in range(1, layers - 2):
            ch = ndf * 2 ** (i - 1)
            model += [
                nn.ReflectionPad2d(1),
                spectral_norm(nn.Conv2d(ch, ch * 2, kernel_size=4, stride=2, padding=0, bias=True)),
                nn.LeakyReLU(0.2, True),
            ]
        ch = ndf * 2 ** (layers - 3)
        model += [
            nn.ReflectionPad2d(1),
            spectral_norm(nn.Conv2d(ch, ch * 2, kernel_size=4, stride=1, padding=0, bias=True)),
            nn.LeakyReLU(0.2, True),
        ]
        dim = ch * 2
        self.gap_fc = spectral_norm(nn.Linear(dim, 1, bias=False))
        self.gmp_fc = spectral_norm(nn.Linear(dim, 1, bias=False))
        self.conv1x1 = nn.Conv2d(dim * 2, dim, kernel_size=1, stride=1, bias=True)
        self.leaky_relu = nn.LeakyReLU(0.2, True)
        self.pad = nn.ReflectionPad2d(1)
        self.conv = spectral_norm(nn.Conv2d(dim, 1, kernel_size=4, stride=1, padding=0, bias=False))
        self.model = nn.Sequential(*model)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.model(x)
        # The reference weights the maps by the linear layers' first parameter, which under
        # spectral norm is the raw weight (weight_orig), not the normalised one: kept as is.
        cam_logit, x = _cam(
            x,
            self.gap_fc,
            self.gmp_fc,
            self.gap_fc.parametrizations.weight.original,
            self.gmp_fc.parametrizations.weight.original,
        )
        x = self.leaky_relu(self.conv1x1(x))
        return self.conv(self.pad(x)), cam_logit
