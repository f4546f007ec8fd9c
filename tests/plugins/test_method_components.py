"""Components for CUT and U-GAT-IT: generator options, spectral norm, hinge/R1, PatchNCE, the
patch projector, the U-GAT-IT networks and DiffAugment, against hand computations."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from ganforge.plugins import get_registry
from ganforge_plugins.augment import DiffAugment
from ganforge_plugins.losses import (
    BCELoss,
    HingeLoss,
    LSGANLoss,
    WGANGPLoss,
    gradient_penalty,
    r1_penalty,
)
from ganforge_plugins.networks import (
    ILN,
    AdaILN,
    DCGANDiscriminator,
    PatchGANDiscriminator,
    PatchProjector,
    PixelShuffleResnetGenerator,
    ResnetGenerator,
    UGATITDiscriminator,
    UGATITGenerator,
)
from ganforge_plugins.networks.resnet import BlurDownsample, BlurUpsample
from ganforge_plugins.objectives.cut import patch_nce_loss


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """The machine is shared: every test here runs on one thread."""


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# -- ResNet generator options -------------------------------------------------------------------

# ResnetGenerator(ngf=2, blocks=1) before these options existed: the official CycleGAN layout.
DEFAULT_KEYS = [
    "model.1.weight",
    "model.1.bias",
    "model.4.weight",
    "model.4.bias",
    "model.7.weight",
    "model.7.bias",
    "model.10.conv_block.1.weight",
    "model.10.conv_block.1.bias",
    "model.10.conv_block.5.weight",
    "model.10.conv_block.5.bias",
    "model.11.weight",
    "model.11.bias",
    "model.14.weight",
    "model.14.bias",
    "model.18.weight",
    "model.18.bias",
]
DEFAULT_LAYERS = (
    ["ReflectionPad2d", "Conv2d", "InstanceNorm2d", "ReLU"]
    + ["Conv2d", "InstanceNorm2d", "ReLU"] * 2
    + ["ResnetBlock"]
    + ["ConvTranspose2d", "InstanceNorm2d", "ReLU"] * 2
    + ["ReflectionPad2d", "Conv2d", "Tanh"]
)


def test_resnet_defaults_keep_the_official_layout() -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=2, blocks=1)
    assert list(g.state_dict()) == DEFAULT_KEYS
    assert [type(m).__name__ for m in g.model] == DEFAULT_LAYERS
    torch.manual_seed(0)
    explicit = ResnetGenerator(ngf=2, blocks=1, upsample="transpose", antialias=False)
    x = torch.randn(1, 3, 16, 16)
    assert torch.equal(g(x), explicit(x))
    assert g.size_multiple == 4 and PixelShuffleResnetGenerator(ngf=2, blocks=1).size_multiple == 4


def test_antialias_matches_cut_layout_and_parameter_count() -> None:
    g = ResnetGenerator(ngf=2, blocks=9, antialias=True)
    # CUT's resnet_9blocks: blur buffers at 7 and 11 (down) and 21 and 25 (up), convs after them.
    outside_blocks = [k for k in g.state_dict() if "conv_block" not in k]
    assert outside_blocks == [
        "model.1.weight",
        "model.1.bias",
        "model.4.weight",
        "model.4.bias",
        "model.7.filt",
        "model.8.weight",
        "model.8.bias",
        "model.11.filt",
        "model.21.filt",
        "model.22.weight",
        "model.22.bias",
        "model.25.filt",
        "model.26.weight",
        "model.26.bias",
        "model.30.weight",
        "model.30.bias",
    ]
    assert all(m.stride == (1, 1) for m in g.modules() if isinstance(m, nn.Conv2d))
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in g.modules())
    assert g(torch.randn(2, 3, 32, 24)).shape == (2, 3, 32, 24)
    # Stride-1 convs and 3x3 convs after the blurs have the shapes of the strided/transposed ones.
    assert n_params(ResnetGenerator(ngf=64, blocks=9, antialias=True)) == 11_378_179


def test_blur_downsample_is_the_binomial_filter_with_stride_2() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 2, 6, 8)
    k = torch.tensor([1.0, 2.0, 1.0])
    filt = (k[:, None] * k[None, :] / 16).expand(2, 1, 3, 3)
    expected = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), filt, stride=2, groups=2)
    torch.testing.assert_close(BlurDownsample(2)(x), expected)
    assert BlurDownsample(2)(x).shape == (1, 2, 3, 4)


def test_blur_upsample_doubles_and_interpolates() -> None:
    up = BlurUpsample(3)
    const = torch.full((1, 3, 5, 7), 2.5)
    torch.testing.assert_close(up(const), torch.full((1, 3, 10, 14), 2.5))
    # A vertical ramp i: inside, output rows 2i and 2i+1 sit at i - 1/4 and i + 1/4.
    ramp = torch.arange(6.0).view(1, 1, 6, 1).expand(1, 3, 6, 4)
    col = up(ramp)[0, 0, :, 2]
    inner = torch.tensor([i + d for i in range(1, 5) for d in (-0.25, 0.25)])
    torch.testing.assert_close(col[2:10], inner)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("antialias", [False, True])
def test_resize_convolution_upsampling(mode: str, antialias: bool) -> None:
    g = ResnetGenerator(ngf=2, blocks=1, upsample=mode, antialias=antialias)
    ups = [m for m in g.modules() if isinstance(m, nn.Upsample)]
    assert len(ups) == 2 and all(m.mode == mode and m.scale_factor == 2 for m in ups)
    assert not any(isinstance(m, nn.ConvTranspose2d | BlurUpsample) for m in g.modules())
    assert sum(isinstance(m, BlurDownsample) for m in g.modules()) == (2 if antialias else 0)
    y = g(torch.randn(1, 3, 20, 28))
    assert y.shape == (1, 3, 20, 28) and y.abs().max() <= 1


def test_pixelshuffle_keeps_its_upsampling_with_antialias() -> None:
    g = PixelShuffleResnetGenerator(ngf=2, blocks=1, antialias=True)
    assert sum(isinstance(m, nn.PixelShuffle) for m in g.modules()) == 2
    assert sum(isinstance(m, BlurDownsample) for m in g.modules()) == 2
    assert g(torch.randn(1, 3, 16, 16)).shape == (1, 3, 16, 16)


def test_resnet_rejects_unknown_upsample() -> None:
    with pytest.raises(ValueError, match="upsample"):
        ResnetGenerator(upsample="deconv")  # type: ignore[arg-type]


def test_features_are_the_layer_outputs_and_stop_early() -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=2, blocks=5, antialias=True).eval()
    x = torch.randn(2, 3, 16, 16)
    expected, feat = [], x
    for layer in g.model:
        feat = layer(feat)
        expected.append(feat)
    calls = []
    g.model[17].register_forward_hook(lambda *_: calls.append(1))
    nce_layers = [0, 4, 8, 12, 16]
    feats = g.features(x, nce_layers)
    assert not calls  # nothing after layer 16 ran
    for i, f in zip(nce_layers, feats):
        assert torch.equal(f, expected[i])
    assert torch.equal(feats[0], F.pad(x, (3, 3, 3, 3), mode="reflect"))
    assert [f.shape[1] for f in feats] == g.feature_channels(nce_layers) == [3, 4, 8, 8, 8]
    # Any order: the list follows the request.
    assert [f.shape for f in g.features(x, [8, 0])] == [expected[8].shape, expected[0].shape]
    # A norm output stays itself although the in-place ReLU after it runs.
    norm_out, _ = g.features(x, [2, 3])
    torch.testing.assert_close(norm_out, g.model[2](g.model[1](g.model[0](x))))
    assert norm_out.min() < 0
    with pytest.raises(ValueError):
        g.features(x, [])
    with pytest.raises(ValueError):
        g.feature_channels([len(g.model)])


@pytest.mark.parametrize("upsample", ["transpose", "pixelshuffle", "nearest"])
def test_feature_channels_match_every_layer(upsample: str) -> None:
    g = ResnetGenerator(in_channels=1, out_channels=2, ngf=2, blocks=1, upsample=upsample)
    every = list(range(len(g.model)))
    feats = g.features(torch.randn(1, 1, 16, 16), every)
    assert [f.shape[1] for f in feats] == g.feature_channels(every)


# -- spectral norm ------------------------------------------------------------------------------


def sn_discriminators() -> list[tuple[nn.Module, nn.Module, tuple[int, ...]]]:
    def make(seed: int) -> tuple[nn.Module, nn.Module]:
        torch.manual_seed(seed)
        return (
            PatchGANDiscriminator(ndf=4, norm="none", spectral_norm=True),
            DCGANDiscriminator(ndf=4, image_size=32, spectral_norm=True),
        )

    (p0, d0), (p1, d1) = make(0), make(1)
    return [(p0, p1, (2, 3, 64, 64)), (d0, d1, (2, 3, 32, 32))]


def test_spectral_norm_bounds_the_largest_singular_value_and_survives_state_dict() -> None:
    for d, fresh, shape in sn_discriminators():
        convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
        assert convs and all(parametrize.is_parametrized(m, "weight") for m in convs)
        d.train()
        x = torch.randn(*shape)
        for _ in range(5):
            d(x)
        for m in convs:
            sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
            assert sigma.item() == pytest.approx(1.0, abs=2e-2)
        fresh.load_state_dict(d.state_dict())
        d.eval()
        fresh.eval()
        assert torch.equal(d(x), fresh(x))


def test_spectral_norm_default_off_and_registry_init_reaches_the_raw_weight() -> None:
    assert not any(parametrize.is_parametrized(m) for m in PatchGANDiscriminator(ndf=4).modules())
    assert not any(parametrize.is_parametrized(m) for m in DCGANDiscriminator(ndf=4, image_size=32).modules())
    d = get_registry().build(
        "discriminator", {"name": "patchgan", "ndf": 8, "norm": "none", "spectral_norm": True}
    )
    raw = d.model[2].parametrizations.weight.original
    assert raw.std().item() == pytest.approx(0.02, rel=0.2)
    d(torch.randn(1, 3, 32, 32))
    sigma = torch.linalg.matrix_norm(d.model[2].weight.detach().flatten(1), ord=2)
    assert sigma.item() == pytest.approx(1.0, abs=2e-2)


# -- hinge and R1 -------------------------------------------------------------------------------


class LinearCritic(nn.Module):
    """D(x) = <w, x> per sample: its input gradient is w everywhere."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1)


class QuadraticCritic(LinearCritic):
    """D(x) = <w, x^2>: its input gradient is 2 w x, different for every sample."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * x * self.w).flatten(1).sum(1)


def test_hinge_matches_hand_computation() -> None:
    real = torch.tensor([2.0, 0.5, -1.0])
    fake = torch.tensor([-2.0, 0.0, 0.5])
    loss = HingeLoss()
    # relu(1 - real) = 0, 0.5, 2 and relu(1 + fake) = 0, 1, 1.5: both means are 2.5 / 3.
    assert loss.d_loss(real, fake).item() == pytest.approx(5.0 / 3.0)
    assert loss.g_loss(fake).item() == pytest.approx(0.5)
    torch.testing.assert_close(
        loss.d_loss(real.sigmoid(), fake.sigmoid(), probabilities=True), loss.d_loss(real, fake)
    )
    torch.testing.assert_close(loss.g_loss(fake.sigmoid(), probabilities=True), loss.g_loss(fake))
    low = loss.d_loss(real.bfloat16(), fake.bfloat16())
    assert low.dtype == torch.float32 and loss.penalty(LinearCritic(torch.ones(3)), real, fake) is None


def test_r1_matches_hand_computed_gradients() -> None:
    torch.manual_seed(0)
    w = torch.randn(1, 2, 3, 3)
    real, fake = torch.randn(4, 2, 3, 3), torch.randn(4, 2, 3, 3)
    gamma = 10.0
    # Linear D: the gradient is w for every image.
    assert r1_penalty(LinearCritic(w), real, gamma).item() == pytest.approx(gamma / 2 * w.pow(2).sum().item())
    # Quadratic D: the gradient of image i is 2 w x_i.
    by_hand = sum((2 * w[0] * real[i]).pow(2).sum().item() for i in range(4)) / 4 * gamma / 2
    d = QuadraticCritic(w)
    assert r1_penalty(d, real, gamma).item() == pytest.approx(by_hand, rel=1e-5)
    for loss in (LSGANLoss(r1_gamma=gamma), BCELoss(r1_gamma=gamma), HingeLoss(r1_gamma=gamma)):
        assert loss.penalty(d, real, fake).item() == pytest.approx(by_hand, rel=1e-5)
    both = HingeLoss(gradient_penalty=1.0, r1_gamma=gamma)
    torch.manual_seed(1)
    gp = gradient_penalty(d, real, fake, 1.0)
    torch.manual_seed(1)
    torch.testing.assert_close(both.penalty(d, real, fake), gp + r1_penalty(d, real, gamma))
    assert WGANGPLoss(lambda_gp=0.0, r1_gamma=gamma).penalty(d, real, fake).item() == pytest.approx(
        by_hand, rel=1e-5
    )


def test_r1_trains_only_the_discriminator_in_float32_under_autocast() -> None:
    torch.manual_seed(0)
    d = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 4, stride=2))
    real = torch.randn(2, 3, 8, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = r1_penalty(d, real, 1.0)
    assert value.dtype == torch.float32 and value.item() > 0
    value.backward()
    assert real.grad is None and d[0].weight.grad.abs().sum() > 0


def test_r1_gamma_validation_and_registry() -> None:
    with pytest.raises(ValueError, match="r1_gamma"):
        HingeLoss(r1_gamma=-1.0)
    with pytest.raises(ValueError, match="r1_gamma"):
        WGANGPLoss(r1_gamma=-0.5)
    reg = get_registry()
    assert reg.get("loss", "hinge").factory is HingeLoss
    assert reg.build("loss", {"name": "lsgan", "r1_gamma": 5}).r1_gamma == 5.0
    assert reg.build("loss", {"name": "hinge", "gradient_penalty": 2.0}).gradient_penalty == 2.0


# -- PatchNCE -----------------------------------------------------------------------------------


def unit(angle: float) -> list[float]:
    return [math.cos(angle), math.sin(angle)]


@pytest.mark.parametrize("temperature", [0.07, 0.5])
def test_patch_nce_matches_hand_computation(temperature: float) -> None:
    # 2 images x 3 patches of unit 2-vectors, given by their angles.
    q_angles = [0.0, 1.0, 2.0, 3.0, 4.5, 5.0]
    k_angles = [0.2, 1.5, 1.9, -3.0, 4.0, 0.3]
    q = torch.tensor([unit(a) for a in q_angles], requires_grad=True)
    k = torch.tensor([unit(a) for a in k_angles], requires_grad=True)
    losses = patch_nce_loss(q, k, temperature, batch_size=2)
    assert losses.shape == (6,)
    for i in range(6):
        img = i // 3
        pos = math.cos(q_angles[i] - k_angles[i])
        # Negatives: the keys of the same image, the matching one masked to -10.
        negs = [math.cos(q_angles[i] - k_angles[j]) if j != i else -10.0 for j in range(3 * img, 3 * img + 3)]
        logits = [pos / temperature] + [n / temperature for n in negs]
        log_softmax0 = logits[0] - math.log(sum(math.exp(v) for v in logits))
        assert losses[i].item() == pytest.approx(-log_softmax0, rel=1e-5, abs=1e-6)
    losses.mean().backward()
    assert q.grad.abs().sum() > 0 and k.grad is None  # keys are detached


def test_patch_nce_rejects_bad_inputs() -> None:
    q = F.normalize(torch.randn(6, 4), dim=1)
    with pytest.raises(ValueError):
        patch_nce_loss(q, q, batch_size=4)
    with pytest.raises(ValueError):
        patch_nce_loss(q, q[:5], batch_size=1)
    with pytest.raises(ValueError):
        patch_nce_loss(q, q, 0.0, batch_size=2)


# -- patch projector ----------------------------------------------------------------------------


def test_projector_builds_its_mlps_eagerly() -> None:
    p = PatchProjector([3, 8, 16], nc=32)
    shapes = {k: tuple(v.shape) for k, v in p.state_dict().items()}
    assert shapes == {
        "mlp_0.0.weight": (32, 3),
        "mlp_0.0.bias": (32,),
        "mlp_0.2.weight": (32, 32),
        "mlp_0.2.bias": (32,),
        "mlp_1.0.weight": (32, 8),
        "mlp_1.0.bias": (32,),
        "mlp_1.2.weight": (32, 32),
        "mlp_1.2.bias": (32,),
        "mlp_2.0.weight": (32, 16),
        "mlp_2.0.bias": (32,),
        "mlp_2.2.weight": (32, 32),
        "mlp_2.2.bias": (32,),
    }
    weights = torch.cat([m.weight.flatten() for m in p.modules() if isinstance(m, nn.Linear)])
    assert weights.std().item() == pytest.approx(0.02, rel=0.1)
    assert all(m.bias.abs().sum() == 0 for m in p.modules() if isinstance(m, nn.Linear))
    assert p.out_channels == [32, 32, 32]
    assert len(PatchProjector([3, 8], use_mlp=False).state_dict()) == 0
    with pytest.raises(ValueError):
        PatchProjector([])


def test_projector_samples_unit_features_and_reuses_ids() -> None:
    torch.manual_seed(0)
    p = PatchProjector([3, 8], nc=16, num_patches=20)
    feats = [torch.randn(2, 3, 8, 8), torch.randn(2, 8, 4, 4)]  # 64 and 16 positions
    out, ids = p(feats)
    assert [tuple(o.shape) for o in out] == [(40, 16), (32, 16)]
    # CUT's x / (||x|| + 1e-7): at init the MLP outputs are ~1e-3 long, so 1e-7 shows.
    assert all(torch.allclose(o.norm(dim=1), torch.ones(o.shape[0]), atol=1e-3) for o in out)
    assert ids[0].shape == (20,) and ids[0].unique().numel() == 20 and int(ids[0].max()) < 64
    assert torch.equal(ids[1].sort().values, torch.arange(16))  # fewer positions than asked: all
    again, same_ids = p(feats, ids)
    assert all(torch.equal(a, b) for a, b in zip(again, out))
    assert all(a is b for a, b in zip(same_ids, ids))
    other, _ = p([f + 1 for f in feats], ids)  # another image at the same places
    assert not torch.allclose(other[0], out[0])


def test_projector_without_mlp_gathers_the_sampled_positions() -> None:
    torch.manual_seed(0)
    p = PatchProjector([4], num_patches=5, use_mlp=False)
    feat = torch.randn(2, 4, 3, 3)
    (out,), (ids,) = p([feat])
    flat = feat.flatten(2)  # [B, C, H*W]: id = row * W + col
    expected = torch.cat([flat[b][:, ids].t() for b in range(2)])
    torch.testing.assert_close(out, F.normalize(expected, dim=1))
    (cl,), _ = p([feat.contiguous(memory_format=torch.channels_last)], [ids])
    torch.testing.assert_close(cl, out)


def test_projector_is_deterministic_under_manual_seed() -> None:
    feats = [torch.randn(2, 3, 8, 8)]

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(3)
        (out,), (ids,) = PatchProjector([3], nc=8, num_patches=10)(feats)
        return out, ids

    (a, ia), (b, ib) = run(), run()
    assert torch.equal(a, b) and torch.equal(ia, ib)


# -- U-GAT-IT -----------------------------------------------------------------------------------


def iln_by_hand(x, rho, gamma, beta, eps=1e-5):
    in_mean = x.mean(dim=(2, 3), keepdim=True)
    in_var = ((x - in_mean) ** 2).mean(dim=(2, 3), keepdim=True)
    ln_mean = x.mean(dim=(1, 2, 3), keepdim=True)
    ln_var = ((x - ln_mean) ** 2).mean(dim=(1, 2, 3), keepdim=True)
    x_in = (x - in_mean) / torch.sqrt(in_var + eps)
    x_ln = (x - ln_mean) / torch.sqrt(ln_var + eps)
    return (rho * x_in + (1 - rho) * x_ln) * gamma + beta


def test_adailn_and_iln_match_their_formula() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 4, 5, 6) * 3 + 1
    ada = AdaILN(4)
    assert torch.equal(ada.rho, torch.full((1, 4, 1, 1), 0.9))
    with torch.no_grad():
        ada.rho.copy_(torch.tensor([0.0, 0.3, 0.7, 1.0]).view(1, 4, 1, 1))
    gamma, beta = torch.randn(2, 4), torch.randn(2, 4)
    expected = iln_by_hand(x, ada.rho, gamma[:, :, None, None], beta[:, :, None, None])
    torch.testing.assert_close(ada(x, gamma, beta), expected, rtol=1e-5, atol=1e-5)

    iln = ILN(4)
    assert torch.equal(iln.rho, torch.zeros(1, 4, 1, 1))
    assert torch.equal(iln.gamma, torch.ones(1, 4, 1, 1)) and torch.equal(iln.beta, torch.zeros(1, 4, 1, 1))
    with torch.no_grad():
        iln.rho.fill_(0.25)
        iln.gamma.copy_(torch.randn(1, 4, 1, 1))
        iln.beta.copy_(torch.randn(1, 4, 1, 1))
    torch.testing.assert_close(iln(x), iln_by_hand(x, iln.rho, iln.gamma, iln.beta), rtol=1e-5, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert iln(x.bfloat16()).dtype == torch.bfloat16


def test_light_generator_matches_reference_parameter_count() -> None:
    # Counted by hand from the reference's layers (ngf=64, n_res=4, light, 256 px): encoder convs
    # 9,408 + 73,728 + 294,912; 4 residual blocks 4 x 1,179,648; CAM gap/gmp 2 x 256 and conv1x1
    # 131,328; MLP 2 x 65,536 and gamma/beta 2 x 65,536; 4 AdaILN blocks 4 x (1,179,648 + 2 x 256);
    # decoder convs 294,912 + 73,728 + 9,408 and ILNs 3 x 128 + 3 x 64.
    g = UGATITGenerator(ngf=64, blocks=4, image_size=256, light=True)
    assert n_params(g) == 10_589_888


def test_ugatit_generator_shapes_and_size_check() -> None:
    torch.manual_seed(0)
    g = UGATITGenerator(ngf=4, blocks=2, image_size=32)
    assert g.size_multiple == 4
    assert g.FC[0].in_features == 8 * 8 * 16  # full mode reads the whole 8x8 map
    x = torch.randn(2, 3, 32, 32)
    image, cam_logit, heatmap = g.forward_cam(x)
    assert image.shape == (2, 3, 32, 32) and image.abs().max() <= 1
    assert cam_logit.shape == (2, 2) and heatmap.shape == (2, 1, 8, 8)
    g.eval()
    assert torch.equal(g(x), g.forward_cam(x)[0])
    with pytest.raises(ValueError, match="image_size"):
        g(torch.randn(1, 3, 48, 48))
    light = UGATITGenerator(ngf=4, blocks=1, image_size=32, light=True)
    assert light.FC[0].in_features == 16
    assert light(torch.randn(1, 3, 48, 40)).shape == (1, 3, 48, 40)
    image.mean().backward()
    assert all(p.grad is not None for p in g.UpBlock1_1.parameters())


def test_clip_rho_clamps_in_place() -> None:
    g = UGATITGenerator(ngf=2, blocks=1, image_size=16, light=True)
    rhos = [m.rho for m in g.modules() if isinstance(m, AdaILN | ILN)]
    assert len(rhos) == 2 + 2  # one block's two AdaILNs and the decoder's two ILNs
    with torch.no_grad():
        for rho in rhos:
            rho.copy_(torch.linspace(-1, 2, rho.numel()).view_as(rho))
    before = [rho.detach().clone() for rho in rhos]
    g.clip_rho()
    for rho, old in zip(rhos, before):
        assert rho.min() >= 0 and rho.max() <= 1
        torch.testing.assert_close(rho.detach(), old.clamp(0, 1))
    assert isinstance(rhos[0], nn.Parameter) and rhos[0] is g.UpBlock1_1.norm1.rho


def test_ugatit_discriminator_outputs_and_spectral_norm() -> None:
    torch.manual_seed(0)
    local = UGATITDiscriminator(ndf=2, layers=5)
    assert local.outputs_probabilities is False
    logits, cam_logit = local(torch.randn(2, 3, 256, 256))
    assert logits.shape == (2, 1, 30, 30) and cam_logit.shape == (2, 2)
    logits, cam_logit = local(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 1, 2, 2) and cam_logit.shape == (2, 2)
    logits, cam_logit = UGATITDiscriminator(ndf=2, layers=7)(torch.randn(1, 3, 128, 128))
    assert logits.shape == (1, 1, 2, 2) and cam_logit.shape == (1, 2)
    layers = [m for m in local.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    normed = [m for m in layers if parametrize.is_parametrized(m, "weight")]
    assert len(layers) == 4 + 2 + 1 + 1 and normed == [m for m in layers if m is not local.conv1x1]
    with pytest.raises(ValueError):
        UGATITDiscriminator(layers=2)


def test_ugatit_registered_as_generator_and_discriminator() -> None:
    reg = get_registry()
    assert reg.get("generator", "ugatit").factory is UGATITGenerator
    assert reg.get("discriminator", "ugatit").factory is UGATITDiscriminator
    g = reg.build("generator", {"name": "ugatit", "ngf": 2, "blocks": 1, "image_size": 32, "init": "none"})
    d = reg.build("discriminator", {"name": "ugatit", "ndf": 2, "layers": 5})
    # init="none" keeps PyTorch's default U(+-1/sqrt(fan_in)) (the reference's); the default
    # init is N(0, 0.02).
    assert g.DownBlock[1].weight.std().item() == pytest.approx(1 / math.sqrt(3 * 3 * 49), rel=0.2)
    assert d.conv.parametrizations.weight.original.std().item() == pytest.approx(0.02, rel=0.3)
    logits, cam_logit = d(g(torch.randn(1, 3, 32, 32)))
    assert logits.shape == (1, 1, 2, 2) and cam_logit.shape == (1, 2)


# -- DiffAugment --------------------------------------------------------------------------------


def test_diffaugment_empty_policy_is_identity_and_names_are_checked() -> None:
    x = torch.randn(2, 3, 8, 8)
    assert DiffAugment("")(x) is x
    assert DiffAugment(" , ")(x) is x
    with pytest.raises(ValueError, match="color, translation, cutout"):
        DiffAugment("color,flip")
    with pytest.raises(ValueError):
        DiffAugment(translation=1.5)
    with pytest.raises(ValueError):
        DiffAugment(cutout=-0.1)


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_diffaugment_gradients_flow(policy: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    y = DiffAugment(policy)(x)
    assert y.shape == x.shape
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_translation_shifts_by_at_most_the_fraction() -> None:
    torch.manual_seed(0)
    n, h, w = 16, 32, 24
    x = torch.arange(1.0, h * w + 1).view(1, 1, h, w).expand(n, 2, h, w).contiguous()
    y = DiffAugment("translation", translation=0.125)(x)
    limit_h, limit_w = 4, 3  # int(32 * 0.125 + 0.5), int(24 * 0.125 + 0.5)
    shifts = set()
    for b in range(n):
        padded = F.pad(x[b], (8, 8, 8, 8))  # zeros beyond the border, like the translation
        found = [
            (dy, dx)
            for dy in range(-8, 9)
            for dx in range(-8, 9)
            if torch.equal(y[b], padded[:, 8 + dy : 8 + dy + h, 8 + dx : 8 + dx + w])
        ]
        assert len(found) == 1
        dy, dx = found[0]
        assert abs(dy) <= limit_h and abs(dx) <= limit_w
        shifts.add(found[0])
    assert len(shifts) > 1  # each image gets its own shift


def test_cutout_zeroes_one_square_of_the_right_size() -> None:
    torch.manual_seed(0)
    n, size = 32, 20
    y = DiffAugment("cutout", cutout=0.5)(torch.ones(n, 3, size, size))
    side = 10
    for b in range(n):
        zero = y[b, 0] == 0
        assert torch.equal(zero, (y[b] == 0).all(0))  # every channel cut alike
        rows = zero.any(1).nonzero().flatten()
        cols = zero.any(0).nonzero().flatten()
        r0, r1, c0, c1 = int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())
        assert zero.sum() == (r1 - r0 + 1) * (c1 - c0 + 1)  # one solid rectangle
        for lo, hi in ((r0, r1), (c0, c1)):
            extent = hi - lo + 1
            # The full side, or less where the square crosses the border.
            assert extent == side or (extent < side and (lo == 0 or hi == size - 1))
        assert set(y[b].unique().tolist()) <= {0.0, 1.0}


def test_diffaugment_seeded_and_channels_last() -> None:
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    aug = DiffAugment()
    torch.manual_seed(5)
    a = aug(x)
    torch.manual_seed(5)
    b = aug(x)
    torch.manual_seed(6)
    c = aug(x)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.is_contiguous()
    torch.manual_seed(5)
    cl = aug(x.contiguous(memory_format=torch.channels_last))
    assert cl.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(cl, a)


def test_diffaugment_colour_ops_keep_grey_images_grey_per_image() -> None:
    # Saturation and contrast act around means; on a flat image only the brightness shift is left,
    # and it is one value in [-0.5, 0.5) per image.
    torch.manual_seed(0)
    x = torch.zeros(8, 3, 4, 4)
    y = DiffAugment("color")(x)
    per_image = y.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image))
    assert per_image.abs().max() <= 0.5 and per_image[:, 0].unique().numel() == 8


# -- shared: memory format, autocast, tracing ----------------------------------------------------


def first(out: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda: ResnetGenerator(ngf=4, blocks=1, antialias=True), (2, 3, 32, 32)),
        (lambda: ResnetGenerator(ngf=4, blocks=1, upsample="bilinear"), (2, 3, 32, 32)),
        (lambda: PatchGANDiscriminator(ndf=4, norm="none", spectral_norm=True), (2, 3, 64, 64)),
        (lambda: UGATITGenerator(ngf=4, blocks=1, image_size=32), (2, 3, 32, 32)),
        (lambda: UGATITDiscriminator(ndf=4, layers=5), (2, 3, 32, 32)),
    ],
)
def test_new_networks_channels_last_and_bf16_autocast(make, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    net = make().eval()  # eval: spectral norm keeps its vectors, so the runs are comparable
    x = torch.randn(*shape)
    ref = first(net(x))
    net_cl = net.to(memory_format=torch.channels_last)
    out = first(net_cl(x.contiguous(memory_format=torch.channels_last)))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = first(net_cl(x.contiguous(memory_format=torch.channels_last)))
    assert low.shape == ref.shape and torch.isfinite(low.float()).all()


def test_augment_projector_and_nce_trace_as_one_graph() -> None:
    """fullgraph tracing fails on a host sync (``.item()``) or a data-dependent shape."""
    aug = DiffAugment()
    proj = PatchProjector([3, 8], nc=8, num_patches=10)

    def step(img: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        (q, k), _ = proj([aug(img), feat])
        return patch_nce_loss(q, q, batch_size=2).mean() + k.sum()

    traced = torch.compile(step, backend="eager", fullgraph=True)
    value = traced(torch.randn(2, 3, 8, 8), torch.randn(2, 8, 4, 4))
    assert value.shape == () and torch.isfinite(value)
