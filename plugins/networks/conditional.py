"""Class-conditional ResNet GANs of the SNGAN / BigGAN family: ``sngan`` and ``biggan``
generators and the ``projection`` discriminator.

Laid out as POSTECH-CVLab/PyTorch-StudioGAN at commit 947b35e9835b67860fdce44d337f6d7fee7c8db3:
``src/models/resnet.py`` (the SNGAN generator and the discriminator), ``src/models/big_resnet.py``
(the BigGAN generator; its discriminator is resnet.py's) and ``src/utils/ops.py``
(``ConditionalBatchNorm2d``, ``SelfAttention``, ``batchnorm_2d`` with eps 1e-4, spectral norm with
eps 1e-6), with their module names (``linear0``, ``blocks.<i>.0.bn1.gain``, ``conv2d5``,
``linear1``, ``embedding``, ...). Differences: spectral norm uses
``torch.nn.utils.parametrizations`` (keys ``parametrizations.weight.original``, ``.0._u``,
``.0._v`` where StudioGAN has ``weight_orig``, ``weight_u``, ``weight_v``; with the same weights
and vectors the outputs are the same, but a training forward's power iteration updates ``u``
before ``v`` where StudioGAN's updates ``v`` first), and the ReLUs are not in place. StudioGAN's
in-place ReLU has one effect: in its spectral-norm discriminator the shortcut of every residual
block after the first reads ``relu(x)`` instead of ``x`` (``shortcut_relu=True`` reproduces it;
False is the paper's block).

The architecture is Miyato & Koyama 2018 (cGANs with Projection Discriminator), released as
pfnet-research/sngan_projection (``gen_models/resnet_32.py``, ``dis_models/snresnet_32.py`` at
e84b1a5f604de5fec268f37c3f26478e80b7f475): the same layers, but its final linear has no bias and
its conditional gains are class embeddings starting at 1 where StudioGAN's are ``1 + linear``.
BigGAN (Brock et al. 2019) adds the shared class embedding, the hierarchical latent (z split into
one chunk per block plus one for the first linear), spectral norm in G and self-attention.

Widths are multiples of ``ch`` as StudioGAN's ``g_conv_dim`` / ``d_conv_dim`` tables: at 32 px
every generator block is ``4 * ch`` wide and every discriminator block ``2 * ch``; at 64 and
128 px the generator narrows from ``16 * ch`` to ``ch`` and the discriminator widens from ``ch``
to ``16 * ch``.
"""

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ganforge import GanforgeError, Range

from .resnet import Width

ImageSize = Literal[32, 64, 128]
NumClasses = Annotated[int, Range(0, 2**20, why="memory: every class holds its own embedding rows")]
# Block positions (1-based, as StudioGAN's attn_g_loc / attn_d_loc) followed by self-attention.
AttentionAt = tuple[Annotated[int, Range(1, 6, why="the widest layout (128 px) has 6 blocks")], ...]

_SN_EPS = 1e-6  # ops.snconv2d, ops.snlinear, ops.sn_embedding
_BN_EPS = 1e-4  # ops.batchnorm_2d and the batch norm inside ops.ConditionalBatchNorm2d
_BOTTOM = 4  # the generator starts from a 4x4 map at every size

# StudioGAN's width tables as multiples of ch: the generator's first map, then each block's output.
_G_FIRST = {32: 4, 64: 16, 128: 16}
_G_OUT = {32: (4, 4, 4), 64: (8, 4, 2, 1), 128: (16, 8, 4, 2, 1)}
# The discriminator's block outputs and which blocks halve the map (the first block always does).
_D_OUT = {32: (2, 2, 2, 2), 64: (1, 2, 4, 8, 16), 128: (1, 2, 4, 8, 16, 16)}
_D_DOWN = {32: (True, True, False, False), 64: (True,) * 4 + (False,), 128: (True,) * 5 + (False,)}


def _layer(module: nn.Module, sn: bool) -> nn.Module:
    """StudioGAN's default ``ortho`` init (orthogonal weights, zero biases), then spectral norm."""
    nn.init.orthogonal_(module.weight)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)
    return _spectral_norm(module, eps=_SN_EPS) if sn else module


def _conv(cin: int, cout: int, kernel: int, sn: bool, bias: bool = True) -> nn.Module:
    return _layer(nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=bias), sn)


def _linear(fin: int, fout: int, sn: bool, bias: bool = True) -> nn.Module:
    return _layer(nn.Linear(fin, fout, bias=bias), sn)


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=0.1)


def _check_size(options: dict[str, Any], size: int, section: str) -> str | None:
    own = options.get("image_size", 32)
    if size != own:
        hint = f"set {section}.image_size={size}" if size in (32, 64, 128) else "use 32, 64 or 128"
        return f"it is built for {own} px images; {hint}"
    return None


def _block_widths(
    name: str, table: dict[int, tuple[int, ...]], ch: int, image_size: int, attention: Sequence[int]
) -> list[int]:
    """Each block's output width at ``image_size`` (``table``'s multiples of ``ch``), checked
    against the attention positions: they must name blocks at least 8 channels wide."""
    if image_size not in table:
        raise GanforgeError(f"{name}: image_size must be 32, 64 or 128, got {image_size}")
    widths = [ch * m for m in table[image_size]]
    blocks = len(widths)
    if any(not 1 <= a <= blocks for a in attention):
        raise GanforgeError(
            f"{name}: attention={list(attention)}: at {image_size} px there are {blocks} blocks, "
            f"so positions must be 1..{blocks}"
        )
    narrow = [a for a in attention if widths[a - 1] < 8]
    if narrow:
        raise GanforgeError(
            f"{name}: attention after block {narrow[0]} needs at least 8 channels there (it projects "
            f"to C/8), got {widths[narrow[0] - 1]}: raise ch"
        )
    return widths


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm with a gain and bias computed from a condition: ``bn(x) * (1 + gain(c)) + bias(c)``.

    ``x`` ``[N, C, H, W]``, ``c`` ``[N, cond_dim]``: a one-hot class for SNGAN (the rows of
    ``gain`` and ``bias`` are then per-class embeddings) or BigGAN's shared class embedding joined
    with a latent chunk. The batch norm has no affine of its own (eps 1e-4, momentum 0.1), and
    ``gain`` and ``bias`` are bias-free linears, spectral-normed with the generator.
    """

    def __init__(self, cond_dim: int, channels: int, spectral_norm: bool = False) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=0.1, affine=False)
        self.gain = _linear(cond_dim, channels, spectral_norm, bias=False)
        self.bias = _linear(cond_dim, channels, spectral_norm, bias=False)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        gain = 1 + self.gain(c)[:, :, None, None]
        return self.bn(x) * gain + self.bias(c)[:, :, None, None]


class SelfAttention(nn.Module):
    """SAGAN self-attention: ``x + sigma * attn(x)``, ``sigma`` starting at 0.

    Queries are ``C/8``-channel 1x1 projections at every position; keys (``C/8``) and values
    (``C/2``) are max-pooled 2x2, so the map's sides must be even. No 1/sqrt(d) scaling, as in
    the reference.
    """

    def __init__(self, channels: int, spectral_norm: bool = False) -> None:
        super().__init__()
        if channels < 8:
            raise GanforgeError(
                f"self-attention needs at least 8 channels (it projects to C/8), not {channels}"
            )
        self.conv1x1_theta = _conv(channels, channels // 8, 1, spectral_norm, bias=False)
        self.conv1x1_phi = _conv(channels, channels // 8, 1, spectral_norm, bias=False)
        self.conv1x1_g = _conv(channels, channels // 2, 1, spectral_norm, bias=False)
        self.conv1x1_attn = _conv(channels // 2, channels, 1, spectral_norm, bias=False)
        self.sigma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        theta = self.conv1x1_theta(x).flatten(2)  # [N, C/8, HW]
        phi = F.max_pool2d(self.conv1x1_phi(x), 2).flatten(2)  # [N, C/8, HW/4]
        attn = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # [N, HW, HW/4]
        g = F.max_pool2d(self.conv1x1_g(x), 2).flatten(2)  # [N, C/2, HW/4]
        out = (g @ attn.transpose(1, 2)).view(n, -1, h, w)
        return x + self.sigma * self.conv1x1_attn(out)


class GenBlock(nn.Module):
    """Up-sampling residual block: (C)BN, ReLU, 2x nearest, conv3x3, (C)BN, ReLU, conv3x3, plus a
    2x nearest, conv1x1 shortcut. ``cond_dim=0``: plain batch norm with its own affine."""

    def __init__(self, cin: int, cout: int, cond_dim: int, spectral_norm: bool) -> None:
        super().__init__()
        self.conditional = cond_dim > 0
        if self.conditional:
            self.bn1: nn.Module = ConditionalBatchNorm2d(cond_dim, cin, spectral_norm)
            self.bn2: nn.Module = ConditionalBatchNorm2d(cond_dim, cout, spectral_norm)
        else:
            self.bn1 = _batch_norm(cin)
            self.bn2 = _batch_norm(cout)
        self.conv2d0 = _conv(cin, cout, 1, spectral_norm)
        self.conv2d1 = _conv(cin, cout, 3, spectral_norm)
        self.conv2d2 = _conv(cout, cout, 3, spectral_norm)

    def _norm(self, bn: nn.Module, x: Tensor, c: Tensor | None) -> Tensor:
        return bn(x, c) if self.conditional else bn(x)

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        h = F.interpolate(F.relu(self._norm(self.bn1, x, c)), scale_factor=2, mode="nearest")
        h = self.conv2d2(F.relu(self._norm(self.bn2, self.conv2d1(h), c)))
        return h + self.conv2d0(F.interpolate(x, scale_factor=2, mode="nearest"))


class DiscOptBlock(nn.Module):
    """The discriminator's first block: conv3x3, ReLU, conv3x3, 2x2 average pool, plus a pool,
    conv1x1 shortcut (no activation before the first conv: its input is the image)."""

    def __init__(self, cin: int, cout: int, spectral_norm: bool) -> None:
        super().__init__()
        self.sn = spectral_norm
        self.conv2d0 = _conv(cin, cout, 1, spectral_norm)
        self.conv2d1 = _conv(cin, cout, 3, spectral_norm)
        self.conv2d2 = _conv(cout, cout, 3, spectral_norm)
        if not spectral_norm:  # StudioGAN's discriminator without spectral norm uses batch norm
            self.bn0 = _batch_norm(cin)
            self.bn1 = _batch_norm(cout)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv2d1(x)
        h = F.relu(h if self.sn else self.bn1(h))
        h = F.avg_pool2d(self.conv2d2(h), 2)
        s = F.avg_pool2d(x, 2)
        return h + self.conv2d0(s if self.sn else self.bn0(s))


class DiscBlock(nn.Module):
    """Residual block: ReLU, conv3x3, ReLU, conv3x3 (then a 2x2 average pool when ``downsample``),
    plus a shortcut: conv1x1 (then the pool) when the width changes or the map halves, else the
    identity. ``shortcut_relu``: the shortcut reads ``relu(x)`` (StudioGAN's in-place ReLU)."""

    def __init__(
        self, cin: int, cout: int, spectral_norm: bool, downsample: bool, shortcut_relu: bool
    ) -> None:
        super().__init__()
        self.sn = spectral_norm
        self.downsample = downsample
        self.shortcut_relu = shortcut_relu
        self.learnable_sc = cin != cout or downsample
        if self.learnable_sc:
            self.conv2d0 = _conv(cin, cout, 1, spectral_norm)
            if not spectral_norm:
                self.bn0 = _batch_norm(cin)
        self.conv2d1 = _conv(cin, cout, 3, spectral_norm)
        self.conv2d2 = _conv(cout, cout, 3, spectral_norm)
        if not spectral_norm:
            self.bn1 = _batch_norm(cin)
            self.bn2 = _batch_norm(cout)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv2d1(F.relu(x if self.sn else self.bn1(x)))
        h = self.conv2d2(F.relu(h if self.sn else self.bn2(h)))
        s = F.relu(x) if self.shortcut_relu else x
        if self.learnable_sc:
            s = self.conv2d0(s if self.sn else self.bn0(s))
        if self.downsample:  # the shortcut is then a conv: pool after it, as the reference
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


class _Conditional(nn.Module):
    """Label handling shared by the three networks: ``num_classes`` 0 means unconditional."""

    own_init = True  # StudioGAN's orthogonal initialisation, embeddings included (init = "auto" keeps it)
    num_classes: int
    _name: str

    def _labels(self, y: Tensor | None, n: int) -> Tensor | None:
        """``y`` checked against the batch size ``n`` and ``num_classes``, as int64, or None."""
        if self.num_classes == 0:
            if y is not None:
                raise GanforgeError(f"{self._name}: unconditional (num_classes=0), but labels y were given")
            return None
        if y is None:
            raise GanforgeError(
                f"{self._name}: num_classes={self.num_classes} needs class labels y (int64 [N]), got none"
            )
        integer = not (y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool)
        if y.dim() != 1 or y.shape[0] != n or not integer:
            raise GanforgeError(
                f"{self._name}: y must be integer class indices of shape [{n}], got {y.dtype} {list(y.shape)}"
            )
        # The range is checked where it costs no device sync (CUDA's embedding asserts by itself).
        if y.device.type == "cpu" and n and not torch.compiler.is_compiling():
            low, high = int(y.min()), int(y.max())
            if low < 0 or high >= self.num_classes:
                raise GanforgeError(
                    f"{self._name}: class labels must be in 0..{self.num_classes - 1}, got {low}..{high}"
                )
        return y.long()


def _gen_blocks(
    first: int, widths: Sequence[int], cond_dim: int, sn: bool, attention: Sequence[int]
) -> nn.ModuleList:
    """StudioGAN's ``blocks``: a list of one-module lists, a self-attention list after each
    block position named in ``attention``."""
    blocks: list[list[nn.Module]] = []
    cin = first
    for index, cout in enumerate(widths):
        blocks.append([GenBlock(cin, cout, cond_dim, sn)])
        if index + 1 in attention:
            blocks.append([SelfAttention(cout, sn)])
        cin = cout
    return nn.ModuleList(nn.ModuleList(b) for b in blocks)


class _ResNetGenerator(_Conditional):
    """What both generators share: the latent check, the blocks and the BN-ReLU-conv-tanh tail."""

    latent_dim: int
    image_size: int

    @classmethod
    def check_image_size(cls, options: dict[str, Any], size: int) -> str | None:
        """It makes images of its own ``image_size``: the data's must be the same."""
        return _check_size(options, size, "generator")

    def _latent(self, z: Tensor) -> Tensor:
        if z.dim() == 4 and z.shape[2:] == (1, 1):
            z = z.flatten(1)
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise GanforgeError(f"{self._name}: z must be [N, {self.latent_dim}], got {list(z.shape)}")
        return z

    def _run(self, h: Tensor, conds: Sequence[Tensor | None]) -> Tensor:
        """The blocks (the i-th residual block gets ``conds[i]``), then BN, ReLU, conv3x3, tanh."""
        counter = 0
        for blocklist in self.blocks:
            for block in blocklist:
                if isinstance(block, SelfAttention):
                    h = block(h)
                else:
                    h = block(h, conds[counter])
                    counter += 1
        return torch.tanh(self.conv2d5(F.relu(self.bn4(h))))


class SNGANGenerator(_ResNetGenerator):
    """SNGAN ResNet generator (Miyato et al.): z to 4x4, up-sampling blocks with class-conditional BN.

    ``forward(z, y=None)``: ``z`` ``[N, latent_dim]``, ``y`` int64 ``[N]`` class indices (required
    when ``num_classes > 0``, refused when 0); output ``[N, out_channels, image_size,
    image_size]`` in [-1, 1]. A linear maps z to a 4x4 map, each residual block doubles it (3
    blocks at 32 px, 4 at 64, 5 at 128) with conditional batch norm whose gain and bias are
    per-class rows; then batch norm, ReLU, conv3x3 and tanh. ``num_classes`` comes from the
    dataset's classes; 0 is unconditional (plain batch norm). ``spectral_norm`` wraps every
    conv and linear of G (StudioGAN's ``apply_g_sn``; off for SNGAN). ``attention`` lists block
    positions followed by SAGAN self-attention. CIFAR-10 reference: ``latent_dim=128, ch=64``
    (256 channels), 4,304,387 parameters with 10 classes.
    """

    _name = "sngan generator"

    def __init__(
        self,
        latent_dim: Width = 128,
        ch: Width = 64,
        image_size: ImageSize = 32,
        num_classes: NumClasses = 0,
        spectral_norm: bool = False,
        attention: AttentionAt = (),
        out_channels: Width = 3,
    ) -> None:
        super().__init__()
        widths = _block_widths(self._name, _G_OUT, ch, image_size, attention)
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.image_size = image_size
        first = ch * _G_FIRST[image_size]
        self.linear0 = _linear(latent_dim, first * _BOTTOM * _BOTTOM, spectral_norm)
        self.blocks = _gen_blocks(first, widths, num_classes, spectral_norm, attention)
        self.bn4 = _batch_norm(widths[-1])
        self.conv2d5 = _conv(widths[-1], out_channels, 3, spectral_norm)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        z = self._latent(z)
        y = self._labels(y, z.shape[0])
        c = None if y is None else F.one_hot(y, self.num_classes).to(z.dtype)
        h = self.linear0(z).view(z.shape[0], -1, _BOTTOM, _BOTTOM)
        return self._run(h, [c] * len(_G_OUT[self.image_size]))


class BigGANGenerator(_ResNetGenerator):
    """BigGAN generator (Brock et al.): hierarchical z and a shared class embedding in every block's CBN.

    ``forward(z, y=None)`` as ``sngan``. z is split into equal chunks, one for the first linear
    (to a 4x4 map) and one per residual block, so ``latent_dim`` must divide by the number of
    blocks plus one (4 at 32 px, 5 at 64, 6 at 128). Each block's conditional batch norm reads
    its chunk joined after the shared class embedding (``shared_dim`` wide, one table for all
    blocks); unconditional (``num_classes=0``) it reads the chunk alone. ``spectral_norm``
    (on, as BigGAN) wraps every conv and linear except the shared embedding. ``attention``: block
    positions followed by self-attention (BigGAN-CIFAR: after the 2nd). CIFAR-10 reference:
    ``latent_dim=80, ch=96, shared_dim=128`` (384 channels), 9,416,196 parameters with 10 classes.
    """

    _name = "biggan generator"

    def __init__(
        self,
        latent_dim: Width = 80,
        ch: Width = 96,
        shared_dim: Width = 128,
        image_size: ImageSize = 32,
        num_classes: NumClasses = 0,
        spectral_norm: bool = True,
        attention: AttentionAt = (2,),
        out_channels: Width = 3,
    ) -> None:
        super().__init__()
        widths = _block_widths(self._name, _G_OUT, ch, image_size, attention)
        chunks = len(widths) + 1
        if latent_dim % chunks:
            near = chunks * max(1, round(latent_dim / chunks))
            raise GanforgeError(
                f"{self._name}: latent_dim={latent_dim} must divide into {chunks} equal chunks at "
                f"{image_size} px (one per block plus one), e.g. {near}"
            )
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.image_size = image_size
        self.chunk = latent_dim // chunks
        first = ch * _G_FIRST[image_size]
        self.linear0 = _linear(self.chunk, first * _BOTTOM * _BOTTOM, spectral_norm)
        cond_dim = self.chunk
        if num_classes:
            cond_dim += shared_dim
            self.shared = nn.Embedding(num_classes, shared_dim)  # never spectral-normed, as StudioGAN
            nn.init.orthogonal_(self.shared.weight)
        self.blocks = _gen_blocks(first, widths, cond_dim, spectral_norm, attention)
        self.bn4 = _batch_norm(widths[-1])
        self.conv2d5 = _conv(widths[-1], out_channels, 3, spectral_norm)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        z = self._latent(z)
        y = self._labels(y, z.shape[0])
        zs = torch.split(z, self.chunk, 1)
        if y is None:
            conds = list(zs[1:])
        else:
            shared = self.shared(y).to(z.dtype)
            conds = [torch.cat([shared, zc], 1) for zc in zs[1:]]
        h = self.linear0(zs[0]).view(z.shape[0], -1, _BOTTOM, _BOTTOM)
        return self._run(h, conds)


class ProjectionDiscriminator(_Conditional):
    """SNGAN projection discriminator (Miyato & Koyama): ResNet, sum pooling, linear + <embed(y), phi(x)>.

    ``forward(x, y=None)``: ``x`` ``[N, in_channels, image_size, image_size]``, ``y`` int64
    ``[N]`` (required when ``num_classes > 0``, refused when 0); returns one raw score per image,
    ``[N]`` (no sigmoid). An optimised first block and residual blocks (4 at 32 px, of which the
    first two halve the map; 5 at 64; 6 at 128), ReLU and a sum over positions give the features
    ``phi(x)`` (``features``); the score is ``linear(phi) + <embedding[y], phi>``.
    ``spectral_norm`` (on) wraps every conv, the linear and the class embedding; off, StudioGAN
    puts batch norm in the blocks instead. ``shortcut_relu``: the residual blocks' shortcut
    reads ``relu(x)``, as in StudioGAN's spectral-norm networks (its in-place ReLU); needed to
    reproduce its checkpoints. ``attention``: block positions followed by self-attention
    (BigGAN-CIFAR: after the 1st). CIFAR-10 reference: ``ch=64`` (128 channels), 1,055,105
    parameters with 10 classes (``ch=96`` with ``attention=[1]``: BigGAN's, 2,415,170).
    """

    _name = "projection discriminator"
    outputs_probabilities = False

    @classmethod
    def check_image_size(cls, options: dict[str, Any], size: int) -> str | None:
        """Its blocks are laid out for its own ``image_size``: the data's must be the same."""
        return _check_size(options, size, "discriminator")

    def __init__(
        self,
        ch: Width = 64,
        image_size: ImageSize = 32,
        num_classes: NumClasses = 0,
        spectral_norm: bool = True,
        attention: AttentionAt = (),
        shortcut_relu: bool = False,
        in_channels: Width = 3,
    ) -> None:
        super().__init__()
        widths = _block_widths(self._name, _D_OUT, ch, image_size, attention)
        self.num_classes = num_classes
        self.image_size = image_size
        blocks: list[list[nn.Module]] = []
        cin = in_channels
        for index, (cout, down) in enumerate(zip(widths, _D_DOWN[image_size])):
            if index == 0:
                blocks.append([DiscOptBlock(cin, cout, spectral_norm)])
            else:
                blocks.append([DiscBlock(cin, cout, spectral_norm, down, shortcut_relu)])
            if index + 1 in attention:
                blocks.append([SelfAttention(cout, spectral_norm)])
            cin = cout
        self.blocks = nn.ModuleList(nn.ModuleList(b) for b in blocks)
        self.linear1 = _linear(widths[-1], 1, spectral_norm)
        if num_classes:
            self.embedding = _layer(nn.Embedding(num_classes, widths[-1]), spectral_norm)

    def features(self, x: Tensor) -> Tensor:
        """``phi(x)``: the blocks, ReLU and a sum over positions, ``[N, C]``."""
        h = x
        for blocklist in self.blocks:
            for block in blocklist:
                h = block(h)
        return F.relu(h).sum(dim=(2, 3))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        y = self._labels(y, x.shape[0])
        h = self.features(x)
        out = self.linear1(h).squeeze(1)
        if y is not None:
            out = out + (self.embedding(y) * h).sum(1)
        return out
