"""The class-conditional networks: ``sngan`` and ``biggan`` generators, ``projection`` discriminator.

Shapes, what a class changes, gradients into the class embeddings, the projection and the
conditional batch norm against their formulas, parameter counts at the CIFAR-10 reference sizes
and parity with StudioGAN. The reference is re-implemented below from
POSTECH-CVLab/PyTorch-StudioGAN at commit 947b35e9835b67860fdce44d337f6d7fee7c8db3:
``src/models/resnet.py`` (GenBlock, Generator, DiscOptBlock, DiscBlock, Discriminator),
``src/models/big_resnet.py`` (GenBlock, Generator) and ``src/utils/ops.py``
(ConditionalBatchNorm2d, SelfAttention, batchnorm_2d, snconv2d / snlinear / sn_embedding, which use
``torch.nn.utils.spectral_norm`` with eps 1e-6), keeping the paths the CIFAR-10 SNGAN and BigGAN
configurations take (class-conditional BN, projection; no InfoGAN, AC, 2C or MH heads). Its
activation is ``nn.ReLU(inplace=True)``, as src/config.py sets it.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm as old_spectral_norm

from ganforge import GanforgeError
from ganforge.plugins import get_registry
from ganforge.recipe import Spec, image_size_problem
from ganforge_plugins.networks import BigGANGenerator, ProjectionDiscriminator, SNGANGenerator
from ganforge_plugins.networks.conditional import ConditionalBatchNorm2d

# -- StudioGAN's modules, re-implemented -----------------------------------------------------------


def ref_conv(cin, cout, k, sn, bias=True):  # ops.conv2d / ops.snconv2d
    conv = nn.Conv2d(cin, cout, kernel_size=k, stride=1, padding=k // 2, bias=bias)
    return old_spectral_norm(conv, eps=1e-6) if sn else conv


def ref_linear(fin, fout, sn, bias=True):  # ops.linear / ops.snlinear
    lin = nn.Linear(fin, fout, bias=bias)
    return old_spectral_norm(lin, eps=1e-6) if sn else lin


def ref_bn(c, affine=True):  # ops.batchnorm_2d
    return nn.BatchNorm2d(c, eps=1e-4, momentum=0.1, affine=affine, track_running_stats=True)


class RefCBN(nn.Module):  # ops.ConditionalBatchNorm2d
    def __init__(self, in_features, out_features, sn):
        super().__init__()
        self.in_features = in_features
        self.bn = ref_bn(out_features, affine=False)
        self.gain = ref_linear(in_features, out_features, sn, bias=False)
        self.bias = ref_linear(in_features, out_features, sn, bias=False)

    def forward(self, x, y):
        gain = (1 + self.gain(y)).view(y.size(0), -1, 1, 1)
        bias = self.bias(y).view(y.size(0), -1, 1, 1)
        return self.bn(x) * gain + bias


class RefSelfAttention(nn.Module):  # ops.SelfAttention
    def __init__(self, in_channels, sn):
        super().__init__()
        self.conv1x1_theta = ref_conv(in_channels, in_channels // 8, 1, sn, bias=False)
        self.conv1x1_phi = ref_conv(in_channels, in_channels // 8, 1, sn, bias=False)
        self.conv1x1_g = ref_conv(in_channels, in_channels // 2, 1, sn, bias=False)
        self.conv1x1_attn = ref_conv(in_channels // 2, in_channels, 1, sn, bias=False)
        self.maxpool = nn.MaxPool2d(2, stride=2, padding=0)
        self.softmax = nn.Softmax(dim=-1)
        self.sigma = nn.Parameter(torch.zeros(1), requires_grad=True)

    def forward(self, x):
        _, ch, h, w = x.size()
        theta = self.conv1x1_theta(x).view(-1, ch // 8, h * w)
        phi = self.maxpool(self.conv1x1_phi(x)).view(-1, ch // 8, h * w // 4)
        attn = self.softmax(torch.bmm(theta.permute(0, 2, 1), phi))
        g = self.maxpool(self.conv1x1_g(x)).view(-1, ch // 2, h * w // 4)
        attn_g = torch.bmm(g, attn.permute(0, 2, 1)).view(-1, ch // 2, h, w)
        return x + self.sigma * self.conv1x1_attn(attn_g)


class RefGenBlock(nn.Module):  # resnet.py / big_resnet.py GenBlock; affine_input_dim 0: plain BN
    def __init__(self, in_channels, out_channels, affine_input_dim, sn):
        super().__init__()
        self.cond = affine_input_dim > 0
        if self.cond:
            self.bn1 = RefCBN(affine_input_dim, in_channels, sn)
            self.bn2 = RefCBN(affine_input_dim, out_channels, sn)
        else:
            self.bn1 = ref_bn(in_channels)
            self.bn2 = ref_bn(out_channels)
        self.activation = nn.ReLU(inplace=True)
        self.conv2d0 = ref_conv(in_channels, out_channels, 1, sn)
        self.conv2d1 = ref_conv(in_channels, out_channels, 3, sn)
        self.conv2d2 = ref_conv(out_channels, out_channels, 3, sn)

    def forward(self, x, affine):
        x0 = x
        x = self.bn1(x, affine) if self.cond else self.bn1(x)
        x = self.activation(x)
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv2d1(x)
        x = self.bn2(x, affine) if self.cond else self.bn2(x)
        x = self.activation(x)
        x = self.conv2d2(x)
        x0 = F.interpolate(x0, scale_factor=2, mode="nearest")
        x0 = self.conv2d0(x0)
        return x + x0


G_IN = {
    32: lambda c: [c * 4, c * 4, c * 4],
    64: lambda c: [c * 16, c * 8, c * 4, c * 2],
    128: lambda c: [c * 16, c * 16, c * 8, c * 4, c * 2],
}
G_OUT = {
    32: lambda c: [c * 4, c * 4, c * 4],
    64: lambda c: [c * 8, c * 4, c * 2, c],
    128: lambda c: [c * 16, c * 8, c * 4, c * 2, c],
}


class RefGenerator(nn.Module):
    """resnet.py's Generator (``big=False``: one-hot labels into every cBN) or big_resnet.py's
    (``big=True``: z chunks, a shared embedding)."""

    def __init__(self, z_dim, img_size, g_conv_dim, num_classes, sn, attn_g_loc, big, g_shared_dim=0):
        super().__init__()
        self.in_dims, self.out_dims = G_IN[img_size](g_conv_dim), G_OUT[img_size](g_conv_dim)
        self.bottom, self.big, self.num_classes = 4, big, num_classes
        self.num_blocks = len(self.in_dims)
        if big:
            self.chunk_size = z_dim // (self.num_blocks + 1)
            self.affine_input_dim = self.chunk_size
            self.linear0 = ref_linear(self.chunk_size, self.in_dims[0] * 16, sn)
            if num_classes:
                self.affine_input_dim += g_shared_dim
                self.shared = nn.Embedding(num_classes, g_shared_dim)  # ops.embedding, never SN
        else:
            self.affine_input_dim = num_classes
            self.linear0 = ref_linear(z_dim, self.in_dims[0] * 16, sn)
        blocks = []
        for index in range(self.num_blocks):
            blocks += [[RefGenBlock(self.in_dims[index], self.out_dims[index], self.affine_input_dim, sn)]]
            if index + 1 in attn_g_loc:
                blocks += [[RefSelfAttention(self.out_dims[index], sn)]]
        self.blocks = nn.ModuleList([nn.ModuleList(block) for block in blocks])
        self.bn4 = ref_bn(self.out_dims[-1])
        self.activation = nn.ReLU(inplace=True)
        self.conv2d5 = ref_conv(self.out_dims[-1], 3, 3, sn)
        self.tanh = nn.Tanh()

    def forward(self, z, label=None):
        if self.big:
            zs = torch.split(z, self.chunk_size, 1)
            z = zs[0]
            if self.num_classes:
                affines = [torch.cat([self.shared(label), item], 1) for item in zs[1:]]
            else:
                affines = list(zs[1:])
        else:
            onehot = (
                F.one_hot(label, num_classes=self.num_classes).to(torch.float32) if self.num_classes else None
            )
            affines = [onehot] * self.num_blocks
        act = self.linear0(z).view(-1, self.in_dims[0], self.bottom, self.bottom)
        counter = 0
        for blocklist in self.blocks:
            for block in blocklist:
                if isinstance(block, RefSelfAttention):
                    act = block(act)
                else:
                    act = block(act, affines[counter])
                    counter += 1
        act = self.activation(self.bn4(act))
        return self.tanh(self.conv2d5(act))


class RefDiscOptBlock(nn.Module):  # resnet.py DiscOptBlock
    def __init__(self, in_channels, out_channels, sn, inplace):
        super().__init__()
        self.apply_d_sn = sn
        self.conv2d0 = ref_conv(in_channels, out_channels, 1, sn)
        self.conv2d1 = ref_conv(in_channels, out_channels, 3, sn)
        self.conv2d2 = ref_conv(out_channels, out_channels, 3, sn)
        if not sn:
            self.bn0 = ref_bn(in_channels)
            self.bn1 = ref_bn(out_channels)
        self.activation = nn.ReLU(inplace=inplace)
        self.average_pooling = nn.AvgPool2d(2)

    def forward(self, x):
        x0 = x
        x = self.conv2d1(x)
        if not self.apply_d_sn:
            x = self.bn1(x)
        x = self.activation(x)
        x = self.average_pooling(self.conv2d2(x))
        x0 = self.average_pooling(x0)
        if not self.apply_d_sn:
            x0 = self.bn0(x0)
        return x + self.conv2d0(x0)


class RefDiscBlock(nn.Module):  # resnet.py DiscBlock
    def __init__(self, in_channels, out_channels, sn, downsample, inplace):
        super().__init__()
        self.apply_d_sn, self.downsample = sn, downsample
        self.activation = nn.ReLU(inplace=inplace)
        self.ch_mismatch = in_channels != out_channels
        if self.ch_mismatch or downsample:
            self.conv2d0 = ref_conv(in_channels, out_channels, 1, sn)
            if not sn:
                self.bn0 = ref_bn(in_channels)
        self.conv2d1 = ref_conv(in_channels, out_channels, 3, sn)
        self.conv2d2 = ref_conv(out_channels, out_channels, 3, sn)
        if not sn:
            self.bn1 = ref_bn(in_channels)
            self.bn2 = ref_bn(out_channels)
        self.average_pooling = nn.AvgPool2d(2)

    def forward(self, x):
        x0 = x
        if not self.apply_d_sn:
            x = self.bn1(x)
        x = self.activation(x)  # in place: with spectral norm x0 is x, so it becomes relu(x) too
        x = self.conv2d1(x)
        if not self.apply_d_sn:
            x = self.bn2(x)
        x = self.conv2d2(self.activation(x))
        if self.downsample:
            x = self.average_pooling(x)
        if self.downsample or self.ch_mismatch:
            if not self.apply_d_sn:
                x0 = self.bn0(x0)
            x0 = self.conv2d0(x0)
            if self.downsample:
                x0 = self.average_pooling(x0)
        return x + x0


D_OUT = {
    32: lambda c: [c * 2, c * 2, c * 2, c * 2],
    64: lambda c: [c, c * 2, c * 4, c * 8, c * 16],
    128: lambda c: [c, c * 2, c * 4, c * 8, c * 16, c * 16],
}
D_DOWN = {
    32: [True, True, False, False],
    64: [True, True, True, True, False],
    128: [True, True, True, True, True, False],
}


class RefDiscriminator(nn.Module):  # resnet.py Discriminator with d_cond_mtd "PD" (or "W/O")
    def __init__(self, img_size, d_conv_dim, sn, attn_d_loc, num_classes, inplace=True):
        super().__init__()
        self.out_dims = D_OUT[img_size](d_conv_dim)
        self.in_dims = [3, *self.out_dims[:-1]]
        self.num_classes = num_classes
        blocks = []
        for index in range(len(self.in_dims)):
            if index == 0:
                blocks += [[RefDiscOptBlock(self.in_dims[0], self.out_dims[0], sn, inplace)]]
            else:
                block = RefDiscBlock(
                    self.in_dims[index], self.out_dims[index], sn, D_DOWN[img_size][index], inplace
                )
                blocks += [[block]]
            if index + 1 in attn_d_loc:
                blocks += [[RefSelfAttention(self.out_dims[index], sn)]]
        self.blocks = nn.ModuleList([nn.ModuleList(block) for block in blocks])
        self.activation = nn.ReLU(inplace=inplace)
        self.linear1 = ref_linear(self.out_dims[-1], 1, sn)
        if num_classes:
            emb = nn.Embedding(num_classes, self.out_dims[-1])
            self.embedding = old_spectral_norm(emb, eps=1e-6) if sn else emb

    def forward(self, x, label=None):
        h = x
        for blocklist in self.blocks:
            for block in blocklist:
                h = block(h)
        h = torch.sum(self.activation(h), dim=[2, 3])
        adv_output = torch.squeeze(self.linear1(h), 1)
        if self.num_classes:
            adv_output = adv_output + torch.sum(torch.mul(self.embedding(label), h), 1)
        return adv_output


# -- helpers ----------------------------------------------------------------------------------------


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def to_ours(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """StudioGAN's ``weight_orig / _u / _v`` under ``torch.nn.utils.parametrizations``' names."""
    names = {
        "weight_orig": "parametrizations.weight.original",
        "weight_u": "parametrizations.weight.0._u",
        "weight_v": "parametrizations.weight.0._v",
    }
    out = {}
    for key, value in state.items():
        head, _, last = key.rpartition(".")
        out[f"{head}.{names[last]}" if last in names else key] = value
    return out


def trained_like(net: nn.Module, seed: int) -> nn.Module:
    """Random parameters and running statistics, so every layer's mapping shows in the outputs
    (attention's sigma, 0 at init, included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
    return net


def load_reference(ours: nn.Module, ref: nn.Module) -> None:
    """Strict load: the same keys and shapes, one for one."""
    state = to_ours(ref.state_dict())
    assert sorted(state) == sorted(ours.state_dict())
    ours.load_state_dict(state, strict=True)


def labels(n: int, k: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, k, (n,), generator=torch.Generator().manual_seed(seed))


# -- shapes and conditioning -------------------------------------------------------------------------

GENERATORS = [
    pytest.param(SNGANGenerator, dict(ch=4, latent_dim=16), id="sngan"),
    pytest.param(
        SNGANGenerator, dict(ch=2, latent_dim=16, image_size=64, attention=(2,)), id="sngan-64-attn"
    ),
    pytest.param(BigGANGenerator, dict(ch=4, latent_dim=16, shared_dim=6), id="biggan"),
    pytest.param(BigGANGenerator, dict(ch=2, latent_dim=18, shared_dim=4, image_size=128), id="biggan-128"),
]


@pytest.mark.parametrize("factory, options", GENERATORS)
@pytest.mark.parametrize("num_classes", [0, 10])
def test_generator_shapes_and_range(factory, options, num_classes):
    torch.manual_seed(0)
    g = factory(num_classes=num_classes, **options)
    y = labels(3, 10) if num_classes else None
    out = g(torch.randn(3, g.latent_dim), y)
    size = options.get("image_size", 32)
    assert out.shape == (3, 3, size, size) and g.image_size == size
    assert out.abs().max() <= 1.0
    assert g.eval()(torch.randn(1, g.latent_dim, 1, 1), None if y is None else y[:1]).shape == (
        1,
        3,
        size,
        size,
    )


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("num_classes", [0, 10])
def test_discriminator_shapes(size, num_classes):
    torch.manual_seed(0)
    ch = 4 if size == 32 else 2  # 8 channels at the attention (block 3)
    d = ProjectionDiscriminator(ch=ch, image_size=size, num_classes=num_classes, attention=(3,))
    y = labels(3, 10) if num_classes else None
    out = d(torch.randn(3, 3, size, size), y)
    assert out.shape == (3,) and out.dtype == torch.float32
    assert d.outputs_probabilities is False
    assert d(torch.randn(1, 3, size, size), None if y is None else y[:1]).shape == (1,)


@pytest.mark.parametrize("factory, options", GENERATORS[::2])
def test_a_class_changes_the_generated_image_and_only_its_own(factory, options):
    torch.manual_seed(0)
    g = trained_like(factory(num_classes=10, **options), 1).eval()
    z = torch.randn(2, g.latent_dim)
    with torch.no_grad():
        a, b = g(z, torch.tensor([3, 5])), g(z, torch.tensor([4, 5]))
    assert (a[0] - b[0]).abs().max() > 1e-3  # another class, another image from the same z
    torch.testing.assert_close(a[1], b[1], rtol=0, atol=0)  # the other image keeps its class


def test_a_class_changes_the_discriminator_score():
    torch.manual_seed(0)
    d = trained_like(ProjectionDiscriminator(ch=2, num_classes=10), 1).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        a, b = d(x, torch.tensor([3, 5])), d(x, torch.tensor([4, 5]))
    assert (a[0] - b[0]).abs() > 1e-4 and a[1] == b[1]


def test_gradients_reach_the_class_embeddings_of_the_classes_used():
    torch.manual_seed(0)
    y = torch.tensor([1, 1, 7])
    used = torch.zeros(10, dtype=torch.bool)
    used[[1, 7]] = True

    g = SNGANGenerator(ch=2, latent_dim=8, num_classes=10)
    g(torch.randn(3, 8), y).square().sum().backward()
    for cbn in (m for m in g.modules() if isinstance(m, ConditionalBatchNorm2d)):
        for lin in (cbn.gain, cbn.bias):  # weight [C, classes]: column k is class k's gain or bias
            per_class = lin.weight.grad.abs().sum(0)
            assert (per_class[used] > 0).all() and (per_class[~used] == 0).all()

    big = BigGANGenerator(ch=2, latent_dim=8, shared_dim=4, num_classes=10)
    big(torch.randn(3, 8), y).square().sum().backward()
    per_class = big.shared.weight.grad.abs().sum(1)
    assert (per_class[used] > 0).all() and (per_class[~used] == 0).all()

    d = ProjectionDiscriminator(ch=2, num_classes=10)
    d(torch.randn(3, 3, 32, 32), y).sum().backward()
    per_class = d.embedding.parametrizations.weight.original.grad.abs().sum(1)
    assert per_class[used].min() > 0  # spectral norm's sigma ties every row to every used one


# -- formulas on tiny cases ----------------------------------------------------------------------------


def test_projection_score_is_linear_plus_inner_product_with_the_class_embedding():
    torch.manual_seed(0)
    d = trained_like(ProjectionDiscriminator(ch=2, num_classes=3), 2).eval()
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 2, 1, 2])
    with torch.no_grad():
        out = d(x, y)
        h = x  # phi(x) by hand: the blocks, ReLU, sum over positions
        for blocklist in d.blocks:
            for block in blocklist:
                h = block(h)
        phi = F.relu(h).sum(dim=(2, 3))
        torch.testing.assert_close(d.features(x), phi, rtol=0, atol=0)

        def sn_weight(module: nn.Module) -> torch.Tensor:  # W / (u^T W v) from the stored vectors
            w = module.parametrizations.weight.original
            sn = module.parametrizations.weight[0]
            return w / torch.dot(sn._u, w @ sn._v)

        embed, lin = sn_weight(d.embedding), sn_weight(d.linear1)
        expected = phi @ lin[0] + d.linear1.bias[0] + (embed[y] * phi).sum(1)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    # The label enters through the inner product alone.
    with torch.no_grad():
        other = d(x, torch.tensor([1, 1, 1, 1]))
    torch.testing.assert_close(out - other, ((embed[y] - embed[1]) * phi).sum(1), rtol=1e-5, atol=1e-5)


def test_conditional_batch_norm_against_its_formula():
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(cond_dim=3, channels=2)
    with torch.no_grad():
        cbn.gain.weight.copy_(torch.tensor([[0.5, -0.2, 0.1], [0.0, 0.3, -0.4]]))
        cbn.bias.weight.copy_(torch.tensor([[1.0, 0.0, -1.0], [0.2, 0.4, 0.6]]))
    x = torch.randn(4, 2, 3, 3) * 2 + 1
    y = torch.tensor([0, 2, 1, 2])
    c = F.one_hot(y, 3).float()
    out = cbn(x, c)
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), keepdim=True, unbiased=False)
    gain = 1 + cbn.gain.weight.T[y]  # one-hot: class k's gain is column k
    bias = cbn.bias.weight.T[y]
    expected = (x - mean) / torch.sqrt(var + 1e-4) * gain[:, :, None, None] + bias[:, :, None, None]
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    # Running statistics as BatchNorm2d (momentum 0.1, unbiased variance), used in eval.
    n = x.numel() // 2
    torch.testing.assert_close(cbn.bn.running_mean, 0.1 * mean.flatten())
    torch.testing.assert_close(cbn.bn.running_var, 0.9 + 0.1 * var.flatten() * n / (n - 1))
    cbn.eval()
    rm, rv = cbn.bn.running_mean[None, :, None, None], cbn.bn.running_var[None, :, None, None]
    expected_eval = (x - rm) / torch.sqrt(rv + 1e-4) * gain[:, :, None, None] + bias[:, :, None, None]
    torch.testing.assert_close(cbn(x, c), expected_eval, rtol=1e-5, atol=1e-5)


# -- parameter counts at the CIFAR-10 reference sizes ------------------------------------------------

# Hand counts (weights + biases) of StudioGAN's CIFAR-10 layouts with 10 classes.
# SNGAN (src/configs/CIFAR10/SNGAN.yaml on src/config.py's defaults: z_dim 128, g_conv_dim 64, so
# 4 * 64 = 256 channels; d_conv_dim 64, so 2 * 64 = 128 channels):
_G_BLOCK = (256 * 256 + 256) + 2 * (256 * 256 * 9 + 256) + 2 * (2 * 10 * 256)  # conv1x1, 2 conv3x3, 2 cBN
SNGAN_G = (128 * 4096 + 4096) + 3 * _G_BLOCK + 2 * 256 + (256 * 3 * 9 + 3)  # linear0, blocks, bn4, conv2d5
_CONV3_128 = 128 * 128 * 9 + 128
_D_OPT = (3 * 128 + 128) + (3 * 128 * 9 + 128) + _CONV3_128
SNGAN_D = _D_OPT + (128 * 128 + 128 + 2 * _CONV3_128) + 2 * (2 * _CONV3_128) + (128 + 1) + 10 * 128
# BigGAN (BigGAN.yaml: z_dim 80 in 4 chunks of 20, g_shared_dim 128, g_conv_dim = d_conv_dim = 96,
# so 384 and 192 channels, attention after G block 2 and D block 1):
_BG_BLOCK = (384 * 384 + 384) + 2 * (384 * 384 * 9 + 384) + 2 * (2 * (128 + 20) * 384)
_BG_ATTN = 2 * (384 * 48) + 384 * 192 + 192 * 384 + 1
BIGGAN_G = (20 * 6144 + 6144) + 10 * 128 + 3 * _BG_BLOCK + _BG_ATTN + 2 * 384 + (384 * 27 + 3)
_CONV3_192 = 192 * 192 * 9 + 192
_BD_OPT = (3 * 192 + 192) + (3 * 192 * 9 + 192) + _CONV3_192
_BD_ATTN = 2 * (192 * 24) + 192 * 96 + 96 * 192 + 1
BIGGAN_D = _BD_OPT + _BD_ATTN + (192 * 192 + 192 + 2 * _CONV3_192) + 2 * (2 * _CONV3_192) + 193 + 10 * 192


def test_parameter_counts_match_the_reference_cifar10_sizes():
    with torch.device("meta"):  # counts only: nothing is allocated
        counts = {
            "sngan G": (
                SNGANGenerator(num_classes=10),
                RefGenerator(128, 32, 64, 10, sn=False, attn_g_loc=[], big=False),
                SNGAN_G,
            ),
            "projection D": (
                ProjectionDiscriminator(num_classes=10),
                RefDiscriminator(32, 64, sn=True, attn_d_loc=[], num_classes=10),
                SNGAN_D,
            ),
            "biggan G": (
                BigGANGenerator(num_classes=10),
                RefGenerator(80, 32, 96, 10, sn=True, attn_g_loc=[2], big=True, g_shared_dim=128),
                BIGGAN_G,
            ),
            "biggan D": (
                ProjectionDiscriminator(ch=96, attention=(1,), num_classes=10),
                RefDiscriminator(32, 96, sn=True, attn_d_loc=[1], num_classes=10),
                BIGGAN_D,
            ),
        }
    for name, (ours, ref, by_hand) in counts.items():
        assert n_params(ours) == n_params(ref) == by_hand, name
    assert (SNGAN_G, SNGAN_D, BIGGAN_G, BIGGAN_D) == (4_304_387, 1_055_105, 9_416_196, 2_415_170)


# -- parity with StudioGAN -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ours_options, ref_args, train",
    [
        # SNGAN as configured (no spectral norm in G): train mode, batch statistics.
        (dict(num_classes=10), dict(num_classes=10, sn=False, attn_g_loc=[]), True),
        (dict(num_classes=0), dict(num_classes=0, sn=False, attn_g_loc=[]), True),
        (
            dict(num_classes=10, image_size=64),
            dict(num_classes=10, sn=False, attn_g_loc=[], img_size=64),
            True,
        ),
        # With spectral norm and attention: eval, the stored power-iteration vectors.
        (
            dict(num_classes=10, spectral_norm=True, attention=(2,)),
            dict(num_classes=10, sn=True, attn_g_loc=[2]),
            False,
        ),
    ],
    ids=["cond", "uncond", "cond-64", "sn-attn-eval"],
)
def test_sngan_generator_matches_studiogan(ours_options, ref_args, train):
    torch.manual_seed(0)
    size = ref_args.pop("img_size", 32)
    ref = trained_like(RefGenerator(16, size, 4, big=False, **ref_args), 3).train(train)
    ours = SNGANGenerator(latent_dim=16, ch=4, **ours_options).train(train)
    load_reference(ours, ref)
    z, k = torch.randn(4, 16), ours_options["num_classes"]
    y = labels(4, k) if k else None
    with torch.no_grad():
        torch.testing.assert_close(ours(z, y), ref(z, y), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "num_classes, size", [(10, 32), (0, 32), (10, 64)], ids=["cond", "uncond", "cond-64"]
)
def test_biggan_generator_matches_studiogan(num_classes, size):
    torch.manual_seed(0)
    latent = 20 if size == 64 else 16  # 5 and 4 chunks
    ref = RefGenerator(latent, size, 4, num_classes, sn=True, attn_g_loc=[2], big=True, g_shared_dim=6)
    ref = trained_like(ref, 4).eval()
    ours = BigGANGenerator(
        latent_dim=latent, ch=4, shared_dim=6, image_size=size, num_classes=num_classes
    ).eval()
    load_reference(ours, ref)
    z = torch.randn(4, latent)
    y = labels(4, num_classes) if num_classes else None
    with torch.no_grad():
        torch.testing.assert_close(ours(z, y), ref(z, y), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "options, inplace, train",
    [
        # StudioGAN's own (in-place ReLU): its shortcut reads relu(x); shortcut_relu reproduces it.
        (dict(num_classes=10, shortcut_relu=True), True, False),
        (dict(num_classes=10, attention=(1,), shortcut_relu=True), True, False),
        (dict(num_classes=10, image_size=64, shortcut_relu=True), True, False),
        # The paper's block: the reference without the in-place ReLU.
        (dict(num_classes=10), False, False),
        (dict(num_classes=0), False, False),
        # Without spectral norm StudioGAN uses batch norm (no aliasing there): train mode.
        (dict(num_classes=10, spectral_norm=False), True, True),
    ],
    ids=["studiogan", "studiogan-attn", "studiogan-64", "paper", "paper-uncond", "bn-train"],
)
def test_projection_discriminator_matches_studiogan(options, inplace, train):
    torch.manual_seed(0)
    size = options.get("image_size", 32)
    ref = RefDiscriminator(
        size,
        4,
        sn=options.get("spectral_norm", True),
        attn_d_loc=list(options.get("attention", ())),
        num_classes=options["num_classes"],
        inplace=inplace,
    )
    ref = trained_like(ref, 5).train(train)
    ours = ProjectionDiscriminator(ch=4, **options).train(train)
    load_reference(ours, ref)
    x = torch.randn(4, 3, size, size)
    y = labels(4, 10) if options["num_classes"] else None
    with torch.no_grad():
        expected = ref(x.clone(), y)  # the in-place ReLU never touches x itself, but be sure
        torch.testing.assert_close(ours(x, y), expected, rtol=0, atol=1e-5)


def test_the_shortcut_relu_option_changes_the_discriminator():
    torch.manual_seed(0)
    ref = trained_like(RefDiscriminator(32, 4, sn=True, attn_d_loc=[], num_classes=0, inplace=True), 6).eval()
    plain = ProjectionDiscriminator(ch=4).eval()
    load_reference(plain, ref)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (plain(x) - ref(x)).abs().max() > 1e-4  # so the parity above tells the two apart


# -- errors, size checks and the registry --------------------------------------------------------------


def test_labels_are_checked_on_one_line():
    g = SNGANGenerator(ch=2, latent_dim=8, num_classes=4)
    z = torch.randn(2, 8)
    with pytest.raises(GanforgeError, match="num_classes=4 needs class labels y"):
        g(z)
    with pytest.raises(GanforgeError, match=r"must be integer class indices of shape \[2\]"):
        g(z, torch.tensor([0.0, 1.0]))
    with pytest.raises(GanforgeError, match=r"shape \[2\], got torch.int64 \[3\]"):
        g(z, torch.tensor([0, 1, 2]))
    with pytest.raises(GanforgeError, match=r"in 0..3, got 1..4"):
        g(z, torch.tensor([1, 4]))
    with pytest.raises(GanforgeError, match=r"z must be \[N, 8\]"):
        g(torch.randn(2, 9), torch.tensor([0, 1]))
    with pytest.raises(GanforgeError, match="unconditional"):
        ProjectionDiscriminator(ch=2)(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))
    with pytest.raises(GanforgeError, match="needs class labels"):
        ProjectionDiscriminator(ch=2, num_classes=3)(torch.randn(2, 3, 32, 32))
    assert g(z, torch.tensor([0, 3], dtype=torch.int32)).shape == (2, 3, 32, 32)  # int32 is fine


def test_bad_options_are_refused_on_one_line():
    with pytest.raises(GanforgeError, match=r"latent_dim=81 must divide into 4 equal chunks .* e\.g\. 80"):
        BigGANGenerator(latent_dim=81, ch=2)
    with pytest.raises(GanforgeError, match=r"there are 3 blocks, so positions must be 1\.\.3"):
        SNGANGenerator(ch=2, attention=(4,))
    with pytest.raises(GanforgeError, match="attention after block 1 needs at least 8 channels there"):
        ProjectionDiscriminator(ch=2, attention=(1,))  # 4 channels at 32 px
    registry = get_registry()
    with pytest.raises(GanforgeError, match="attention"):
        registry.build("discriminator", {"name": "projection", "attention": [0]})


@pytest.mark.parametrize(
    "kind, table",
    [
        ("generator", {"name": "sngan", "ch": 2, "image_size": 64}),
        ("generator", {"name": "biggan", "ch": 2, "image_size": 64}),
        ("discriminator", {"name": "projection", "ch": 2, "image_size": 64}),
    ],
)
def test_image_size_is_declared_and_checked(kind, table):
    registry = get_registry()
    spec = Spec(registry.get(kind, table["name"]), registry.validate(kind, table), "x")
    assert image_size_problem(registry, spec, 64) is None
    assert image_size_problem(registry, spec, 32) == f"it is built for 64 px images; set {kind}.image_size=32"
    assert "use 32, 64 or 128" in image_size_problem(registry, spec, 48)


def test_built_through_the_registry_with_ganforge_init():
    registry = get_registry()
    # num_classes is build context (the dataset's class count), not a recipe option
    g = registry.build(
        "generator", {"name": "biggan", "ch": 2, "latent_dim": 8, "shared_dim": 4}, num_classes=3
    )
    d = registry.build(
        "discriminator",
        {"name": "projection", "ch": 8, "attention": [1], "init": "orthogonal", "init_gain": 1.0},
        num_classes=3,
    )
    with pytest.raises(GanforgeError, match="unknown key 'num_classes'"):
        registry.validate("generator", {"name": "sngan", "num_classes": 3})
    y = torch.tensor([0, 2])
    scores = d(g(torch.randn(2, 8), y), y)
    assert scores.shape == (2,) and torch.isfinite(scores).all()
