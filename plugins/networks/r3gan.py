"""R3GAN generator and discriminator (Huang et al., "The GAN is dead; long live the GAN!", NeurIPS 2024).

Laid out as the official code, github.com/brownvc/R3GAN at commit
19a7ddf463fbac2bd39b4c1c73d63f1c441c7403: ``R3GAN/Networks.py`` (the networks),
``R3GAN/Resamplers.py`` (the interpolative resamplers, here their upfirdn2d path),
``R3GAN/FusedOperators.py`` (the biased leaky ReLU) and the presets of ``train.py``. Module and
parameter names are the reference's (``MainLayers.<stage>.Layers.<i>.LinearLayer1.Layer.weight``,
``NonLinearity1.Bias``, ``Resampler.Kernel``, ``Basis``, ``AggregationLayer``, ``ExtractionLayer``,
``EmbeddingLayer``) and so are the order in which they are built and the random numbers their
initialisation draws: a reference ``Generator`` / ``Discriminator`` state dict loads strictly,
and the same seed builds the same weights. A training pickle's ``G_ema`` / ``D`` wraps the
network as ``Model`` (``training/networks.py``): strip the ``Model.`` prefix of its keys.

Both networks are stacks of stages, one per resolution from 4x4 up to ``image_size``. A stage
holds ``blocks`` ResNeXt-style residual blocks (1x1 conv to ``width * expansion`` channels,
biased leaky ReLU(0.2), grouped 3x3 conv with ``cardinality`` groups, biased leaky ReLU, 1x1 conv
back to ``width``) with no normalisation. Convolutions have no bias; every weight is drawn by
the MSR initialiser, N(0, gain / sqrt(fan_in)); inside a block the gain is
``sqrt(2 / 1.04) * L ** (-1/4)`` with ``L`` the network's total number of blocks, and the last
1x1 conv of each block starts at zero (fix-up), so every block starts as the identity. Between
stages a 1x1 conv changes the width (when it changes) and the FIR filter [1, 3, 3, 1] x
[1, 3, 3, 1] / 64 (the reference's [1, 2, 1] convolved with [1, 1]) resamples by 2: after the
conv going up, before it going down. The generator starts from a learnt 4x4 basis scaled per
channel by a linear map of z and ends with a 1x1 "aggregation" conv to RGB (no tanh: its
outputs are not clamped to [-1, 1]). The discriminator starts with a 1x1 "extraction" conv and
ends with a depthwise 4x4 conv and a linear layer to one score per image. With ``num_classes``
both are conditional as the reference: the generator appends a linear embedding of the one-hot
label to z, the discriminator ends in ``embedding_dim`` features and scores their dot product
with the label's embedding.

The reference runs the last generator stages and the first discriminator stages in bfloat16
(``FP16Stages``); these run in whatever precision the caller's autocast gives.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge import GanforgeError, Range

from .resnet import Width

ImageSide = Annotated[int, Range(4, 2**14, why="memory: each doubling of the side adds a stage")]
Cardinality = Annotated[int, Range(1, 2**20, why="a grouped conv has at most one group per channel")]
StageBlocks = Annotated[int, Range(0, 1000, why="time: blocks are built and run one after another")]
Expansion = Annotated[int, Range(1, 64, why="memory: the blocks' inner width is width * expansion")]
Classes = Annotated[int, Range(0, 2**20, why="memory: one embedding row per class")]

# The gain of leaky ReLU(0.2) (R3GAN/FusedOperators.py, BiasedActivation.Gain).
_LRELU_GAIN = math.sqrt(2 / (1 + 0.2**2))

# The FFHQ-64 preset of train.py (generator order, 4x4 first): 3/4 of [1024]*4 + [512], 2 blocks
# per stage, 3 * [32]*4 + [48] groups, expansion 2, z of 64.
_FFHQ64_WIDTHS = (768, 768, 768, 768, 384)
_FFHQ64_CARDINALITIES = (96, 96, 96, 96, 48)
_FFHQ64_BLOCKS = (2, 2, 2, 2, 2)


def _msr(layer: nn.Conv2d | nn.Linear, gain: float = 1.0) -> Any:
    """The reference's MSR initialiser: weights N(0, gain / sqrt(fan_in)), biases zero."""
    fan_in = math.prod(layer.weight.shape[1:])
    with torch.no_grad():
        layer.weight.normal_(0.0, gain / math.sqrt(fan_in))
        if layer.bias is not None:
            layer.bias.zero_()
    return layer


def _lowpass_kernel(taps: tuple[int, ...] = (1, 2, 1)) -> Tensor:
    """The 2-D interpolation filter: ``taps`` convolved with [1, 1], outer product, sum 1."""
    t = [a + b for a, b in zip((*taps, 0), (0, *taps))]  # [1, 2, 1] -> [1, 3, 3, 1]
    k = torch.tensor(t, dtype=torch.float32)
    k = torch.outer(k, k)
    return k / k.sum()


class Convolution(nn.Module):
    """A bias-free MSR-initialised conv ("same" padding); its weight follows the input's dtype."""

    def __init__(self, cin: int, cout: int, kernel_size: int, groups: int = 1, gain: float = 1.0) -> None:
        super().__init__()
        conv = nn.Conv2d(cin, cout, kernel_size, padding=(kernel_size - 1) // 2, groups=groups, bias=False)
        self.Layer = _msr(conv, gain)

    def forward(self, x: Tensor) -> Tensor:
        layer = self.Layer
        return F.conv2d(x, layer.weight.to(x.dtype), padding=layer.padding, groups=layer.groups)


class BiasedActivation(nn.Module):
    """A per-channel bias (starts at zero) then leaky ReLU(0.2), with no output gain."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.Bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x + self.Bias.to(x.dtype).view(1, -1, 1, 1), 0.2)


class ResidualBlock(nn.Module):
    """``x + conv1x1(act(grouped conv3x3(act(conv1x1(x)))))``; the last conv starts at zero."""

    def __init__(self, channels: int, cardinality: int, expansion: int, variance_scaling: int) -> None:
        super().__init__()
        expanded = channels * expansion
        # Three linear layers per branch: scale each by L^(-1/(2*3-2)) so the sum of L branches
        # keeps the signal's variance bounded (the paper's fix-up initialisation).
        gain = _LRELU_GAIN * variance_scaling ** (-1 / 4)
        self.LinearLayer1 = Convolution(channels, expanded, 1, gain=gain)
        self.LinearLayer2 = Convolution(expanded, expanded, 3, groups=cardinality, gain=gain)
        self.LinearLayer3 = Convolution(expanded, channels, 1, gain=0.0)
        self.NonLinearity1 = BiasedActivation(expanded)
        self.NonLinearity2 = BiasedActivation(expanded)

    def forward(self, x: Tensor) -> Tensor:
        y = self.LinearLayer1(x)
        y = self.LinearLayer2(self.NonLinearity1(y))
        y = self.LinearLayer3(self.NonLinearity2(y))
        return x + y


class InterpolativeUpsampler(nn.Module):
    """2x upsampling by the [1, 3, 3, 1] FIR filter (gain 4): upfirdn2d's ``upsample2d``."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("Kernel", _lowpass_kernel())

    def forward(self, x: Tensor) -> Tensor:
        c = int(x.shape[1])  # a constant in an exported graph: ONNX needs the kernel's shape
        # Zero insertion, 2 px of padding before and 1 after, then the filter: a stride-2
        # transposed depthwise conv with padding 1 (the filter is symmetric, flips don't matter).
        w = (4.0 * self.Kernel).to(x.dtype).expand(c, 1, 4, 4).contiguous()
        return F.conv_transpose2d(x, w, stride=2, padding=1, groups=c)


class InterpolativeDownsampler(nn.Module):
    """2x downsampling by the [1, 3, 3, 1] FIR filter: upfirdn2d's ``downsample2d``."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("Kernel", _lowpass_kernel())

    def forward(self, x: Tensor) -> Tensor:
        c = int(x.shape[1])  # a constant in an exported graph: ONNX needs the kernel's shape
        w = self.Kernel.to(x.dtype).expand(c, 1, 4, 4).contiguous()
        return F.conv2d(x, w, stride=2, padding=1, groups=c)


class UpsampleLayer(nn.Module):
    """A 1x1 conv to the next width (only when it changes), then 2x interpolative upsampling."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.Resampler = InterpolativeUpsampler()
        self.LinearLayer = Convolution(cin, cout, 1) if cin != cout else None

    def forward(self, x: Tensor) -> Tensor:
        if self.LinearLayer is not None:
            x = self.LinearLayer(x)
        return self.Resampler(x)


class DownsampleLayer(nn.Module):
    """2x interpolative downsampling, then a 1x1 conv to the next width (only when it changes)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.Resampler = InterpolativeDownsampler()
        self.LinearLayer = Convolution(cin, cout, 1) if cin != cout else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.Resampler(x)
        return self.LinearLayer(x) if self.LinearLayer is not None else x


class GenerativeBasis(nn.Module):
    """A learnt ``[C, 4, 4]`` basis (N(0, 1)) scaled per channel by a linear map of the input vector."""

    def __init__(self, in_features: int, channels: int) -> None:
        super().__init__()
        self.Basis = nn.Parameter(torch.empty(channels, 4, 4).normal_(0.0, 1.0))
        self.LinearLayer = _msr(nn.Linear(in_features, channels, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.Basis.view(1, -1, 4, 4) * self.LinearLayer(x).view(x.shape[0], -1, 1, 1)


class DiscriminativeBasis(nn.Module):
    """A depthwise 4x4 conv of the 4x4 map (one value per channel), then a linear layer."""

    def __init__(self, channels: int, out_features: int) -> None:
        super().__init__()
        self.Basis = _msr(nn.Conv2d(channels, channels, 4, padding=0, groups=channels, bias=False))
        self.LinearLayer = _msr(nn.Linear(channels, out_features, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.LinearLayer(self.Basis(x).flatten(1))


class GeneratorStage(nn.Module):
    """The transition into a resolution (the basis, or upsampling) and then its residual blocks."""

    def __init__(
        self, cin: int, cout: int, cardinality: int, blocks: int, expansion: int, scaling: int, first: bool
    ) -> None:
        super().__init__()
        transition = GenerativeBasis(cin, cout) if first else UpsampleLayer(cin, cout)
        self.Layers = nn.ModuleList(
            [transition] + [ResidualBlock(cout, cardinality, expansion, scaling) for _ in range(blocks)]
        )

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.Layers:
            x = layer(x)
        return x


class DiscriminatorStage(nn.Module):
    """A resolution's residual blocks and then the transition out of it (downsampling, or the basis)."""

    def __init__(
        self, cin: int, cout: int, cardinality: int, blocks: int, expansion: int, scaling: int, last: bool
    ) -> None:
        super().__init__()
        transition = DiscriminativeBasis(cin, cout) if last else DownsampleLayer(cin, cout)
        self.Layers = nn.ModuleList(
            [ResidualBlock(cin, cardinality, expansion, scaling) for _ in range(blocks)] + [transition]
        )

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.Layers:
            x = layer(x)
        return x


def _stages_for(image_size: int) -> int | None:
    """Stages from 4x4 to ``image_size`` (5 for 64 px), or None when the side is not 4 * 2**k."""
    if image_size < 4 or image_size & (image_size - 1):
        return None
    return image_size.bit_length() - 2


def _size_problem(kind: str, options: dict[str, Any], size: int) -> str | None:
    own = options.get("image_size", 64)
    if size == own:
        return None
    stages = _stages_for(size)
    if stages is None:
        return f"it is built for {own} px images and takes sides 4 * 2**k only (4, 8, ..., 64, ...)"
    return (
        f"it is built for {own} px images; set {kind}.image_size={size} with {stages} entries in "
        "widths, cardinalities and blocks (one per stage from 4x4)"
    )


def _check_layout(
    who: str,
    image_size: int,
    widths: tuple[int, ...],
    cardinalities: tuple[int, ...],
    blocks: tuple[int, ...],
    expansion: int,
    order: str,
) -> None:
    stages = _stages_for(image_size)
    if stages is None:
        raise GanforgeError(f"{who}: image_size must be 4 * 2**k (4, 8, 16, 32, 64, ...), got {image_size}")
    if not len(widths) == len(cardinalities) == len(blocks) == stages:
        raise GanforgeError(
            f"{who}: image_size={image_size} has {stages} stages ({order}): widths, cardinalities and "
            f"blocks need {stages} entries each, got {len(widths)}, {len(cardinalities)} and {len(blocks)}"
        )
    for i, (w, c) in enumerate(zip(widths, cardinalities)):
        if (w * expansion) % c:
            raise GanforgeError(
                f"{who}: stage {i}: widths[{i}] * expansion = {w * expansion} is not divisible by "
                f"cardinalities[{i}] = {c} (the groups of its 3x3 conv)"
            )
    if sum(blocks) < 1:
        raise GanforgeError(f"{who}: blocks must hold at least one residual block in all, got {list(blocks)}")


def _embed(layer: nn.Linear, y: Tensor | None, who: str) -> Tensor:
    """The label embedding: ``y`` is class indices ``[N]`` or one-hot (or soft) labels ``[N, K]``."""
    if y is None:
        raise GanforgeError(f"{who}: it is conditional (num_classes > 0): pass the labels y")
    if not torch.is_floating_point(y):
        # Indices pick the rows a one-hot vector would: the same values, no [N, K] matrix.
        return F.embedding(y.long(), layer.weight.t())
    return layer(y)


class R3GANGenerator(nn.Module):
    """R3GAN generator: ResNeXt stages without normalisation from a 4x4 basis (Huang et al. 2024).

    ``forward(z, y=None)``: ``z`` ``[N, latent_dim]`` (or ``[N, latent_dim, 1, 1]``) to
    ``[N, out_channels, image_size, image_size]``, unbounded (the reference has no tanh). Stage
    options run from 4x4 up to ``image_size`` (one entry per stage, log2(image_size) - 1 of
    them); the defaults are the FFHQ-64 preset of the official ``train.py``. ``num_classes > 0``
    makes it conditional: ``y`` is then class indices ``[N]`` or one-hot labels ``[N, K]``,
    embedded to ``embedding_dim`` values (default ``latent_dim``, as the reference's presets)
    that are appended to z. It draws its own (MSR, fix-up) initialisation, which the network
    kinds' ``init = "auto"`` keeps.
    """

    own_init = True  # the reference's MSR initialiser and zeroed branch ends (init = "auto" keeps them)

    @classmethod
    def check_image_size(cls, options: dict[str, Any], size: int) -> str | None:
        """It makes images of its own ``image_size``: the data's must be the same."""
        return _size_problem("generator", options, size)

    def __init__(
        self,
        latent_dim: Width = 64,
        widths: tuple[Width, ...] = _FFHQ64_WIDTHS,
        cardinalities: tuple[Cardinality, ...] = _FFHQ64_CARDINALITIES,
        blocks: tuple[StageBlocks, ...] = _FFHQ64_BLOCKS,
        expansion: Expansion = 2,
        image_size: ImageSide = 64,
        num_classes: Classes = 0,
        embedding_dim: Width | None = None,
        out_channels: Width = 3,
    ) -> None:
        super().__init__()
        widths, cardinalities, blocks = tuple(widths), tuple(cardinalities), tuple(blocks)
        _check_layout("r3gan generator", image_size, widths, cardinalities, blocks, expansion, "4x4 first")
        self.latent_dim = latent_dim
        self.image_size = image_size
        self.num_classes = num_classes
        embed = (embedding_dim or latent_dim) if num_classes else 0
        scaling = sum(blocks)
        args = (expansion, scaling)
        stages = [
            GeneratorStage(latent_dim + embed, widths[0], cardinalities[0], blocks[0], *args, first=True)
        ]
        stages += [
            GeneratorStage(widths[i], widths[i + 1], cardinalities[i + 1], blocks[i + 1], *args, first=False)
            for i in range(len(widths) - 1)
        ]
        self.MainLayers = nn.ModuleList(stages)
        self.AggregationLayer = Convolution(widths[-1], out_channels, 1)
        if num_classes:
            self.EmbeddingLayer = _msr(nn.Linear(num_classes, embed, bias=False))

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if z.dim() == 4:
            z = z.flatten(1)
        if self.num_classes:
            z = torch.cat([z, _embed(self.EmbeddingLayer, y, "r3gan generator")], dim=1)
        for stage in self.MainLayers:
            z = stage(z)
        return self.AggregationLayer(z)


class R3GANDiscriminator(nn.Module):
    """R3GAN discriminator: ResNeXt stages without normalisation down to a 4x4 basis (Huang et al. 2024).

    ``forward(x, y=None)``: ``[N, in_channels, image_size, image_size]`` to ``[N]`` logits.
    Stage options run in its own order, from ``image_size`` down to 4x4 (the reverse of the
    generator's; the defaults are the FFHQ-64 preset of the official ``train.py``).
    ``num_classes > 0`` makes it conditional as the reference: the last stage gives
    ``embedding_dim`` features (default ``widths[-1]``, the presets' choice) and the score is
    their dot product with the embedding of ``y`` (class indices ``[N]`` or one-hot labels
    ``[N, K]``). It draws its own (MSR, fix-up) initialisation, which ``init = "auto"`` keeps.
    """

    own_init = True  # the reference's MSR initialiser and zeroed branch ends (init = "auto" keeps them)

    outputs_probabilities = False

    @classmethod
    def check_image_size(cls, options: dict[str, Any], size: int) -> str | None:
        """Its stages end on exactly 4x4 for its own ``image_size``: the data's must be the same."""
        return _size_problem("discriminator", options, size)

    def __init__(
        self,
        widths: tuple[Width, ...] = tuple(reversed(_FFHQ64_WIDTHS)),
        cardinalities: tuple[Cardinality, ...] = tuple(reversed(_FFHQ64_CARDINALITIES)),
        blocks: tuple[StageBlocks, ...] = _FFHQ64_BLOCKS,
        expansion: Expansion = 2,
        image_size: ImageSide = 64,
        num_classes: Classes = 0,
        embedding_dim: Width | None = None,
        in_channels: Width = 3,
    ) -> None:
        super().__init__()
        widths, cardinalities, blocks = tuple(widths), tuple(cardinalities), tuple(blocks)
        _check_layout(
            "r3gan discriminator", image_size, widths, cardinalities, blocks, expansion, "image size first"
        )
        self.image_size = image_size
        self.num_classes = num_classes
        embed = (embedding_dim or widths[-1]) if num_classes else 0
        scaling = sum(blocks)
        args = (expansion, scaling)
        stages = [
            DiscriminatorStage(widths[i], widths[i + 1], cardinalities[i], blocks[i], *args, last=False)
            for i in range(len(widths) - 1)
        ]
        stages.append(
            DiscriminatorStage(widths[-1], embed or 1, cardinalities[-1], blocks[-1], *args, last=True)
        )
        # Built after the stages but registered first, as the reference (same keys, same draws).
        self.ExtractionLayer = Convolution(in_channels, widths[0], 1)
        self.MainLayers = nn.ModuleList(stages)
        if num_classes:
            self.EmbeddingLayer = _msr(nn.Linear(num_classes, embed, bias=False), gain=1 / math.sqrt(embed))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        x = self.ExtractionLayer(x)
        for stage in self.MainLayers:
            x = stage(x)
        if self.num_classes:
            x = (x * _embed(self.EmbeddingLayer, y, "r3gan discriminator")).sum(dim=1, keepdim=True)
        return x.view(x.shape[0])
