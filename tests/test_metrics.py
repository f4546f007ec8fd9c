"""FID, KID and the translation metrics against independent computations; the Inception plumbing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg, signal

from ganforge.errors import GanforgeError
from ganforge.plugins import get_registry
from ganforge_plugins.apps.eval import inception as inc
from ganforge_plugins.apps.eval.fid_kid import (
    FID,
    KID,
    fid_from_features,
    frechet_distance,
    kid_blocks_from_features,
    kid_from_features,
)
from ganforge_plugins.apps.eval.protocols import PROTOCOLS, get_protocol, resize_image
from ganforge_plugins.apps.eval.translation import CycleMetrics, gaussian_window, l1, psnr, ssim

# -- references, written independently of the plugin ---------------------------------------------


def reference_fid(f1: np.ndarray, f2: np.ndarray) -> float:
    """pytorch-fid's calculate_frechet_distance, with scipy's sqrtm."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    if np.iscomplexobj(covmean):
        assert np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3)
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def reference_kid(
    f1: np.ndarray, f2: np.ndarray, subsets: int, subset_size: int, seed: int
) -> tuple[float, float]:
    """clean-fid's loop form of the unbiased MMD^2, on torch-fidelity's subset draws."""
    d = f1.shape[1]
    m = min(subset_size, len(f1), len(f2))
    rng = np.random.RandomState(seed)
    values = []
    for _ in range(subsets):
        x = f1[rng.choice(len(f1), m, replace=False)]
        y = f2[rng.choice(len(f2), m, replace=False)]
        a = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
        b = (x @ y.T / d + 1) ** 3
        values.append(((a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m) / m)
    return float(np.mean(values)), float(np.std(values))


def features(n: int, d: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return (rng.normal(size=(n, d)) @ mix) * scale + shift


# -- FID ---------------------------------------------------------------------------------------


def test_fid_matches_scipy_sqrtm_reference():
    real, fake = features(600, 48, 0), features(500, 48, 1, shift=0.3, scale=1.4)
    ours = FID().compute(torch.from_numpy(real).float().double(), fake)["fid"]
    ref = reference_fid(real, fake)
    assert ref > 1.0
    assert ours == pytest.approx(ref, rel=1e-6)


def test_fid_closed_form_for_known_gaussians():
    rng = np.random.default_rng(3)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    v1, v2 = rng.uniform(0.2, 3.0, 6), rng.uniform(0.2, 3.0, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-10)
    # Full covariance scaled by c^2: Tr(S + c^2 S - 2 c S) = (1 - c)^2 Tr(S).
    a = rng.normal(size=(6, 6))
    s = a @ a.T + 0.1 * np.eye(6)
    assert frechet_distance(mu1, s, mu1, 4.0 * s) == pytest.approx(np.trace(s), rel=1e-9)
    # Large samples from those Gaussians approach the closed form.
    x = rng.normal(size=(200_000, 6)) * np.sqrt(v1) + mu1
    y = rng.normal(size=(200_000, 6)) * np.sqrt(v2) + mu2
    assert fid_from_features(x, y) == pytest.approx(expected, rel=0.02)


def test_fid_of_a_set_with_itself_is_zero_and_rank_deficient_sets_stay_finite():
    f = features(300, 16, 5)
    assert abs(fid_from_features(f, f)) < 1e-8
    few_a, few_b = features(5, 64, 6), features(7, 64, 7, shift=0.5)  # N < D: singular covariances
    value = fid_from_features(few_a, few_b)  # the singular-value route
    assert np.isfinite(value) and value > 0
    via_covariances = frechet_distance(
        few_a.mean(0), np.cov(few_a, rowvar=False), few_b.mean(0), np.cov(few_b, rowvar=False)
    )
    assert value == pytest.approx(via_covariances, rel=1e-6)
    a, b = features(40, 48, 8), features(50, 48, 9, scale=1.3)  # 40 * 50 < 48^2: also the SVD route
    assert fid_from_features(a, b) == pytest.approx(
        frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)), rel=1e-6
    )


# -- KID ---------------------------------------------------------------------------------------


def test_kid_matches_independent_numpy_reference():
    real, fake = features(300, 32, 10), features(250, 32, 11, shift=0.2, scale=1.2)
    mean, std = kid_from_features(real, fake, subsets=20, subset_size=100, seed=123)
    ref_mean, ref_std = reference_kid(real, fake, 20, 100, 123)
    assert ref_mean > 0
    assert mean == pytest.approx(ref_mean, rel=1e-6)
    assert std == pytest.approx(ref_std, rel=1e-6)
    # The per-subset path (large sets) agrees with the precomputed-kernel path.
    out = KID(subsets=20, subset_size=100, seed=123).compute(real, fake)
    assert out["kid_x100"] == pytest.approx(100 * ref_mean, rel=1e-6)
    assert out["kid_x100_std"] == pytest.approx(100 * ref_std, rel=1e-6)


def test_kid_subset_size_is_capped_at_the_set_sizes():
    real, fake = features(40, 8, 12), features(30, 8, 13, shift=1.0)
    mean, _ = kid_from_features(real, fake, subsets=5, subset_size=1000, seed=1)
    assert mean == pytest.approx(reference_kid(real, fake, 5, 30, 1)[0], rel=1e-6)


def test_kid_of_a_set_against_itself_is_about_zero():
    f = features(400, 32, 20, scale=0.5)
    other = features(400, 32, 21, shift=0.5, scale=0.5)
    same = KID(subsets=30, subset_size=200).compute(f, f)["kid_x100"]
    different = KID(subsets=30, subset_size=200).compute(f, other)["kid_x100"]
    assert abs(same) < 0.02 * different
    assert abs(same) < 1.0
    # With the whole set as the subset the unbiased estimate is exactly -2 (T - S/m) / (m (m - 1)),
    # T the kernel trace and S its sum: O(1/m), the estimator's only offset from 0.
    k = (f @ f.T / 32 + 1) ** 3
    m = len(f)
    exact = -2 * (np.trace(k) - k.sum() / m) / (m * (m - 1))
    assert kid_from_features(f, f, subsets=1, subset_size=m)[0] == pytest.approx(exact, rel=1e-9)


def test_kid_needs_two_images():
    with pytest.raises(GanforgeError, match="at least 2"):
        kid_from_features(features(1, 4, 0), features(5, 4, 1))


def reference_kid_blocks(f1: np.ndarray, f2: np.ndarray, max_block_size: int) -> tuple[float, float]:
    """TF-GAN's kernel_classifier_distance_and_std_from_activations, in numpy from its source."""
    n_r, n_g = len(f1), len(f2)
    n_blocks = int(np.ceil(max(n_r, n_g) / max_block_size))
    v_r, v_g = n_r // n_blocks, n_g // n_blocks
    sizes_r = [v_r] * (n_blocks - (n_r - v_r * n_blocks)) + [v_r + 1] * (n_r - v_r * n_blocks)
    sizes_g = [v_g] * (n_blocks - (n_g - v_g * n_blocks)) + [v_g + 1] * (n_g - v_g * n_blocks)
    inds_r, inds_g = np.concatenate([[0], np.cumsum(sizes_r)]), np.concatenate([[0], np.cumsum(sizes_g)])
    dim = f1.shape[1]
    ests = []
    for i in range(n_blocks):
        r, g = f1[inds_r[i] : inds_r[i + 1]], f2[inds_g[i] : inds_g[i + 1]]
        m, n = len(r), len(g)
        k_rr, k_rg, k_gg = (r @ r.T / dim + 1) ** 3, (r @ g.T / dim + 1) ** 3, (g @ g.T / dim + 1) ** 3
        ests.append(
            -2 * k_rg.mean()
            + (k_rr.sum() - np.trace(k_rr)) / (m * (m - 1))
            + (k_gg.sum() - np.trace(k_gg)) / (n * (n - 1))
        )
    ests = np.array(ests)
    mn = ests.mean()
    var = np.sum((ests - mn) ** 2) / (n_blocks - 1)
    return float(mn), float(np.sqrt(var / n_blocks))


def test_kid_blocks_match_tf_gans_estimator():
    real, fake = features(100, 16, 30), features(97, 16, 31, shift=0.3)  # uneven: blocks of 9 and 10
    mean, stderr = kid_blocks_from_features(real, fake, block_size=10)
    ref_mean, ref_stderr = reference_kid_blocks(real, fake, 10)
    assert (
        ref_mean > 0
        and mean == pytest.approx(ref_mean, rel=1e-9)
        and stderr == pytest.approx(ref_stderr, rel=1e-9)
    )
    out = KID(estimator="blocks", block_size=10).compute(real, fake)
    assert out == pytest.approx({"kid_x100": 100 * ref_mean, "kid_x100_std": 100 * ref_stderr}, rel=1e-9)
    with pytest.raises(GanforgeError, match="at least 2 images per block"):
        kid_blocks_from_features(features(100, 4, 0), features(5, 4, 1), block_size=10)


def test_kid_subsets_of_whole_sets_have_no_spread():
    real, fake = features(50, 8, 40), features(50, 8, 41, shift=0.5)
    mean, std = kid_from_features(real, fake, subsets=10, subset_size=1000)
    assert std == pytest.approx(0.0, abs=1e-12) and mean == pytest.approx(
        reference_kid(real, fake, 1, 50, 0)[0]
    )


# -- translation metrics -----------------------------------------------------------------------


def reference_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM of two [C, H, W] images in [0, 1] with scipy's 2-D valid convolution."""
    coords = np.arange(11) - 5
    g = np.exp(-(coords**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    maps = []
    for a, b in zip(x, y):

        def f(img):
            return signal.convolve2d(img, w, mode="valid")

        mu_a, mu_b = f(a), f(b)
        saa, sbb, sab = f(a * a) - mu_a**2, f(b * b) - mu_b**2, f(a * b) - mu_a * mu_b
        maps.append(((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2)))
    return float(np.mean(maps))


def test_psnr_ssim_l1_against_references():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 24, 24, generator=g)
    y = (x + 0.1 * torch.randn(3, 3, 24, 24, generator=g)).clamp(0, 1)
    assert gaussian_window().sum().item() == pytest.approx(1.0)
    for i in range(3):
        assert ssim(x, y)[i].item() == pytest.approx(
            reference_ssim(x[i].double().numpy(), y[i].double().numpy()), rel=1e-9
        )
        mse = ((x[i].double() - y[i].double()) ** 2).mean().item()
        assert psnr(x, y)[i].item() == pytest.approx(10 * np.log10(1 / mse), rel=1e-9)
    assert l1(x, y).mean().item() == pytest.approx((x.double() - y.double()).abs().mean().item(), rel=1e-9)
    assert ssim(x, x).min().item() == pytest.approx(1.0)
    assert psnr(x, x + 0.5).mean().item() == pytest.approx(-20 * np.log10(0.5), rel=1e-6)
    out = CycleMetrics().compute(x, y)
    assert set(out) == {"l1", "psnr", "ssim"} and 0 < out["ssim"] < 1
    assert CycleMetrics().pairs == ("cycle", "identity") and CycleMetrics(identity=False).pairs == ("cycle",)


# -- registry ----------------------------------------------------------------------------------


def test_metrics_and_extractor_are_registered_with_options():
    reg = get_registry()
    assert {"fid", "kid", "cycle"} <= set(reg.names("metric"))
    assert "inception" in reg.names("feature_extractor")
    kid = reg.build("metric", {"name": "kid", "subsets": 3, "subset_size": 10})
    assert (kid.subsets, kid.subset_size, kid.uses, kid.extractor) == (3, 10, "features", "inception")
    assert reg.build("metric", {"name": "cycle"}).uses == "pairs"
    with pytest.raises(GanforgeError, match="unknown key"):
        reg.build("metric", {"name": "fid", "wieghts": "x"})


# -- the Inception extractor -------------------------------------------------------------------


@pytest.fixture(scope="module")
def random_inception():
    torch.manual_seed(0)
    return inc.InceptionFeatures(pretrained=False)


def test_inception_architecture_matches_the_fid_network(random_inception):
    net = random_inception.net
    assert isinstance(net.Mixed_5b, inc.FIDInceptionA) and isinstance(net.Mixed_6a, inc.FIDInceptionB)
    assert isinstance(net.Mixed_6e, inc.FIDInceptionC) and isinstance(net.Mixed_7a, inc.FIDInceptionD)
    assert isinstance(net.Mixed_7b, inc.FIDInceptionE_1) and isinstance(net.Mixed_7c, inc.FIDInceptionE_2)
    state = net.state_dict()
    # NVIDIA's port: 94 convolutions, each (weight, beta, mean, var); no batch-norm scale, no head.
    assert len(state) == 376 and sum(t.numel() for t in state.values()) == 21_802_784
    assert not any(k.startswith(("fc.", "AuxLogits")) or k.endswith(".bn.weight") for k in state)
    assert state["Mixed_6b.branch7x7_1.conv.weight"].shape == (128, 768, 1, 1)
    assert state["Mixed_7c.branch3x3dbl_3b.conv.weight"].shape == (384, 384, 3, 1)


def test_inception_plumbing_gives_2048_features_with_the_protocols_preprocessing(random_inception):
    seen = {}

    def hook(_module, args):
        seen["input"] = args[0]

    images = torch.stack([torch.ones(3, 32, 40), torch.zeros(3, 32, 40)])
    for protocol, top in (("clean-fid", 127 / 128), ("pytorch-fid", 1.0)):
        extractor = inc.InceptionFeatures(pretrained=False, protocol=protocol)
        extractor.net.load_state_dict(random_inception.net.state_dict())
        handle = extractor.net.Conv2d_1a_3x3.register_forward_pre_hook(hook)
        try:
            feats = extractor(images)
        finally:
            handle.remove()
        assert feats.shape == (2, 2048) and feats.dtype == torch.float32 and torch.isfinite(feats).all()
        x = seen["input"]
        assert x.shape == (2, 3, 299, 299)  # resized to 299
        assert x[0].min().item() == pytest.approx(top) and x[1].max().item() == pytest.approx(-1.0)
        assert not torch.allclose(feats[0], feats[1]) and not extractor.training
    built = get_registry().build("feature_extractor", {"name": "inception", "pretrained": False})
    assert built.dim == 2048 and built.protocol == "clean-fid"
    with pytest.raises(GanforgeError, match="unknown protocol 'ugatti'.*did you mean 'ugatit'"):
        get_registry().build(
            "feature_extractor", {"name": "inception", "pretrained": False, "protocol": "ugatti"}
        )


def test_weights_load_from_a_path_and_torchvision_layout_is_folded(tmp_path, random_inception):
    from safetensors.torch import save_file

    state = random_inception.net.state_dict()
    pth, st = tmp_path / "w.pth", tmp_path / "w.safetensors"
    torch.save(state, pth)
    save_file({k: v.contiguous() for k, v in state.items()}, str(st))
    loaded = get_registry().build("feature_extractor", {"name": "inception", "weights": str(pth)})
    assert loaded.source == str(pth) and len(loaded.provenance["sha256"]) == 64
    assert all(torch.equal(v, state[k]) for k, v in loaded.net.state_dict().items())
    from_st = inc.read_state_dict(st)
    assert from_st.keys() == state.keys() and all(torch.equal(from_st[k], state[k]) for k in state)
    with pytest.raises(GanforgeError, match="not found"):
        inc.load_fid_weights(str(tmp_path / "nope.pth"))
    # pytorch-fid's layout (torchvision's BasicConv2d: a batch-norm scale, a 1008-class head):
    # the scale gamma folds into the convolution and the mean, and the features stay the same.
    g = torch.Generator().manual_seed(1)
    tv = {}
    for key, value in state.items():
        if key.endswith(".conv.weight"):
            prefix = key[: -len("conv.weight")]
            gamma = torch.rand(value.shape[0], generator=g) + 0.5
            tv[key] = value / gamma.view(-1, 1, 1, 1)
            tv[f"{prefix}bn.weight"] = gamma
            tv[f"{prefix}bn.running_mean"] = state[f"{prefix}bn.running_mean"] / gamma
            tv[f"{prefix}bn.num_batches_tracked"] = torch.tensor(0)
        elif not key.endswith("running_mean"):
            tv[key] = value
    tv["fc.weight"], tv["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
    torch.save(tv, tmp_path / "torchvision.pth")
    folded = inc.InceptionFeatures(weights=str(tmp_path / "torchvision.pth"))
    x = torch.rand(2, 3, 299, 299, generator=g)
    assert torch.allclose(folded(x), random_inception(x), atol=1e-4, rtol=1e-4)
    ones = {k: (torch.ones_like(v) if k.endswith("bn.weight") else v) for k, v in tv.items()}
    assert (
        inc.port_state_dict(ones)["Mixed_5b.branch1x1.conv.weight"] is ones["Mixed_5b.branch1x1.conv.weight"]
    )
    # A file of other weights is a clear error.
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(GanforgeError, match="does not hold the FID Inception weights"):
        inc.InceptionFeatures(weights=str(tmp_path / "other.pth"))


# -- protocols ---------------------------------------------------------------------------------


def test_protocols_are_a_registry_of_data_applied_to_metrics_and_extractors():
    from ganforge_plugins.apps.eval.evaluation import Extractors, build_metrics

    assert {"clean-fid", "torch-fidelity", "pytorch-fid", "ugatit"} <= set(PROTOCOLS)
    ugatit = get_protocol("ugatit")
    assert (ugatit.resize, ugatit.input_range, ugatit.images, ugatit.split) == (
        "pil-bilinear",
        "unit",
        100,
        "test",
    )
    assert get_protocol("clean-fid").resize == "pil-bicubic" and get_protocol("").name == "clean-fid"
    reg = get_registry()
    kid = build_metrics(reg, ["kid"], protocol="ugatit")["kid"]
    assert (kid.estimator, kid.block_size) == ("blocks", 10)
    kid = build_metrics(reg, ["kid"], protocol="torch-fidelity")["kid"]
    assert (kid.estimator, kid.subsets, kid.subset_size) == ("subsets", 100, 1000)
    with pytest.raises(GanforgeError, match="unknown protocol 'nope'"):
        build_metrics(reg, ["kid"], protocol="nope")
    # Extractors hands the protocol to every extractor that takes the option.
    from types import SimpleNamespace

    from ganforge import hookimpl

    class Toy(_MeanColour):
        def __init__(self, protocol: str = ""):
            self.protocol = protocol

    plugin = SimpleNamespace(
        register_feature_extractors=hookimpl(specname="register_feature_extractors")(
            lambda register: register("toy", Toy)
        )
    )
    registry = _host_with(plugin, "toy-protocol")
    extractors = Extractors(registry, torch.device("cpu"), protocol="ugatit")
    _, built = extractors.get(registry.build("metric", {"name": "fid", "extractor": "toy"}))
    assert isinstance(built, Toy) and built.protocol == "ugatit"


def test_pil_bilinear_resize_is_scipy_imresize_of_8_bit_rgb():
    from PIL import Image

    img = torch.randint(0, 256, (3, 64, 80), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    expected = np.asarray(
        Image.fromarray(img.permute(1, 2, 0).numpy(), "RGB").resize((299, 299), Image.BILINEAR)
    )
    got = resize_image(img, "pil-bilinear", 299)
    assert got.dtype == torch.float32 and torch.equal(
        got, torch.from_numpy(expected.copy()).permute(2, 0, 1).float()
    )
    assert torch.equal(
        resize_image(img[:, :8, :8], "pil-bilinear", 8), img[:, :8, :8].float()
    )  # same size: as is


# -- the hooks: a third party's metric and feature extractor --------------------------------------


class _MeanColour:
    """Per-channel means and standard deviations: a 6-d toy feature extractor."""

    dim = 6

    def __call__(self, images):
        return torch.cat([images.mean(dim=(2, 3)), images.std(dim=(2, 3))], 1)


class _MeanDistance:
    """Distance between the mean features of two sets."""

    uses = "features"

    def __init__(self, extractor: str = "mean-colour", weights: str = ""):
        self.extractor, self.weights = extractor, weights

    def compute(self, real, fake):
        return {"mean_distance": float((real.mean(0) - fake.mean(0)).norm())}


def _host_with(module, name):
    from ganforge.plugins import PluginHost

    host = PluginHost()
    host.load_entry_points()
    host.register_module(module, name)
    host.collect()
    return host.registry


def test_hook_register_metrics():
    from types import SimpleNamespace

    from ganforge import hookimpl
    from ganforge_plugins.apps.eval.evaluation import build_metrics

    plugin = SimpleNamespace(
        register_metrics=hookimpl(specname="register_metrics")(
            lambda register: register("mean-distance", _MeanDistance)
        )
    )
    registry = _host_with(plugin, "toy-metric")
    metric = build_metrics(registry, ["mean-distance", "kid"])["mean-distance"]
    assert registry.get("metric", "mean-distance").plugin == "toy-metric"
    a, b = torch.zeros(4, 6, dtype=torch.float64), torch.ones(4, 6, dtype=torch.float64)
    assert metric.compute(a, b)["mean_distance"] == pytest.approx(6**0.5)


def test_hook_register_feature_extractors():
    from types import SimpleNamespace

    from ganforge import hookimpl
    from ganforge_plugins.apps.eval.evaluation import Extractors

    plugin = SimpleNamespace(
        register_feature_extractors=hookimpl(specname="register_feature_extractors")(
            lambda register: register("mean-colour", _MeanColour)
        )
    )
    registry = _host_with(plugin, "toy-extractor")
    fid = registry.build("metric", {"name": "fid", "extractor": "mean-colour"})
    extractors = Extractors(registry, torch.device("cpu"), batch_size=3)
    key, extractor = extractors.get(fid)
    assert key == ("mean-colour", "") and isinstance(extractor, _MeanColour)
    g = torch.Generator().manual_seed(0)
    real, fake = torch.rand(10, 3, 8, 8, generator=g), torch.rand(10, 3, 8, 8, generator=g) * 0.5
    f_real, f_fake = extractors.features(extractor, real), extractors.features(extractor, fake)
    assert f_real.shape == (10, 6) and f_real.dtype == torch.float64
    assert fid.compute(f_real, f_fake)["fid"] == pytest.approx(
        reference_fid(f_real.numpy(), f_fake.numpy()), rel=1e-6
    )
